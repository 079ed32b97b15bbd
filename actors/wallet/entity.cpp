// Implements the wallet entity: activation (load), the money commands, the
// transfer saga, and recovery at start.
#include "actors/wallet/wallet.hpp"
#include "actors/wallet/store.hpp"

#include <algorithm>
#include <array>
#include <unordered_map>
#include <unordered_set>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/commands.hpp"
#include "actors/entity_core.hpp"
#include "actors/money/ledger.hpp"
#include "actors/money/keys.hpp"
#include "actors/router.hpp"
#include "actors/topics.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::wallet {

using nlohmann::json;
using actors::errc;
using actors::entity_reply;
using actors::fail;
using actors::success;

namespace {

using retry_atom = caf::atom_constant<caf::atom("w_retry")>;

// Saga step versions: a later step always wins in the transfers table.
// 1: reserved (source); 2: credited or refused (receiver); 3: settled or
// reversed (source). See persistence/migrations/0005_money_steps.sql.
constexpr int64_t v_reserved = 1;
constexpr int64_t v_received = 2;
constexpr int64_t v_final = 3;

using journal::value;

/// Text, NULL when empty.
value text(const std::string& s) {
  return s.empty() ? value{} : value{s};
}

value num(int64_t v) {
  return value::integer(v);
}

/// An id for a uuid column, in 16 bytes: packed here, it is neither copied
/// as text into the row nor parsed again by the journal. NULL when empty;
/// text if it is not a uuid (PostgreSQL then says so).
value id(const std::string& s) {
  packed_uuid u;
  if (packed_uuid::try_parse(s, u)) return value::uuid(u);
  return text(s);
}

/// A row's values, moved in (a braced list would copy each of them: an
/// initializer_list's elements are const).
template <class... V>
std::vector<value> values_of(V&&... v) {
  std::vector<value> out;
  out.reserve(sizeof...(v));
  (out.emplace_back(std::forward<V>(v)), ...);
  return out;
}

/// Rows moved into a vector, for the same reason.
template <class... R>
std::vector<journal::row> rows_of(R&&... r) {
  std::vector<journal::row> out;
  out.reserve(sizeof...(r) + 1);  // room for an idempotency key's row
  (out.push_back(std::forward<R>(r)), ...);
  return out;
}

struct saga {
  std::string to_user;
  int64_t amount = 0;
  std::string note;
  std::string created_at;
  int attempts = 0;
  // The reserve committed: only then is the receiver asked (its journal
  // may be another node's, so nothing may rely on commit order between
  // journals). A saga resumed from PostgreSQL was reserved.
  bool reserved = true;
  // The amount may still come back (a reversal): it counts in `outgoing`
  // until the receiver took it or the reversal is applied.
  bool held = true;
  // The receiver answered for good (credited or refused): later answers
  // (to repeats) are ignored.
  bool decided = false;
  // The client waiting for this transfer (absent for resumed sagas).
  std::optional<caf::response_promise> client;
  std::string reply_body;  // the 201's body (also the key's final answer)
  int64_t reply_version = 0;
  std::string key;       // the client's Idempotency-Key, if any
  std::string key_hash;  // and the digest of its request
  // Resumed in state `credited`: settle writes `settled` even without a key.
  bool write_settled = false;
};


// What only a busy wallet needs; allocated on first use and dropped when
// empty, so that an idle wallet stays small.
struct extras {
  // Transfers this wallet is driving.
  std::unordered_map<std::string, saga> sagas;
  // Idempotency keys used during this activation (bounded: see key_done).
  money::key_book keys;
  // Credits this wallet is looking up or applying and whose rows have not
  // committed: a second request for one waits (ledger::decide_credit).
  std::unordered_set<std::string> credits_in_flight;
  // The sum of the amounts of sagas that are `held` (ledger::balances).
  int64_t outgoing = 0;
};

struct state {
  actors::entity_core core;  // core.id: the user id
  packed_uuid wallet_uuid;
  int64_t balance = 0;
  int64_t escrow = 0;
  const environment* env = nullptr;  // the kind's, which outlives its wallets
  std::unique_ptr<extras> x;
  std::shared_ptr<actors::ask_book> asks;  // asks to other wallets, once it asked
  static inline const char* name = "gm.wallet";

