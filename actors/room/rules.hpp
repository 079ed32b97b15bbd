// The room's plain rules: what a message may say, who may do what, and
// read markers. No actor code; unit-tested (tests/actors/room_rules_test.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace gm::room {

struct member {
  std::string user_id;
  int32_t joined = 0;     // 1 for the creator, then in join order
  int64_t read_seq = 0;   // the last message this member has read
  std::string joined_at;  // RFC 3339
};

struct room {
  std::string id;
  std::string name;
  std::string creator_id;
  std::string created_at;
  std::vector<member> members;  // in join order: the creator first
  std::unordered_map<std::string, size_t> index;  // user id → members[i]
  int64_t last_seq = 0;  // the last message that committed
};

/// Returns the number of characters (Unicode code points) of `s`, or -1 if
/// `s` is not valid UTF-8 (overlong forms, surrogates and values past
/// U+10FFFF are not).
int64_t utf8_length(const std::string& s);

/// Returns why `text` may not be a message, or "" if it may: it must be
/// valid UTF-8, hold no U+0000, have 1..`max_chars` characters, and not be
/// only white space.
std::string text_problem(const std::string& text, size_t max_chars);

/// Returns the member `user`, or nullptr.
const member* find_member(const room& r, const std::string& user);
member* find_member(room& r, const std::string& user);

/// Adds `user` as the newest member (the caller checked it is not one).
member& add_member(room& r, const std::string& user, const std::string& at);

/// Rebuilds `r.index` from `r.members`.
void reindex(room& r);

/// Returns the read marker after `m` marks `seq` read: markers only move
/// forward. `seq` past the room's last message is the caller's to refuse.
int64_t next_read_seq(const member& m, int64_t seq);

/// Returns how many messages `m` has not read.
int64_t unread(const member& m, int64_t last_seq);

} // namespace gm::room
