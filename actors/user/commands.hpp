// The user entity's commands: one struct each, with `inspect`
// (actors/commands.hpp).
#pragma once

#include <string>

#include <caf/meta/type_name.hpp>

namespace gm::user {

// ---- commands (actors/commands.hpp) ----------------------------------------

/// → the profile as API.md shows it: the owner's view (phone, email) or the
/// public one.
struct get_cmd {
  bool private_view = false;
};
/// → the owner's view after the change (durable). Fields not `has_` stay.
struct update_cmd {
  std::string full_name;
  std::string bio;
  std::string location;
  bool has_full_name = false;
  bool has_bio = false;
  bool has_location = false;
};

/// A review of this user was stored: read the rating again → ok.
struct rated_cmd {};

/// Tell this user `data` (`notification.new` on `user:{id}`) → ok. For
/// whoever has news for a user and is not an entity that holds the topic
/// store (the gateway: a proposal received).
struct notify_cmd {
  std::string data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, notify_cmd& x) {
  return f(caf::meta::type_name("gm_u_notify"), x.data);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rated_cmd&) {
  return f(caf::meta::type_name("gm_u_rated"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_cmd& x) {
  return f(caf::meta::type_name("gm_u_get"), x.private_view);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, update_cmd& x) {
  return f(caf::meta::type_name("gm_u_update"), x.full_name, x.bio, x.location,
           x.has_full_name, x.has_bio, x.has_location);
}

} // namespace gm::user
