// The delivery task's commands: one struct each, with `inspect`
// (actors/commands.hpp). `user` and `role` are the caller's; `key`/`hash`
// an Idempotency-Key and its request's digest.
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace gm::task {

/// Create the task (sent to id_for(user, key)): locks `fee` from the
/// creator's wallet into its escrow → 201 the task, which then looks for a
/// rider. insufficient_funds: nothing changed.
struct create_cmd {
  std::string user;
  std::string role;
  int64_t fee = 0;
  double pickup_lat = 0, pickup_lng = 0, dropoff_lat = 0, dropoff_lng = 0;
  std::string description;
  bool has_description = false;
  std::string key;
  std::string hash;
};

/// → the task (those who may see it; others not_found).
struct get_cmd {
  std::string user;
  std::string role;
};

/// A step (rules.hpp's action): accept, decline, pickup, complete (`text`
/// the proof), cancel, assign (`rider` the rider) → the task.
struct act_cmd {
  std::string user;
  std::string role;
  std::string what;
  std::string rider;
  std::string text;
  bool has_text = false;
  std::string key;
  std::string hash;
};

/// A rider checks the task it holds or carries (when it activates) → ok
/// with {status, rider_id, offered_to, on_time}.
struct whose_cmd {};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, create_cmd& x) {
  return f(caf::meta::type_name("gm_t_create"), x.user, x.role, x.fee, x.pickup_lat, x.pickup_lng,
           x.dropoff_lat, x.dropoff_lng, x.description, x.has_description, x.key, x.hash);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_cmd& x) {
  return f(caf::meta::type_name("gm_t_get"), x.user, x.role);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, act_cmd& x) {
  return f(caf::meta::type_name("gm_t_act"), x.user, x.role, x.what, x.rider, x.text, x.has_text,
           x.key, x.hash);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, whose_cmd&) {
  return f(caf::meta::type_name("gm_t_whose"));
}

} // namespace gm::task
