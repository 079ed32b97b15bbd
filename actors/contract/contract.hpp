// The gig contract kind: one entity per contract, between the client who
// posted a gig and the hustler whose proposal the client accepted. The
// agreed price waits in the client's escrow (a wallet account) until the
// work is approved, the delivery deadline passes, or an admin resolves a
// dispute; every escrow move is a move of the money mechanism
// (actors/money/) that the client's wallet makes when the contract asks.
// The contract's life is in rules.hpp.
//
// Its folder: contract.hpp (this: the kind), commands.hpp, rules.hpp (plain
// rules, unit-tested), store.hpp (tables and the activation's read),
// entity.cpp (the actor). Gigs and proposals are read models the gateway
// writes (gateway/gig_routes.cpp); a contract's id is derived from its
// gig's (id_of_gig), so a gig has at most one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "actors/contract/commands.hpp"
#include "actors/kinds.hpp"
#include "actors/money/moves.hpp"

namespace gm::topics {
class store;
}

namespace gm::contract {

inline constexpr const char* type = "contract";

struct environment {
  money::settings money;
  std::shared_ptr<topics::store> events;
  /// How long after delivery the escrow is released if the client neither
  /// approves nor disputes (config contract_auto_release_ms).
  int64_t auto_release_ms = 14LL * 86400000;
};

/// The id of gig `gig_id`'s contract.
std::string id_of_gig(const std::string& gig_id);

/// Returns the contract's line in the list of kinds: its shard, and its
/// topic `contract:{id}`, which only its parties (and admins) may see.
actors::kind_registration registration();

} // namespace gm::contract
