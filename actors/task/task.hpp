// The delivery task kind: one entity per task. A client (or dispatcher)
// creates it with a fee, which waits in the creator's wallet escrow; the
// task then offers itself to the best available rider near its pickup
// (actors/dispatch/ finds them), one at a time, each with a timeout, until
// one accepts; the rider picks it up and completes it and is paid the fee
// as an `earning`, or the creator cancels it before pickup and is refunded.
// Every money move is a move of the money mechanism (actors/money/) that
// the creator's wallet makes when the task asks. The task's life is in
// rules.hpp.
//
// Its folder: task.hpp (this: the kind), commands.hpp, rules.hpp (plain
// rules, unit-tested), store.hpp (its table, its JSON, the activation's
// read and the dispatchers' list), entity.cpp (the actor). Riders keep
// their side (the offer they hold, the task they carry) in actors/rider/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "actors/kinds.hpp"
#include "actors/money/moves.hpp"
#include "actors/task/commands.hpp"

namespace gm::topics {
class store;
}

namespace gm::task {

inline constexpr const char* type = "task";

struct environment {
  money::settings money;
  std::shared_ptr<topics::store> events;
  int64_t offer_timeout_ms = 30000;  // config dispatch_offer_timeout_ms
  int32_t max_offers = 5;            // config dispatch_max_offers
  double radius_m = 5000;            // config dispatch_radius_m
};

/// Returns the id of the task `user` creates with Idempotency-Key `key`
/// (the same key, the same task: a repeat finds it), or a new id.
std::string id_for(const std::string& user, const std::string& key);

/// Returns the task's line in the list of kinds: its shard, its sweep, and
/// its topic `task:{id}`, which its creator, its riders, dispatchers and
/// admins may see.
actors::kind_registration registration();

} // namespace gm::task
