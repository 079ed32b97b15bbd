// The room's commands: one struct each, with `inspect` (actors/commands.hpp).
// `user` and `role` are the caller's (the gateway's authenticated user).
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace gm::room {

/// → the room's document as `user` sees it (members and admins; others
/// not_found).
struct get_cmd {
  std::string user;
  std::string role;
};
/// → ok with an empty body and `version` = the room's last seq, if `user`
/// may read the room (members and admins); not_found otherwise. What the
/// history route and the topic rule ask.
struct member_cmd {
  std::string user;
  std::string role;
};
/// → the room (anyone signed in who knows its id; a member again: the room).
struct join_cmd {
  std::string user;
};
/// A message from `user` (members only) → the message, `version` = its seq,
/// once its row committed.
struct post_cmd {
  std::string user;
  std::string text;
};
/// Moves `user`'s read marker to `seq` (never back) → {room_id, read_seq,
/// last_seq, unread}.
struct read_cmd {
  std::string user;
  int64_t seq = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_cmd& x) {
  return f(caf::meta::type_name("gm_r_get"), x.user, x.role);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_cmd& x) {
  return f(caf::meta::type_name("gm_r_member"), x.user, x.role);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_cmd& x) {
  return f(caf::meta::type_name("gm_r_join"), x.user);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, post_cmd& x) {
  return f(caf::meta::type_name("gm_r_post"), x.user, x.text);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_cmd& x) {
  return f(caf::meta::type_name("gm_r_read"), x.user, x.seq);
}

} // namespace gm::room
