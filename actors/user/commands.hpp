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
