// The room's store: the tables rooms write through the journal, what an
// activating room reads (its row, its members, its last seq), and history
// reads (for the history route and for resume).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/room/rules.hpp"

namespace gm::journal {
struct table_spec;
struct row;
}

namespace gm::pg {
class connection;
}

namespace gm::room {

const journal::table_spec& members_table();
const journal::table_spec& messages_table();

/// A member's row at `version`.
journal::row member_row(const std::string& room_id, const member& m, int64_t version);

/// One message as the room holds it while it is written.
struct message {
  std::string id;
  std::string sender_id;
  std::string text;
  int64_t seq = 0;
  std::string created_at;
};

/// A message's row (appended once).
journal::row message_row(const std::string& room_id, const message& m);

/// Returns the message as API.md's JSON.
std::string message_json(const std::string& room_id, const message& m);

struct loaded {
  bool found = false;
  std::string error;
  room r;
  int64_t version = 0;  // the highest of its members' rows
};

/// Reads room `id` (on a pool thread); `error` says why not.
loaded load_rows(pg::connection& c, const std::string& id);

/// Reads up to `limit` messages of room `id`, on a pool thread: with
/// `newest_first`, those with seq < `before` (newest first); otherwise those
/// with `after` < seq <= `upto`, oldest first. Returns false with `error`.
bool read_messages(pg::connection& c, const std::string& id, bool newest_first, int64_t before,
                   int64_t after, int64_t upto, int64_t limit, std::vector<message>& out,
                   std::string& error);

} // namespace gm::room
