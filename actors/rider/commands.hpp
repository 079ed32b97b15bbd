// The rider's commands: one struct each, with `inspect` (actors/commands.hpp).
// `user` is the caller (the rider itself for the /riders/me routes).
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace gm::rider {

/// → the rider, available at (lat, lng) (durable). Busy riders stay busy.
struct online_cmd {
  std::string user;
  double lat = 0;
  double lng = 0;
};
/// → the rider, offline (durable); conflict while busy.
struct offline_cmd {
  std::string user;
};
/// A location ping (buffered) → the rider's location; conflict while
/// offline. `heading` (degrees) and `speed` (m/s) are optional (NaN: not
/// given).
struct locate_cmd {
  std::string user;
  double lat = 0;
  double lng = 0;
  double heading = 0;
  double speed = 0;
};
/// → the rider as `user` (with `role`) may see it: its location only for
/// itself, dispatchers and admins.
struct get_cmd {
  std::string user;
  std::string role;
};

// ---- from delivery tasks (actors/task/) ----

/// Task → rider: hold my offer until `until_ms` (Unix ms) → ok (durable);
/// conflict if the rider is not available or holds another live offer. A
/// rider holding an offer is not a candidate for other tasks.
struct hold_cmd {
  std::string task;
  int64_t until_ms = 0;
};
/// Task → rider: take the task (the rider accepted its offer, or a
/// dispatcher assigns it: `forced`) → ok once the rider is busy with it
/// (durable); conflict if it is offline, busy with another task, or holds
/// another task's offer. Again for the same task: ok.
struct claim_cmd {
  std::string task;
  bool forced = false;
};
/// Task → rider: forget the task (its offer ended, or it was canceled) →
/// ok; available again if it carried it.
struct release_cmd {
  std::string task;
};
/// Task → rider: you delivered the task → ok; XP (rules.hpp), one more
/// completed task, available again. Applied once: only while busy with it.
struct finish_cmd {
  std::string task;
  bool on_time = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hold_cmd& x) {
  return f(caf::meta::type_name("gm_ri_hold"), x.task, x.until_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, claim_cmd& x) {
  return f(caf::meta::type_name("gm_ri_claim"), x.task, x.forced);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, release_cmd& x) {
  return f(caf::meta::type_name("gm_ri_release"), x.task);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, finish_cmd& x) {
  return f(caf::meta::type_name("gm_ri_finish"), x.task, x.on_time);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, online_cmd& x) {
  return f(caf::meta::type_name("gm_ri_online"), x.user, x.lat, x.lng);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, offline_cmd& x) {
  return f(caf::meta::type_name("gm_ri_offline"), x.user);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, locate_cmd& x) {
  return f(caf::meta::type_name("gm_ri_locate"), x.user, x.lat, x.lng, x.heading, x.speed);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_cmd& x) {
  return f(caf::meta::type_name("gm_ri_get"), x.user, x.role);
}

} // namespace gm::rider
