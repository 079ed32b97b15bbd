// The wallet kind: one entity per user (its id is the user's id), holding
// the balance and serving deposits, withdrawals and transfers through the
// double-entry ledger. Its folder: wallet.hpp (this: the kind), commands.hpp
// (typed commands), store.hpp (tables and the activation's read),
// entity.cpp (the actor); its money rules are actors/money/ledger.hpp.
//
// A transfer is a move of the money mechanism (actors/money/moves.hpp,
// saga.hpp), driven by the source wallet; each step is asked for only after
// the one before it committed (docs/architecture.md, Money):
//
//   reserve (source) ──▶ credit (receiver, at most once) ──▶ settle (source)
//                              │ refused, or no receiver
//                              └──────────────────────────▶ reverse (source)
//
// Wallets are also the source of contributions (into a circle's pot) and
// the destination of payouts; the mechanism serves those the same way.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include "actors/entity.hpp"
#include "actors/kinds.hpp"
#include "actors/money/moves.hpp"
#include "actors/wallet/commands.hpp"

namespace gm::journal {
class gate;
struct table_spec;
}

namespace gm::topics {
class store;
}

namespace gm::wallet {

inline constexpr const char* type = "wallet";

/// `(exists_atom)` → ok with an empty body if the wallet exists (usually
/// answered by the shard; see actors/entity.hpp).
using exists_atom = actors::exists_atom;

struct environment {
  /// The journal's gate, the maximum balance and the saga's timings.
  money::settings money;
  /// Where wallets publish `wallet.updated` (none: they publish nothing).
  std::shared_ptr<topics::store> events;
  std::string currency = "KES";
};

/// Returns the wallet entity kind (for its shard). Its on_start resumes
/// every transfer a crash left pending.
actors::entity_kind kind(std::shared_ptr<const environment> env);

/// Returns the wallet's line in the list of kinds (actors/kinds.hpp): its
/// shard, and its topic `wallet:{wallet id}`, which only the wallet's owner
/// may see.
actors::kind_registration registration();


} // namespace gm::wallet
