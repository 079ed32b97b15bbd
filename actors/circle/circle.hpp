// The savings circle kind (a ROSCA, a chama): one entity per circle. Its
// members pay a fixed amount into the circle's pot every round; each round
// one member, in an order fixed at start, receives the whole pot. The pot
// is a ledger account (`circle:{id}`), and money reaches it and leaves it
// only through the money mechanism (actors/money/): a contribution is a
// move from a member's wallet into the pot, a payout a move from the pot
// into the recipient's wallet. The circle's life is in rules.hpp.
//
// Its folder: circle.hpp (this: the kind), commands.hpp, rules.hpp (plain
// rules, unit-tested), store.hpp (tables and the activation's read),
// entity.cpp (the actor). Circles are created by the gateway (a row in
// PostgreSQL, gateway/circle_routes.cpp); the entity owns every change after.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/circle/commands.hpp"
#include "actors/kinds.hpp"
#include "actors/money/moves.hpp"

namespace gm::topics {
class store;
}

namespace gm::circle {

inline constexpr const char* type = "circle";

struct environment {
  money::settings money;
  std::shared_ptr<topics::store> events;
  /// The length of a "day" for due dates (config circle_day_ms): tests
  /// shrink the calendar with it.
  int64_t day_ms = 86400000;
};

/// Returns the circle's line in the list of kinds: its shard, and its topic
/// `circle:{id}`, which only members (and admins) may see.
actors::kind_registration registration();

} // namespace gm::circle