  std::string wallet_id() const { return wallet_uuid.str(); }
  extras& more() {
    if (!x) x = std::make_unique<extras>();
    return *x;
  }
  /// Drops the extras once nothing is in them.
  void trim() {
    if (x && x->sagas.empty() && x->keys.empty() && x->credits_in_flight.empty()) x.reset();
  }
};

using wallet_actor = caf::stateful_actor<state>;

json wallet_json(const state& st) {
  return {{"id", st.wallet_id()},       {"balance", st.balance}, {"escrow_balance", st.escrow},
          {"currency", st.env->currency}, {"version", st.core.version}};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// Appends `s` as a JSON string, as dump(json(s)) writes it: printable
/// ASCII that needs no escape (currency codes, most notes) is copied as it
/// is, anything else goes through nlohmann.
void put_quoted(std::string& out, const std::string& s) {
  bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (!plain) {
    out += dump(json(s));
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

journal::row wallet_row(const state& st) {
  return {&wallets_table(), st.core.version,
          values_of(value::uuid(st.wallet_uuid), num(st.balance), num(st.escrow), st.env->currency,
                    num(st.core.version))};
}

/// The wallet's balances as the money rules see them.
ledger::balances balances_of(const state& st) {
  return {st.balance, st.escrow, st.x ? st.x->outgoing : 0};
}

struct entry {
  std::string id = new_time_uuid();
  std::string transfer_id;
  std::string type;
  int64_t amount = 0;
  std::string reference;
  std::string counterparty;
  std::string created_at;
};

/// The wallet's leg of a movement (after the balance changed). Ledger
/// entries are fresh rows (journal::row::fresh): each has a new id.
journal::row entry_row(const state& st, const entry& e) {
  int64_t delta = ledger::adds(e.type) ? e.amount : -e.amount;
  auto wallet = value::uuid(st.wallet_uuid);  // the account (text) is the wallet id too
  return {&ledger_table(), 0,
          values_of(id(e.id), id(e.transfer_id), wallet, wallet, e.type, num(e.amount),
                    num(delta), num(st.balance), num(st.core.version), text(e.reference),
                    id(e.counterparty), e.created_at),
          true};
}

/// The sandbox provider's leg of a deposit (delta < 0) or withdrawal.
journal::row external_row(const entry& e, int64_t delta) {
  return {&ledger_table(), 0,
          values_of(value::uuid(new_packed_time_uuid()), id(e.transfer_id),
                    std::string{"external:sandbox"}, value{},
                    std::string{"external"}, num(e.amount), num(delta), value{}, value{},
                    text(e.reference), value{}, e.created_at),
          true};
}

/// A transfer's first row, written with its reserve (fresh: its id was
/// just minted). It names the client's Idempotency-Key, so that a saga
/// resumed after a crash can still write the key's final answer.
journal::row reserve_row(const std::string& id, const std::string& from, const std::string& to,
                         int64_t amount, const std::string& note, const std::string& created_at,
                         const std::string& key) {
  return {&transfers_table(), v_reserved,
          values_of(gm::wallet::id(id), gm::wallet::id(from), gm::wallet::id(to), num(amount),
                    text(note), std::string{"reserved"}, num(v_reserved), created_at,
                    now_rfc3339(), text(key)),
          true};
}

/// A later step of transfer `id`: its new state, by whoever took the step.
journal::row step_row(const std::string& id, const char* state_name, int64_t version) {
  return {&transfer_steps_table(), version,
          values_of(gm::wallet::id(id), std::string{state_name}, num(version), now_rfc3339())};
}

// The two documents every change renders, written out directly (building
// a json object first showed in profiles). Keys in the order nlohmann's
// sorted objects used, so stored idempotent answers read the same.

/// Appends `"key":"value"` for a value that needs no escaping (ids, types,
/// timestamps: made here).
void put_plain(std::string& out, const char* key, const std::string& value) {
  out += '"';
  out += key;
  out += "\":\"";
  out += value;
  out += '"';
}

void put_number(std::string& out, const char* key, int64_t value) {
  out += '"';
  out += key;
  out += "\":";
  out += std::to_string(value);
}

/// {balance, currency, escrow_balance, id, version}: the wallet as API.md
/// shows it.
std::string wallet_body(const state& st) {
  std::string out;
  out.reserve(160);
  out += '{';
  put_number(out, "balance", st.balance);
  out += ",\"currency\":";
  put_quoted(out, st.env->currency);
  out += ',';
  put_number(out, "escrow_balance", st.escrow);
  out += ',';
  put_plain(out, "id", st.wallet_id());
  out += ',';
  put_number(out, "version", st.core.version);
  out += '}';
  return out;
}

/// The transaction `e` as API.md shows it.
std::string tx_body(const state& st, const entry& e) {
  std::string out;
  out.reserve(256);
  out += '{';
  put_number(out, "amount", e.amount);
  out += ',';
  put_number(out, "balance_after", st.balance);
  out += ',';
  if (!e.counterparty.empty()) {
    put_plain(out, "counterparty", e.counterparty);
    out += ',';
  }
  put_plain(out, "created_at", e.created_at);
  out += ',';
  put_plain(out, "id", e.id);
  out += ",\"reference\":";
  if (e.reference.empty()) {
    out += "null";
  } else {
    put_quoted(out, e.reference);
  }
  out += ',';
  put_plain(out, "type", e.type);
  out += '}';
  return out;
}

void publish_updated(wallet_actor* self, std::string data, int64_t version) {
  topics::publish(self->system(), self->state.env->events.get(),
                  "wallet:" + self->state.wallet_id(), "wallet.updated", version,
                  std::move(data));
}

/// The journal lost rows it had accepted (it crashed): our state may be
/// ahead of PostgreSQL, so crash too and reload from there.
std::string empty_state(wallet_actor*) {
  return "{}";
}

/// The answer when the journal could not confirm a change: it may or may
/// not have been stored.
entity_reply not_stored() {
  return fail(errc::outcome_unknown,
              "the change may not have been stored; retry with the same Idempotency-Key");
}

/// The journal refused rows of this wallet (or lost them): its state may
/// be ahead of PostgreSQL. It fails (actors::fail_entity): every waiting
/// client hears that the outcome is unknown, and the next activation
/// resumes from what PostgreSQL holds, sagas included.
void journal_lost(wallet_actor* self) {
  auto& st = self->state;
  if (std::strcmp(st.core.status, "failed") == 0) return;
  if (st.x) {
    for (auto& [tid, s] : st.x->sagas) {
      if (s.client) s.client->deliver(not_stored());
      --st.core.busy;
    }
    st.x->sagas.clear();
    st.x->keys = money::key_book{};
    st.x->outgoing = 0;
  }
  actors::fail_entity(self, type, &empty_state);
}

// ---- idempotency keys (actors/money/keys.hpp) ------------------------------
// A wallet's keys are its user's: the wallet's id is the user's id.

money::key_book& keys_of(wallet_actor* self) {
  return self->state.more().keys;
}

void release_key(wallet_actor* self, const std::string& key) {
  if (key.empty()) return;
  keys_of(self).release(self->state.core.id, key);
  self->state.trim();
}

/// Records the key's final answer in this activation (see key_book::done).
void key_done(wallet_actor* self, const std::string& key, const std::string& body,
              int64_t version, errc code = errc::ok, const std::string& hash = {}) {
  if (key.empty()) return;
  keys_of(self).done(self->state.core.id, key, body, version, code, hash);
}

journal::row key_row(const state& st, const std::string& key, const std::string& hash,
                     const std::string& body, errc code = errc::ok, int64_t version = 1) {
  return money::key_row(st.core.id, key, hash, body, code, version);
}

/// The digest the key's request had (the entry with_key made).
const std::string& hash_of(wallet_actor* self, const std::string& key) {
  return keys_of(self).find(self->state.core.id, key)->hash;
}

void refuse(wallet_actor* self, const std::string& key, errc code, std::string detail,
            caf::response_promise rp) {
  money::refuse(self, &keys_of, *self->state.env->gate, self->state.core.id, key, code,
                std::move(detail), std::move(rp));
}

void with_key(wallet_actor* self, const std::string& key, const std::string& hash,
              caf::response_promise rp, std::function<void()> proceed) {
  money::with_key(self, &keys_of, self->state.core.id, key, hash, std::move(rp),
                  std::move(proceed));
}

// ---- deposit and withdrawal ---------------------------------------------

/// Applies a movement against the sandbox provider: `type` is deposit or
/// withdrawal.
void external_move(wallet_actor* self, const std::string& type, int64_t amount,
                   const std::string& reference, const std::string& key,
                   caf::response_promise rp) {
  auto& st = self->state;
  if (!actors::journal_accepting(*st.env->gate)) {
    release_key(self, key);
    rp.deliver(fail(errc::unavailable, "the journal is full; retry shortly"));
    return;
  }
  bool credit = type == "deposit";
  auto c = credit ? ledger::can_credit(balances_of(st), amount, st.env->max_balance)
                  : ledger::can_debit(balances_of(st), amount);
  if (c != ledger::check::ok) {
    refuse(self, key,
           c == ledger::check::insufficient_funds ? errc::insufficient_funds : errc::invalid,
           ledger::describe(c), rp);
    return;
  }
  st.balance += credit ? amount : -amount;
  ++st.core.version;
  entry e;
  e.transfer_id = new_time_uuid();
  e.type = type;
  e.amount = amount;
  e.reference = reference;
  e.created_at = now_rfc3339();
  auto body = tx_body(st, e);
  auto rows = rows_of(wallet_row(st), entry_row(st, e), external_row(e, credit ? -amount : amount));
  if (!key.empty()) rows.push_back(key_row(st, key, hash_of(self, key), body));
  auto version = st.core.version;
  auto event = wallet_body(st);
  actors::persist(self, st.core, std::move(rows), true,
                  [self, rp, key, body, version, event](bool ok) mutable {
                    if (!ok) {
                      rp.deliver(not_stored());
                      journal_lost(self);
                      return;
                    }
                    key_done(self, key, body, version);
                    rp.deliver(success(body, version));
                    publish_updated(self, std::move(event), version);
                  });
}

// ---- transfers: the source side -----------------------------------------
//
// The saga, driven by the source (ordering rule: each step is asked for
// only after the step before it has committed, so no step relies on two
// entities sharing one journal or one node):
//
//   reserve (source: debit, `reserved` v1, key `in_progress`; durable)
//     └─▶ credit (receiver: at most once per transfer; `credited` v2 or
//         `refused` v2; durable)
//           ├─ credited ─▶ settle (source: `settled` v3, key's 201)
//           └─ refused / no receiver ─▶ reverse (source: refund,
//                                       `reversed` v3, key's refusal)
//
// A saga left pending by a crash is resumed from its row by its source's
// next activation, which the recovery sweep brings about (kind()).

void send_credit(wallet_actor* self, const std::string& tid);

saga* find_saga(wallet_actor* self, const std::string& tid) {
  auto& st = self->state;
  if (!st.x) return nullptr;
  auto it = st.x->sagas.find(tid);
  return it == st.x->sagas.end() ? nullptr : &it->second;
}

/// The amount is no longer on its way: the receiver has it, or it came
/// back.
void release_hold(wallet_actor* self, saga& s) {
  if (!s.held) return;
  s.held = false;
  self->state.more().outgoing -= s.amount;
}

void end_saga(wallet_actor* self, const std::string& tid) {
  auto& st = self->state;
  if (st.x && st.x->sagas.erase(tid) > 0) {
    st.trim();
    --st.core.busy;
    actors::finish_if_idle(self, st.core);
  }
}

/// The receiver has the money: answer the client, then record the end
/// (`settled`, and the key's final answer). The client need not wait for
/// that write: if it is lost, the saga is `credited` in PostgreSQL and is
/// settled again on resumption; a repeat of the key meanwhile gets 409.
void settle(wallet_actor* self, const std::string& tid) {
  auto& st = self->state;
  auto& s = *find_saga(self, tid);
  release_hold(self, s);
  if (s.client) {
    s.client->deliver(success(s.reply_body, s.reply_version));
    s.client.reset();
  }
  key_done(self, s.key, s.reply_body, s.reply_version, errc::ok, s.key_hash);
  if (s.key.empty() && !s.write_settled) {
    end_saga(self, tid);  // the receiver wrote `settled`
    return;
  }
  auto rows = rows_of(step_row(tid, "settled", v_final));
  if (!s.key.empty()) {
    rows.push_back(key_row(st, s.key, s.key_hash, s.reply_body, errc::ok, 2));
  }
  actors::persist(self, st.core, std::move(rows), true, [self, tid](bool ok) {
    if (!ok) {
      journal_lost(self);
      return;
    }
    end_saga(self, tid);
  });
}

/// The receiver refused for good (it does not exist, or cannot hold the
/// amount): give the money back to the source under the same transfer id.
/// The refund needs no check: every credit left room for it (`outgoing`).
void reverse(wallet_actor* self, const std::string& tid, entity_reply why) {
  auto& st = self->state;
  auto& s = *find_saga(self, tid);
  gm::log::get("wallet")->warn("transfer {} reversed: {}", tid, why.detail);
  release_hold(self, s);
  st.balance += s.amount;
  ++st.core.version;
  entry e;
  e.transfer_id = tid;
  e.type = "transfer_in";
  e.amount = s.amount;
  e.reference = "reversal of transfer " + tid;
  e.counterparty = s.to_user;
  e.created_at = now_rfc3339();
  auto rows = rows_of(wallet_row(st), entry_row(st, e), step_row(tid, "reversed", v_final));
  // The client gets the receiver's refusal: that is the key's answer.
  if (!s.key.empty()) {
    rows.push_back(key_row(st, s.key, s.key_hash, why.detail, why.error(), 2));
  }
  auto version = st.core.version;
  auto event = wallet_body(st);
  actors::persist(self, st.core, std::move(rows), true,
                  [self, tid, why, version, event](bool ok) mutable {
                    auto* s = find_saga(self, tid);
                    if (!ok || s == nullptr) {
                      if (s != nullptr && s->client) s->client->deliver(not_stored());
                      journal_lost(self);
                      return;
                    }
                    if (s->client) {
                      s->client->deliver(why);
                      s->client.reset();
                    }
                    key_done(self, s->key, why.detail, 0, why.error(), s->key_hash);
                    publish_updated(self, std::move(event), version);
                    end_saga(self, tid);
                  });
}

void send_credit(wallet_actor* self, const std::string& tid) {
  auto& st = self->state;
  auto& s = *find_saga(self, tid);
  ++s.attempts;
  // Without a key there is nothing left for the source to record once the
  // receiver has the money: the receiver's step is the last (`settled`).
  auto msg = caf::make_message(
    credit_cmd{tid, st.core.id, s.amount, s.note, s.attempts > 1, s.key.empty()});
  actors::ask(self, st.asks, {type, s.to_user}, std::move(msg), st.env->credit_timeout,
              [self, tid](entity_reply& r) {
                auto* s = find_saga(self, tid);
                // Ended, or decided already (this answers a repeat).
                if (s == nullptr || s->decided) return;
                if (r.ok()) {
                  s->decided = true;
                  settle(self, tid);
                } else if (r.error() == errc::not_found || r.error() == errc::invalid) {
                  s->decided = true;
                  reverse(self, tid, r);
                } else {
                  auto wait = std::chrono::milliseconds{
                    std::min<int64_t>(5000, 50LL << std::min(s->attempts, 7))};
                  self->delayed_send(self, wait, retry_atom::value, tid);
                }
              });
}

void reserve(wallet_actor* self, const std::string& to, int64_t amount, const std::string& note,
             const std::string& key, caf::response_promise rp) {
  auto& st = self->state;
  if (!actors::journal_accepting(*st.env->gate)) {
    release_key(self, key);
    rp.deliver(fail(errc::unavailable, "the journal is full; retry shortly"));
    return;
  }
  auto c = ledger::can_debit(balances_of(st), amount);
  if (c != ledger::check::ok) {
    refuse(self, key,
           c == ledger::check::insufficient_funds ? errc::insufficient_funds : errc::invalid,
           ledger::describe(c), rp);
    return;
  }
  st.balance -= amount;
  ++st.core.version;
  entry e;
  e.transfer_id = new_time_uuid();
  e.type = "transfer_out";
  e.amount = amount;
  e.reference = note;
  e.counterparty = to;
  e.created_at = now_rfc3339();
  auto tid = e.transfer_id;
  auto body = tx_body(st, e);
  auto rows = rows_of(wallet_row(st), entry_row(st, e),
                      reserve_row(tid, st.core.id, to, amount, note, e.created_at, key));
  saga s;
  s.to_user = to;
  s.amount = amount;
  s.note = note;
  s.created_at = e.created_at;
  s.client = rp;
  s.reply_body = body;
  s.reply_version = st.core.version;
  s.reserved = false;
  s.key = key;
  if (!key.empty()) {
    s.key_hash = hash_of(self, key);
    // Until the saga ends the key answers 409; its final answer replaces
    // this row (version 2), also when a resumed saga ends.
    rows.push_back(key_row(st, key, s.key_hash, body, errc::in_progress));
  }
  st.more().outgoing += amount;
  st.more().sagas.emplace(tid, std::move(s));
  ++st.core.busy;  // until the saga ends
  auto event = wallet_body(st);
  auto version = st.core.version;
  actors::persist(self, st.core, std::move(rows), true,
                  [self, tid, event, version](bool ok) mutable {
                    auto* s = find_saga(self, tid);
                    if (!ok || s == nullptr) {
                      if (s != nullptr && s->client) s->client->deliver(not_stored());
                      journal_lost(self);
                      return;
                    }
                    s->reserved = true;
                    publish_updated(self, std::move(event), version);
                    send_credit(self, tid);
                  });
}

// ---- transfers: the receiving side --------------------------------------

void credit_done(wallet_actor* self, const std::string& tid) {
  auto& st = self->state;
  if (!st.x) return;
  st.x->credits_in_flight.erase(tid);
  st.trim();
}

/// Applies a credit this wallet decided to apply (credits_in_flight holds
/// `tid` until its rows committed): the money, or a durable refusal that
/// every later request for this credit reads back.
void apply_credit(wallet_actor* self, const std::string& tid, const std::string& from,
                  int64_t amount, const std::string& note, bool last,
                  caf::response_promise rp) {
  auto& st = self->state;
  if (!actors::journal_accepting(*st.env->gate)) {
    credit_done(self, tid);
    rp.deliver(fail(errc::unavailable, "the journal is full; retry shortly"));
    return;
  }
  auto c = ledger::can_credit(balances_of(st), amount, st.env->max_balance);
  if (c != ledger::check::ok) {
    auto why = fail(errc::invalid, ledger::describe(c));
    actors::persist(self, st.core, rows_of(step_row(tid, "refused", v_received)), true,
                    [self, tid, why, rp](bool ok) mutable {
                      credit_done(self, tid);
                      rp.deliver(ok ? why : not_stored());
                      if (!ok) journal_lost(self);
                    });
    return;
  }
  st.balance += amount;
  ++st.core.version;
  entry e;
  e.transfer_id = tid;
  e.type = "transfer_in";
  e.amount = amount;
  e.reference = note;
  e.counterparty = from;
  e.created_at = now_rfc3339();
  // `last`: the source has nothing to record after this step, so it ends
  // the saga here (one write of the transfer's row less).
  auto rows = rows_of(wallet_row(st), entry_row(st, e),
                      last ? step_row(tid, "settled", v_final)
                           : step_row(tid, "credited", v_received));
  auto version = st.core.version;
  auto event = wallet_body(st);
  actors::persist(self, st.core, std::move(rows), true,
                  [self, tid, rp, version, event](bool ok) mutable {
                    credit_done(self, tid);
                    if (!ok) {
                      rp.deliver(not_stored());
                      journal_lost(self);
                      return;
                    }
                    rp.deliver(success("{}", version));
                    publish_updated(self, std::move(event), version);
                  });
}

/// Answers a credit request as ledger::decide_credit says.
void on_credit_decision(wallet_actor* self, ledger::credit_decision d, const std::string& tid,
                        const std::string& from, int64_t amount, const std::string& note,
                        bool last, caf::response_promise rp) {
  using ledger::credit_decision;
  switch (d) {
    case credit_decision::apply:
      apply_credit(self, tid, from, amount, note, last, rp);
      return;
    case credit_decision::already:
      credit_done(self, tid);
      rp.deliver(success("{}", self->state.core.version));
      return;
    case credit_decision::refused:
      credit_done(self, tid);
      rp.deliver(fail(errc::invalid, "the receiver refused this transfer"));
      return;
    case credit_decision::busy:
      rp.deliver(fail(errc::unavailable, "this credit is being applied"));
      return;
    case credit_decision::unknown:
      credit_done(self, tid);
      rp.deliver(fail(errc::unavailable, "this transfer is not known yet"));
      return;
  }
}

// ---- activation ------------------------------------------------------------

caf::behavior active();
caf::result<caf::message> dispatch(caf::scheduled_actor* ptr, caf::message_view& xs);

void give_up(wallet_actor* self, errc code, std::string detail, const char* status) {
  actors::give_up(self, type, code, std::move(detail), status, &empty_state);
}

void on_loaded(wallet_actor* self, loaded& l) {
  auto& st = self->state;
  if (!l.error.empty()) {
    gm::log::get("wallet")->warn("wallet {} could not load: {}", st.core.id, l.error);
    give_up(self, errc::unavailable, "the database is unavailable, retry shortly", "failed");
    return;
  }
  if (!l.found) {
    give_up(self, errc::not_found, "no such wallet", "missing");
    return;
  }
  st.wallet_uuid = packed_uuid::parse(l.wallet_id);
  st.balance = l.balance;
  st.escrow = l.escrow;
  st.core.version = l.version;
  st.core.status = "active";
  self->set_default_handler(dispatch);
  self->become(active());
  actors::announce_loaded(self, type, st.core.id);
  // Resume what a crash left pending. Every step is safe to take again:
  // the receiver answers a repeat with what it decided the first time.
  for (auto& p : l.transfers) {
    saga s;
    s.to_user = p.to_user;
    s.amount = p.amount;
    s.note = p.note;
    s.created_at = p.created_at;
    s.attempts = 1;  // the next credit may be a repeat
    s.key = p.key;
    s.key_hash = p.key_hash;
    s.reply_body = p.reply_body;
    s.reply_version = l.version;
    auto state = ledger::parse_step_state(p.state);
    // Until the receiver took it, the amount may come back.
    s.held = state != ledger::step_state::credited;
    if (s.held) st.more().outgoing += s.amount;
    st.more().sagas.emplace(p.id, std::move(s));
    ++st.core.busy;
    gm::log::get("wallet")->info("resuming transfer {} ({})", p.id, p.state);
  }
  for (auto& p : l.transfers) {
    auto* s = find_saga(self, p.id);
    s->decided = p.state != "reserved";
    if (p.state == "credited") {
      s->write_settled = true;
      settle(self, p.id);
    } else if (p.state == "refused") {
      reverse(self, p.id, fail(errc::invalid, "the receiver refused this transfer"));
    } else {
      send_credit(self, p.id);
    }
  }
}

void load(wallet_actor* self) {
  actors::load_entity(self, &load_rows, &on_loaded);
}

std::string state_json(wallet_actor* self) {
  auto& st = self->state;
  auto j = wallet_json(st);
  j["user_id"] = st.core.id;
  j["transfers_in_progress"] = st.x ? st.x->sagas.size() : 0;
  j["idempotency_keys"] = st.x ? st.x->keys.size() : 0;
  return dump(j);
}

// ---- commands ---------------------------------------------------------------

void on_move(wallet_actor* self, const char* kind, int64_t amount, std::string reference,
             std::string key, const std::string& hash) {
  auto rp = self->make_response_promise();
  with_key(self, key, hash, rp, [self, kind, amount, reference, key, rp] {
    external_move(self, kind, amount, reference, key, rp);
  });
}

void on_transfer(wallet_actor* self, std::string to, int64_t amount, std::string note,
                 std::string key, const std::string& hash, bool to_loaded) {
  auto rp = self->make_response_promise();
  if (to == self->state.core.id) {
    rp.deliver(fail(errc::invalid, "to_user_id: cannot transfer to yourself"));
    return;
  }
  with_key(self, key, hash, rp, [self, to, amount, note, key, rp, to_loaded]() mutable {
    // The destination must exist before any money moves. The shard said so
    // if it has loaded (wallets are never deleted); else ask.
    if (to_loaded || actors::known_live(self->system(), type, to)) {
      reserve(self, to, amount, note, key, rp);
      return;
    }
    ++self->state.core.busy;
    actors::ask(self, self->state.asks, {type, to}, caf::make_message(exists_atom::value),
                self->state.env->credit_timeout,
                [self, to, amount, note, key, rp](entity_reply& r) mutable {
                  if (r.ok()) {
                    reserve(self, to, amount, note, key, rp);
                  } else if (r.error() == errc::not_found) {
                    refuse(self, key, errc::not_found, "to_user_id: no such user", rp);
                  } else {
                    release_key(self, key);
                    rp.deliver(r);
                  }
                  --self->state.core.busy;
                  actors::finish_if_idle(self, self->state.core);
                });
  });
}

void on_credit(wallet_actor* self, std::string tid, std::string from, int64_t amount,
               std::string note, bool maybe_repeat, bool last) {
  auto rp = self->make_response_promise();
  auto& st = self->state;
  bool in_flight = st.x && st.x->credits_in_flight.count(tid) > 0;
  if (in_flight || !maybe_repeat) {
    if (!in_flight) st.more().credits_in_flight.insert(tid);
    on_credit_decision(self, ledger::decide_credit(in_flight, std::nullopt), tid, from, amount,
                       note, last, rp);
    return;
  }
  // A repeat: what happened to the first request is in PostgreSQL (this
  // activation synced with the journal when it loaded, and every credit
  // since is in credits_in_flight until it committed). The transfer is in
  // flight from here on, so a second repeat waits instead of reading the
  // same `reserved` and applying too.
  st.more().credits_in_flight.insert(tid);
  ++st.core.busy;
  auto finish = [self] {
    --self->state.core.busy;
    actors::finish_if_idle(self, self->state.core);
  };
  actors::on_pool(
    self,
    [self, tid, from, amount, note, last, rp, finish](pg::connection& c) mutable
    -> std::function<void()> {
      auto r = c.exec("SELECT state FROM transfers WHERE id = $1", {tid});
      return [self, r, tid, from, amount, note, last, rp, finish]() mutable {
        if (!r.ok()) {
          credit_done(self, tid);
          rp.deliver(fail(errc::unavailable, "the database is unavailable"));
        } else {
          auto state = ledger::parse_step_state(r.rows.empty() ? "" : r.value(0, 0));
          on_credit_decision(self, ledger::decide_credit(false, state), tid, from, amount, note,
                             last, rp);
        }
        finish();
      };
    },
    [self, tid, rp, finish](const std::string& why) mutable {
      credit_done(self, tid);
      rp.deliver(fail(errc::unavailable, why));
      finish();
    });
}

// ---- the command table ------------------------------------------------------

using result = caf::result<caf::message>;

result on_get(wallet_actor* self, get_cmd&) {
  return caf::make_message(success(wallet_body(self->state), self->state.core.version));
}

result on_deposit(wallet_actor* self, deposit_cmd& c) {
  on_move(self, "deposit", c.amount, std::move(c.reference), std::move(c.key), c.hash);
  return caf::delegated<caf::message>{};
}

result on_withdraw(wallet_actor* self, withdraw_cmd& c) {
  on_move(self, "withdrawal", c.amount, std::move(c.reference), std::move(c.key), c.hash);
  return caf::delegated<caf::message>{};
}

result on_transfer_cmd(wallet_actor* self, transfer_cmd& c) {
  on_transfer(self, std::move(c.to_user), c.amount, std::move(c.note), std::move(c.key), c.hash,
              c.to_loaded);
  return caf::delegated<caf::message>{};
}

result on_credit_cmd(wallet_actor* self, credit_cmd& c) {
  on_credit(self, std::move(c.transfer_id), std::move(c.from_user), c.amount, std::move(c.note),
            c.maybe_repeat, c.last);
  return caf::delegated<caf::message>{};
}

result on_resume(wallet_actor* self, resume_cmd&) {
  auto& st = self->state;
  return caf::make_message(
    success(std::to_string(st.x ? st.x->sagas.size() : 0), st.core.version));
}

const actors::command_table<wallet_actor>& commands() {
  static const auto table = actors::command_table<wallet_actor>{}
                              .on(&on_get)
                              .on(&on_deposit)
                              .on(&on_withdraw)
                              .on(&on_transfer_cmd)
                              .on(&on_credit_cmd)
                              .on(&on_resume);
  return table;
}

/// Serves an active wallet's commands. One function for every wallet (it
/// is the actors' default handler), instead of a behavior of a dozen
/// handlers per actor: each handler object costs every idle wallet memory.
caf::result<caf::message> dispatch(caf::scheduled_actor* ptr, caf::message_view& xs) {
  auto self = static_cast<wallet_actor*>(ptr);
  auto& st = self->state;
  auto& c = xs.content();
  using str = std::string;
  // The wallet's own messages and its shard's first; then commands, which
  // may have come straight from a router (see note_command).
  if (c.match_elements<actors::ask_tick_atom>()) {
    if (st.asks) actors::on_ask_tick(self, *st.asks);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<retry_atom, str>()) {
    if (st.x) {
      auto it = st.x->sagas.find(c.get_as<str>(1));
      if (it != st.x->sagas.end() && it->second.reserved && !it->second.decided) {
        send_credit(self, it->first);
      }
    }
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<actors::inspect_atom>()) {
    return caf::make_message(actors::describe(self, st.core, state_json(self)));
  }
  if (c.match_elements<actors::passivate_atom>()) {
    actors::on_passivate(self, st.core);
    return caf::delegated<caf::message>{};
  }
  if (actors::note_command(self, type, st.core)) return actors::refused_command();
  if (c.match_elements<exists_atom>()) {
    return caf::make_message(success("", st.core.version));
  }
  if (auto r = commands().dispatch(self, xs)) return std::move(*r);
  return caf::make_message(fail(errc::invalid, "wallets do not understand this command"));
}

/// The behavior of an active wallet: continuations only; commands go to
/// dispatch().
caf::behavior active() {
  return {[](actors::run_atom, const actors::continuation& fn) { (*fn)(); }};
}

caf::behavior wallet_impl(wallet_actor* self, std::string user_id,
                          const environment* env) {
  auto& st = self->state;
  st.core.id = std::move(user_id);
  st.core.type = type;
  st.env = env;
  if (!is_uuid(st.core.id)) {
    give_up(self, errc::not_found, "no such wallet", "missing");
    return actors::entity_handlers(self, &empty_state);
  }
  // Until the state is loaded, commands wait in the mailbox.
  self->set_default_handler(caf::skip);
  load(self);
  return actors::entity_handlers(self, &empty_state);
}

// ---- recovery ---------------------------------------------------------------

using recover_atom = caf::atom_constant<caf::atom("w_recover")>;

/// The recovery sweep: at start, and every `saga_sweep_interval` after,
/// activates the wallets that have a transfer pending for a while (a crash
/// left it, or the wallet was not active since); each resumes its own
/// sagas. An active wallet drives its sagas by itself and answers at once.
/// So pending sagas are driven to an end by the runtime, not by whether
/// their users send another command.
caf::behavior recovery_impl(caf::event_based_actor* self, const environment* env) {
  self->send(self, recover_atom::value);
  auto next = [self, env] {
    self->delayed_send(self, env->saga_sweep_interval, recover_atom::value);
  };
  return {
    [](actors::run_atom, const actors::continuation& fn) { (*fn)(); },
    [self, next](recover_atom) {
      auto retry = [next](const std::string& why) {
        gm::log::get("wallet")->debug("transfer recovery waits: {}", why);
        next();
      };
      actors::on_pool(
        self,
        [self, next, retry](pg::connection& c) -> std::function<void()> {
          // Bounded per sweep; the next sweep takes the rest.
          auto r = c.exec("SELECT DISTINCT from_user FROM transfers "
                          "WHERE state IN ('reserved', 'credited', 'refused') "
                          "AND updated_at < now() - interval '1 second' LIMIT 1000");
          return [self, r, next, retry] {
            if (!r.ok()) {
              retry(r.error);
              return;
            }
            if (r.rows.empty()) {
              next();
              return;
            }
            auto left = std::make_shared<size_t>(r.rows.size());
            gm::log::get("wallet")->info("sweep: transfers pending at {} wallets", r.rows.size());
            for (size_t i = 0; i < r.rows.size(); ++i) {
              auto uid = r.value(i, 0);
              actors::ask(self, {type, uid}, caf::make_message(resume_cmd{}),
                          std::chrono::seconds{30}, [left, next](entity_reply&) {
                            if (--*left == 0) next();
                          });
            }
          };
        },
        retry);
    },
  };
}

} // namespace

actors::entity_kind kind(std::shared_ptr<const environment> env) {
  actors::entity_kind k;
  k.type = type;
  k.spawn = [env](caf::local_actor* shard, const std::string& id) {
    return shard->spawn(wallet_impl, id, env.get());
  };
  k.on_start = [env](caf::local_actor* shard) {
    shard->spawn<caf::linked>(recovery_impl, env.get());
  };
  k.direct = true;
  k.annotate = [](caf::message& cmd, const std::function<bool(const std::string&)>& loaded) {
    if (cmd.match_elements<transfer_cmd>() && loaded(cmd.get_as<transfer_cmd>(0).to_user)) {
      cmd.get_mutable_as<transfer_cmd>(0).to_loaded = true;  // copies it only if shared
    }
  };
  return k;
}

actors::kind_registration registration() {
  actors::kind_registration r;
  r.type = type;
  r.topic = "wallet";
  r.announce = [](caf::actor_system_config& cfg) {
    cfg.add_message_type<get_cmd>("gm_w_get")
      .add_message_type<deposit_cmd>("gm_w_deposit")
      .add_message_type<withdraw_cmd>("gm_w_withdraw")
      .add_message_type<transfer_cmd>("gm_w_transfer")
      .add_message_type<credit_cmd>("gm_w_credit")
      .add_message_type<resume_cmd>("gm_w_resume");
  };
  r.make = [](const actors::kind_context& ctx) {
    auto env = std::make_shared<environment>();
    env->gate = ctx.gate;
    env->events = ctx.events;
    env->currency = ctx.currency;
    env->max_balance = ctx.max_balance;
    env->credit_timeout = ctx.saga_step_timeout;
    env->saga_sweep_interval = ctx.saga_sweep_interval;
    return kind(env);
  };
  r.may_see = [](caf::event_based_actor* self, const actors::topic_caller& who,
                 const std::string& id, std::function<void(int, std::string)> done) {
    // The wallet entity knows its id: ask the caller's own wallet.
    actors::ask(self, {type, who.user_id}, caf::make_message(get_cmd{}),
                std::chrono::seconds{5}, [id, done](entity_reply& r) {
                  if (!r.ok()) {
                    bool busy = r.error() == errc::unavailable || r.error() == errc::outcome_unknown;
                    done(busy ? 503 : 403, r.detail);
                    return;
                  }
                  auto doc = json::parse(r.body, nullptr, false);
                  bool mine = doc.is_object() && doc.value("id", std::string{}) == id;
                  done(mine ? 0 : 403, "you may only subscribe to your own wallet");
                });
  };
  return r;
}

} // namespace gm::wallet
