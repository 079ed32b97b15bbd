// The rider kind: one entity per rider (keyed by the rider's user id). It
// holds the rider's status (rules.hpp's diagram), last location, rating,
// experience and level. Status changes are durable; location pings are
// buffered (DESIGN.md: a crash may lose the last flush interval of pings,
// nothing else). While available, a rider keeps its region's dispatcher
// (actors/dispatch/) told where it is. Locations are published as
// `rider.location` on `rider:{id}`.
//
// Its folder: rider.hpp (this: the kind), commands.hpp, rules.hpp (plain
// rules, unit-tested), store.hpp (its table and the activation's read),
// entity.cpp (the actor).
#pragma once

#include <memory>
#include <string>

#include "actors/kinds.hpp"
#include "actors/rider/commands.hpp"

namespace gm::journal {
class gate;
}

namespace gm::topics {
class store;
}

namespace gm::rider {

inline constexpr const char* type = "rider";

struct environment {
  std::shared_ptr<journal::gate> gate;
  std::shared_ptr<topics::store> events;
};

/// Returns the rider's line in the list of kinds: its shard, and its topic
/// `rider:{id}`, which the rider, dispatchers and admins may see.
actors::kind_registration registration();

} // namespace gm::rider
