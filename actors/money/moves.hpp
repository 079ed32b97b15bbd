// Money between any two accounts: the vocabulary of the one saga mechanism
// (actors/money/saga.hpp is the engine). Every balance that holds money is
// an account owned by an entity (a wallet's available balance, a circle's
// pot); a *move* takes an amount from one account to another, whatever
// kinds own them and wherever they live. What a move of each type does is
// its *plan* (below): which kinds own the two accounts, which account of
// each, and which ledger entry type each leg writes.
//
// The saga (ordering rule: a step is asked for only after the step before
// it has committed in its own entity's journal, so nothing relies on two
// entities sharing a journal, a process or a node):
//
//   reserve (source: debit, `reserved` v1; durable)
//     └─▶ credit (destination: at most once per move; `credited` v2 or
//         `refused` v2, or `settled` v3 when the source has nothing left
//         to record; durable)
//           ├─ credited ─▶ settle (source: `settled` v3, key's answer)
//           └─ refused / no such entity ─▶ reverse (source: refund,
//                                         `reversed` v3, key's refusal)
//
// A saga left pending by a crash is resumed by its source's next
// activation (load_pending), which the recovery sweep (start_sweep) brings
// about. Plain data and row builders here; no actor code.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include "persistence/journal.hpp"

namespace gm::pg {
class connection;
}

namespace gm::money {

/// What every money kind takes from the node (actors::kind_context).
struct settings {
  std::shared_ptr<journal::gate> gate;
  /// The most one entity may hold (its balances plus what may still come
  /// back from its moves in flight): at most int64's maximum.
  int64_t max_balance = INT64_MAX;
  /// How long the source waits for the destination's step before it asks
  /// again (marked as a possible repeat).
  std::chrono::milliseconds step_timeout{10000};
  /// How often the recovery sweep looks for moves left pending.
  std::chrono::milliseconds sweep_interval{10000};
};

/// What a move of one type does. Accounts are named per kind: "available"
/// (a wallet's spendable balance), "escrow" (a wallet's escrow), "pot" (a
/// circle's pot). A move whose two accounts belong to one entity (a
/// wallet's escrow lock) is made in one write, not as a saga.
struct plan {
  const char* type;          // transfers.move_type
  const char* from_kind;     // the kind that owns the source (and drives the saga)
  const char* from_account;
  const char* out_entry;     // the ledger entry type of the source's leg
  const char* to_kind;       // the kind that owns the destination
  const char* to_account;
  const char* in_entry;      // the ledger entry type of the destination's leg
  const char* back_entry;    // the type of the source's refund if the move is reversed
  int32_t ok_status;         // the HTTP status its client gets (an Idempotency-Key's answer)
};

/// Every plan (persistence/migrations/0006: transfers.move_type).
const std::vector<plan>& plans();

/// Returns the plan of `type`, or nullptr.
const plan* plan_of(const std::string& type);

/// Saga step versions: a later step always wins in the transfers table.
constexpr int64_t v_reserved = 1;
constexpr int64_t v_received = 2;
constexpr int64_t v_final = 3;

/// Returns a uuid derived from `name` (the same name, the same uuid): the
/// id of a move an entity starts for a decision it may take again after a
/// crash (a circle's contribution of one member in one round), so that the
/// move is made at most once.
std::string derived_id(const std::string& name);

// ---- commands (actors/commands.hpp), served by every kind that holds money

/// Saga step, source → destination, sent only once the reserve has
/// committed; applied at most once per move. `maybe_repeat`: look the move
/// up first; `last`: the source has nothing to record after this step.
struct credit_cmd {
  std::string move_id;
  std::string type;     // the plan
  std::string from_id;  // the source entity
  int64_t amount = 0;
  std::string note;
  bool maybe_repeat = false;
  bool last = false;
};

/// Another entity asks this one to make a move from its account (a circle
/// asks a member's wallet for a contribution) → the source leg's document
/// once the destination has the money, or the refusal. `move_id` is the
/// asker's (derived_id): a second request for one move never moves twice.
struct start_cmd {
  std::string move_id;
  std::string type;
  std::string to_id;
  int64_t amount = 0;
  std::string note;
  std::string counterparty;  // shown on the source's leg (default: to_id)
};

/// Activate and resume the moves this entity left pending → ok.
struct resume_cmd {};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, credit_cmd& x) {
  return f(caf::meta::type_name("gm_m_credit"), x.move_id, x.type, x.from_id, x.amount, x.note,
           x.maybe_repeat, x.last);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, start_cmd& x) {
  return f(caf::meta::type_name("gm_m_start"), x.move_id, x.type, x.to_id, x.amount, x.note,
           x.counterparty);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resume_cmd&) {
  return f(caf::meta::type_name("gm_m_resume"));
}

/// Announces the money commands to the actor system.
void announce(caf::actor_system_config& cfg);

// ---- tables and rows --------------------------------------------------------

/// ledger_entries (insert once), transfers (a move's full image, written
/// with its reserve) and a move's later steps (state and version).
const journal::table_spec& ledger_table();
const journal::table_spec& transfers_table();
const journal::table_spec& transfer_steps_table();

/// Returns a uuid column's value: packed if `s` is a uuid, NULL if empty,
/// else text (PostgreSQL then says what is wrong).
journal::value id_value(const std::string& s);

/// Where one leg of a move is booked: ledger_entries.account, and
/// ledger_entries.wallet_id (NULL for accounts that are not a wallet's).
struct leg {
  journal::value account;
  journal::value wallet;
};

/// One leg of a move as the ledger records it, after the balance changed.
struct entry {
  std::string id;           // the entry's id (new_time_uuid)
  std::string move_id;
  std::string type;         // the ledger entry type
  int64_t amount = 0;       // positive
  int64_t delta = 0;        // the signed effect on the account
  int64_t balance_after = 0;
  int64_t owner_version = 0;  // the owning entity's version after it
  std::string reference;
  std::string counterparty;  // the other entity's id
  std::string created_at;
};

journal::row entry_row(const leg& l, const entry& e);

/// A move's first row (fresh: its id was just minted or derived), written
/// with its reserve. It names the client's Idempotency-Key, so that a saga
/// resumed after a crash can still write the key's final answer;
/// `key_user` is whose key it is (if not the source's owner). A move made
/// in one write is written `settled` at once.
journal::row reserve_row(const std::string& id, const plan& p, const std::string& from,
                         const std::string& to, int64_t amount, const std::string& note,
                         const std::string& created_at, const std::string& key,
                         const std::string& key_user, const char* state = "reserved",
                         int64_t version = v_reserved);

/// A later step of move `id`: its new state, by whoever took the step.
journal::row step_row(const std::string& id, const char* state_name, int64_t version);

// ---- recovery ---------------------------------------------------------------

/// A move the source left pending, as PostgreSQL holds it.
struct pending {
  std::string id, type, to_id, note, state, created_at, key, key_user, key_hash, reply_body;
  int64_t amount = 0;
};

/// Reads the moves entity `id` of `kind` drives that have not ended (on a
/// pool thread). Returns false and sets `error` if the database failed.
bool load_pending(pg::connection& c, const std::string& kind, const std::string& id,
                  std::vector<pending>& out, std::string& error);

/// Spawns, linked to `shard`, the recovery sweep of `kind`: at start and
/// every `interval` after, it activates (resume_cmd) the entities of this
/// kind that drive a move pending for a while, so pending sagas are driven
/// to an end by the runtime, not by whether their users send a command.
void start_sweep(caf::local_actor* shard, const std::string& kind,
                 std::chrono::milliseconds interval);

} // namespace gm::money
