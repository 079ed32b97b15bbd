// The chat room kind: one entity per room. It holds the room's members and
// numbers its messages: `seq` per room, from 1, without gaps. A message is
// answered (REST 201, WebSocket ack) only once its row committed, and then
// published as `message.received` on `room:{id}` with the same seq, so the
// reply, the ack and the event of one message carry one number and
// PostgreSQL always holds a room's messages 1..last. Members' read markers
// are buffered writes (a crash may lose the last flush interval of them).
//
// Its folder: room.hpp (this: the kind), commands.hpp, rules.hpp (plain
// rules, unit-tested), store.hpp (tables and the activation's read),
// entity.cpp (the actor). Rooms are created by the gateway (rows in
// PostgreSQL, gateway/room_routes.cpp); the entity owns every change after.
// A room has no lifecycle beyond that (it is never closed), so it has no
// state machine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "actors/kinds.hpp"
#include "actors/room/commands.hpp"

namespace gm::journal {
class gate;
}

namespace gm::topics {
class store;
}

namespace gm::room {

inline constexpr const char* type = "room";

/// The most members one room may have (joins past it get 409).
inline constexpr size_t max_members = 10000;

struct environment {
  std::shared_ptr<journal::gate> gate;
  std::shared_ptr<topics::store> events;
  /// The longest message, in characters (config chat_max_text).
  size_t max_text = 4000;
};

/// Returns the room's line in the list of kinds: its shard, and its topic
/// `room:{id}`, which only members (and admins) may see, with its history
/// in PostgreSQL for resume (kind_registration::history).
actors::kind_registration registration();

} // namespace gm::room
