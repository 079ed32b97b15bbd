// The wallet entity: one per user (its id is the user's id), holding the
// balance and serving deposits, withdrawals and transfers through the
// double-entry ledger. A transfer is a saga driven by the source wallet:
//
//   reserve (source debited, durable) ──▶ credit (destination, durable)
//        │                                   │ ok            │ not found
//        │ crash: activation or start-up     ▼               ▼
//        └──── recovery resumes ──────▶ settle          reverse (refund)
//
// Each step is idempotent (the destination checks the transfer's state in
// PostgreSQL whenever a credit may be a repeat).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/atom.hpp>

#include "actors/entity.hpp"
#include "actors/kinds.hpp"

namespace gm::journal {
class gate;
struct table_spec;
}

namespace gm::topics {
class store;
}

namespace gm::wallet {

inline constexpr const char* type = "wallet";

/// `(get_atom)` → reply body {id, balance, escrow_balance, currency, version}.
using get_atom = caf::atom_constant<caf::atom("w_get")>;
/// `(deposit_atom, int64 amount, reference, idempotency_key, request_hash)`
/// → 201 body: the transaction.
using deposit_atom = caf::atom_constant<caf::atom("w_deposit")>;
/// `(withdraw_atom, int64 amount, reference, idempotency_key, request_hash)`.
using withdraw_atom = caf::atom_constant<caf::atom("w_withdr")>;
/// `(transfer_atom, to_user, int64 amount, note, idempotency_key,
/// request_hash, bool to_loaded)` → the source's transaction once the
/// destination has it. Senders pass `to_loaded` false; the wallet shard sets
/// it when the destination has loaded (so it exists), and the source then
/// skips asking whether it does.
using transfer_atom = caf::atom_constant<caf::atom("w_transf")>;
/// Saga step, source → destination: `(credit_atom, transfer_id, from_user,
/// int64 amount, note, created_at, bool maybe_repeat, bool last)`. Sent only once the
/// reserve has committed; the destination applies it at most once.
using credit_atom = caf::atom_constant<caf::atom("w_credit")>;
/// `(resume_atom)`: activate and resume the sagas this wallet left pending.
using resume_atom = caf::atom_constant<caf::atom("w_resume")>;
/// `(exists_atom)` → ok with an empty body if the wallet exists: what a
/// source asks its destination before any money moves (usually answered
/// by the shard; see actors/entity.hpp).
using exists_atom = actors::exists_atom;

struct environment {
  std::shared_ptr<journal::gate> gate;
  /// Where wallets publish `wallet.updated` (none: they publish nothing).
  std::shared_ptr<topics::store> events;
  std::string currency = "KES";
  /// How long the source waits for the destination's credit before it
  /// retries (with check).
  std::chrono::milliseconds credit_timeout{10000};
  /// How often the recovery sweep looks for transfers left pending.
  std::chrono::milliseconds saga_sweep_interval{10000};
  /// The most one wallet may hold (balance, plus escrow, plus what may
  /// still come back from its transfers in flight): at most int64's maximum.
  int64_t max_balance = INT64_MAX;
};

/// Returns the wallet entity kind (for its shard). Its on_start resumes
/// every transfer a crash left pending.
actors::entity_kind kind(std::shared_ptr<const environment> env);

/// Returns the wallet's line in the list of kinds (actors/kinds.hpp): its
/// shard, and its topic `wallet:{wallet id}`, which only the wallet's owner
/// may see.
actors::kind_registration registration();

/// The tables wallets write through the journal.
const journal::table_spec& wallets_table();
const journal::table_spec& ledger_table();
const journal::table_spec& transfers_table();
const journal::table_spec& idempotency_table();

} // namespace gm::wallet
