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
