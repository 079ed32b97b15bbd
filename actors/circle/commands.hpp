// The circle's commands: one struct each, with `inspect` (actors/commands.hpp).
// `user` and `role` are the caller's (the gateway's authenticated user).
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace gm::circle {

/// → the circle's document (forming circles: anyone signed in; then
/// members and admins; others not_found).
struct get_cmd {
  std::string user;
  std::string role;
};
/// → the members list (members and admins).
struct members_cmd {
  std::string user;
  std::string role;
};
/// → the circle (conflict when full, started, or already a member).
struct join_cmd {
  std::string user;
};
/// Start (creator): fixes the payout order → the circle.
struct begin_cmd {
  std::string user;
};
/// Moves contribution_amount from the member's wallet into the pot → the
/// contribution. `key`/`hash`: the Idempotency-Key and its request's digest.
struct contribute_cmd {
  std::string user;
  std::string key;
  std::string hash;
};
/// Pays the pot to this round's recipient (creator or admin) → the payout.
struct payout_cmd {
  std::string user;
  std::string role;
  std::string key;
  std::string hash;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_cmd& x) {
  return f(caf::meta::type_name("gm_c_get"), x.user, x.role);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, members_cmd& x) {
  return f(caf::meta::type_name("gm_c_members"), x.user, x.role);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_cmd& x) {
  return f(caf::meta::type_name("gm_c_join"), x.user);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, begin_cmd& x) {
  return f(caf::meta::type_name("gm_c_begin"), x.user);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, contribute_cmd& x) {
  return f(caf::meta::type_name("gm_c_contrib"), x.user, x.key, x.hash);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payout_cmd& x) {
  return f(caf::meta::type_name("gm_c_payout"), x.user, x.role, x.key, x.hash);
}

} // namespace gm::circle
