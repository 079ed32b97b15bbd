// The saga engine: moves money from an account of this entity to an
// account of any other (actors/money/moves.hpp has the plans, the rows and
// the ordering rule), and applies the credits other entities' moves bring.
// Every kind that holds money uses it; none writes its own.
//
// A kind plugs in through a traits class `K` (static functions of its
// actor `Self`), which says what its accounts hold and how its state is
// written:
//
//   static book& money(Self*);                 // its money state (on demand)
//   static void trim(Self*);                   // drop it once idle()
//   static const settings& money_settings(Self*);
//   static std::shared_ptr<actors::ask_book>& asks(Self*);
//   static ledger::balances balances(Self*, const std::string& account);
//   static void add(Self*, const std::string& account, int64_t delta);
//   static leg leg_of(Self*, const std::string& account);
//   static void state_rows(Self*, std::vector<journal::row>&);  // after a change
//   static std::string render(Self*, const entry&);  // a leg, for its client
//   // The destination's own rules for a credit (a circle: is this a
//   // member's first contribution this round?), after the money rules; may
//   // change state (stored with the credit) and add rows. ok() to accept.
//   static actors::entity_reply accept(Self*, const credit_cmd&, std::vector<journal::row>&);
//   // The source's move was reversed (the refund is applied): may change
//   // state (stored with the refund) and add rows.
//   static void reversed(Self*, const std::string& id, const saga&, std::vector<journal::row>&);
//   // The source's move settled: the destination has the money.
//   static void settled(Self*, const std::string& id, const saga&);
//   static const char* kind();
//   static std::string snapshot(Self*);  // the state to publish, taken at a change
//   static void changed(Self*, std::string snapshot, int64_t version);  // it committed
//   static void lost(Self*);     // the journal lost rows: drop_all, then fail
//
// Included only by the entity files of kinds that hold money.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/all.hpp>

#include "actors/entity.hpp"
#include "actors/entity_core.hpp"
#include "actors/kinds.hpp"
#include "actors/money/keys.hpp"
#include "actors/money/ledger.hpp"
#include "actors/money/moves.hpp"
#include "actors/router.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::money {

/// The money settings of the node (config: max_balance, saga_step_timeout_ms,
/// saga_sweep_interval_ms).
inline settings settings_of(const actors::kind_context& ctx) {
  return {ctx.gate, ctx.max_balance, ctx.saga_step_timeout, ctx.saga_sweep_interval};
}

/// A move this entity drives (it owns the source).
struct saga {
  const plan* p = nullptr;
  std::string to_id;
  int64_t amount = 0;
  std::string note;
  int attempts = 0;
  // The reserve committed: only then is the destination asked. A saga
  // resumed from PostgreSQL was reserved.
  bool reserved = true;
  // The amount may still come back (a reversal): it counts in `outgoing`
  // until the destination took it or the reversal is applied.
  bool held = true;
  // The destination answered for good: later answers (to repeats) are
  // ignored.
  bool decided = false;
  // Whoever waits for this move (a client, or the entity that asked for it
  // with start_cmd); absent for resumed sagas.
  std::optional<caf::response_promise> client;
  std::string reply_body;  // the success's body (also the key's final answer)
  int64_t reply_version = 0;
  std::string key;       // the client's Idempotency-Key, if any
  std::string key_user;  // whose key it is
  std::string key_hash;  // the digest of its request
  int32_t ok_status = 201;  // the HTTP status of its success (the key's answer)
  // Resumed in state `credited`: settle writes `settled` even without a key.
  bool write_settled = false;
};

/// An entity's money state: allocated on first use and dropped once idle,
/// so that an idle entity stays small.
struct book {
  std::unordered_map<std::string, saga> sagas;
  key_book keys;
  // Credits this entity is looking up or applying whose rows have not
  // committed: a second request for one waits (ledger::decide_credit).
  std::unordered_set<std::string> credits_in_flight;
  // Moves asked for with start_cmd whose ids are being looked up.
  std::unordered_set<std::string> starting;
  // Moves within this entity (move_within) whose write has not committed.
  std::unordered_set<std::string> within;
  // The sum of the amounts of sagas that are `held` (ledger::balances).
  int64_t outgoing = 0;
  bool idle() const {
    return sagas.empty() && keys.empty() && credits_in_flight.empty() && starting.empty() &&
           within.empty();
  }
};

using retry_atom = caf::atom_constant<caf::atom("m_retry")>;

/// The answer when the journal could not confirm a change: it may or may
/// not have been stored.
inline actors::entity_reply not_stored() {
  return actors::fail(actors::errc::outcome_unknown,
                      "the change may not have been stored; retry with the same Idempotency-Key");
}

inline actors::entity_reply journal_full() {
  return actors::fail(actors::errc::unavailable, "the journal is full; retry shortly");
}

/// The outgoing money of `b` as the rules see it.
inline int64_t outgoing_of(const book* b) {
  return b ? b->outgoing : 0;
}

template <class K, class Self>
saga* find_saga(Self* self, const std::string& id) {
  auto& b = K::money(self);
  auto it = b.sagas.find(id);
  return it == b.sagas.end() ? nullptr : &it->second;
}

/// Answers every waiting client that the outcome is unknown and forgets the
/// sagas (the entity fails and its next activation resumes them from
/// PostgreSQL). For K::lost.
template <class K, class Self>
void drop_all(Self* self) {
  auto& b = K::money(self);
  for (auto& [id, s] : b.sagas) {
    if (s.client) s.client->deliver(not_stored());
    --self->state.core.busy;
  }
  b.sagas.clear();
  b.keys = key_book{};
  b.outgoing = 0;
}

// ---- idempotency keys ---------------------------------------------------------

template <class K, class Self>
key_book& keys_of(Self* self) {
  return K::money(self).keys;
}

template <class K, class Self>
void release_key(Self* self, const std::string& user, const std::string& key) {
  if (key.empty()) return;
  keys_of<K>(self).release(user, key);
  K::trim(self);
}

/// Runs `proceed` unless `user`'s key answers the request itself (keys.hpp).
template <class K, class Self>
void with_key(Self* self, const std::string& user, const std::string& key,
              const std::string& hash, caf::response_promise rp, std::function<void()> proceed) {
  money::with_key(self, &keys_of<K, Self>, user, key, hash, std::move(rp), std::move(proceed));
}

/// Answers a refusal decided by the entity's state, bound to the key if any.
template <class K, class Self>
void refuse(Self* self, const std::string& user, const std::string& key, actors::errc code,
            std::string detail, caf::response_promise rp) {
  money::refuse(self, &keys_of<K, Self>, *K::money_settings(self).gate, user, key, code,
                std::move(detail), std::move(rp));
}

/// The refusal for a failed money check.
inline actors::errc errc_of(ledger::check c) {
  return c == ledger::check::insufficient_funds ? actors::errc::insufficient_funds
                                                : actors::errc::invalid;
}

// ---- the source side ------------------------------------------------------------

template <class K, class Self>
void send_credit(Self* self, const std::string& id);

/// The amount is no longer on its way: the destination has it, or it came
/// back.
template <class K, class Self>
void release_hold(Self* self, saga& s) {
  if (!s.held) return;
  s.held = false;
  K::money(self).outgoing -= s.amount;
}

template <class K, class Self>
void end_saga(Self* self, const std::string& id) {
  auto& st = self->state;
  if (K::money(self).sagas.erase(id) > 0) {
    K::trim(self);
    --st.core.busy;
    actors::finish_if_idle(self, st.core);
  }
}

/// The destination has the money: answer the client, then record the end
/// (`settled`, the key's final answer, whatever the kind records). The
/// client need not wait for that write: if it is lost, the move is
/// `credited` in PostgreSQL and is settled again on resumption; a repeat of
/// the key meanwhile gets 409.
template <class K, class Self>
void settle(Self* self, const std::string& id) {
  auto& st = self->state;
  auto& s = *find_saga<K>(self, id);
  release_hold<K>(self, s);
  if (s.client) {
    s.client->deliver(actors::success(s.reply_body, s.reply_version));
    s.client.reset();
  }
  if (!s.key.empty()) {
    keys_of<K>(self).done(s.key_user, s.key, s.reply_body, s.reply_version, actors::errc::ok,
                          s.key_hash, s.ok_status);
  }
  K::settled(self, id, s);
  if (s.key.empty() && !s.write_settled) {
    end_saga<K>(self, id);  // the destination wrote `settled`
    return;
  }
  std::vector<journal::row> rows;
  rows.push_back(step_row(id, "settled", v_final));
  if (!s.key.empty()) {
    rows.push_back(
      key_row(s.key_user, s.key, s.key_hash, s.reply_body, actors::errc::ok, 2, s.ok_status));
  }
  actors::persist(self, st.core, std::move(rows), true, [self, id](bool ok) {
    if (!ok) {
      K::lost(self);
      return;
    }
    end_saga<K>(self, id);
  });
}

/// The destination refused for good (it does not exist, or cannot take the
/// amount): give the money back to the source under the same move id. The
/// refund needs no check: every credit left room for it (`outgoing`).
template <class K, class Self>
void reverse(Self* self, const std::string& id, actors::entity_reply why) {
  auto& st = self->state;
  auto& s = *find_saga<K>(self, id);
  gm::log::get("money")->warn("{} {} reversed: {}", s.p->type, id, why.detail);
  release_hold<K>(self, s);
  K::add(self, s.p->from_account, s.amount);
  std::vector<journal::row> rows;
  K::reversed(self, id, s, rows);
  ++st.core.version;
  entry e;
  e.id = new_time_uuid();
  e.move_id = id;
  e.type = s.p->back_entry;
  e.amount = s.amount;
  e.delta = s.amount;
  e.balance_after = K::balances(self, s.p->from_account).balance;
  e.owner_version = st.core.version;
  e.reference = "reversal of " + std::string{s.p->type} + " " + id;
  e.counterparty = s.to_id;
  e.created_at = now_rfc3339();
  K::state_rows(self, rows);
  rows.push_back(entry_row(K::leg_of(self, s.p->from_account), e));
  rows.push_back(step_row(id, "reversed", v_final));
  if (!s.key.empty()) {
    rows.push_back(key_row(s.key_user, s.key, s.key_hash, why.detail, why.error(), 2));
  }
  auto snap = K::snapshot(self);
  auto version = st.core.version;
  actors::persist(self, st.core, std::move(rows), true,
                  [self, id, why, snap, version](bool ok) mutable {
    auto* s = find_saga<K>(self, id);
    if (!ok || s == nullptr) {
      if (s != nullptr && s->client) s->client->deliver(not_stored());
      K::lost(self);
      return;
    }
    if (s->client) {
      s->client->deliver(why);
      s->client.reset();
    }
    if (!s->key.empty()) {
      keys_of<K>(self).done(s->key_user, s->key, why.detail, 0, why.error(), s->key_hash);
    }
    K::changed(self, std::move(snap), version);
    end_saga<K>(self, id);
  });
}

/// Asks the destination to take its step (again, after a timeout).
template <class K, class Self>
void send_credit(Self* self, const std::string& id) {
  auto& st = self->state;
  auto& s = *find_saga<K>(self, id);
  ++s.attempts;
  // Without a key there is nothing left for the source to record once the
  // destination has the money: the destination's step is the last
  // (`settled`).
  bool last = s.key.empty();
  auto msg = caf::make_message(
    credit_cmd{id, s.p->type, st.core.id, s.amount, s.note, s.attempts > 1, last});
  actors::ask(self, K::asks(self), {s.p->to_kind, s.to_id}, std::move(msg),
              K::money_settings(self).step_timeout, [self, id](actors::entity_reply& r) {
                auto* s = find_saga<K>(self, id);
                // Ended, or decided already (this answers a repeat).
                if (s == nullptr || s->decided) return;
                if (r.ok()) {
                  s->decided = true;
                  settle<K>(self, id);
                } else if (r.error() == actors::errc::not_found ||
                           r.error() == actors::errc::invalid ||
                           r.error() == actors::errc::conflict) {
                  s->decided = true;
                  reverse<K>(self, id, r);
                } else {
                  auto wait = std::chrono::milliseconds{
                    std::min<int64_t>(5000, 50LL << std::min(s->attempts, 7))};
                  self->delayed_send(self, wait, retry_atom::value, id);
                }
              });
}

/// What a move needs to start: the plan, the destination, the amount, and
/// who waits for it.
struct move_request {
  const plan* p = nullptr;
  std::string id;  // empty: a new id
  std::string to_id;
  int64_t amount = 0;
  std::string note;
  std::string counterparty;  // shown on the source's leg (default: to_id)
  std::string key, key_user, key_hash;
  /// The source's own change that goes with the reserve (a circle's round
  /// advancing with its payout): run once the checks passed, before the
  /// rows are made.
  std::function<void()> on_reserve;
};

/// A move between two accounts of this entity (a wallet's available
/// balance and its escrow): both legs, the move's row (`settled`) and the
/// key's answer in one write, so there is nothing to resume. `rp` gets the
/// source leg's document once it committed. The checks have passed.
template <class K, class Self>
void move_within(Self* self, move_request m, std::optional<caf::response_promise> rp) {
  auto& st = self->state;
  auto id = m.id.empty() ? new_time_uuid() : m.id;
  auto at = now_rfc3339();
  auto leg = [&](const char* account, const char* type, int64_t delta) {
    K::add(self, account, delta);
    ++st.core.version;
    entry e;
    e.id = new_time_uuid();
    e.move_id = id;
    e.type = type;
    e.amount = m.amount;
    e.delta = delta;
    e.balance_after = K::balances(self, account).balance;
    e.owner_version = st.core.version;
    e.reference = m.note;
    e.counterparty = m.counterparty;
    e.created_at = at;
    return e;
  };
  auto out = leg(m.p->from_account, m.p->out_entry, -m.amount);
  auto in = leg(m.p->to_account, m.p->in_entry, m.amount);
  std::vector<journal::row> rows;
  rows.reserve(5);
  K::state_rows(self, rows);
  rows.push_back(entry_row(K::leg_of(self, m.p->from_account), out));
  rows.push_back(entry_row(K::leg_of(self, m.p->to_account), in));
  rows.push_back(reserve_row(id, *m.p, st.core.id, st.core.id, m.amount, m.note, at, m.key,
                             m.key_user, "settled", v_final));
  auto body = K::render(self, out);
  if (!m.key.empty()) {
    rows.push_back(key_row(m.key_user, m.key, m.key_hash, body, actors::errc::ok, 2,
                           m.p->ok_status));
  }
  K::money(self).within.insert(id);
  auto snap = K::snapshot(self);
  auto version = st.core.version;
  actors::persist(self, st.core, std::move(rows), true,
                  [self, id, m, rp, body, snap, version](bool ok) mutable {
                    K::money(self).within.erase(id);
                    if (!ok) {
                      if (rp) rp->deliver(not_stored());
                      K::lost(self);
                      return;
                    }
                    if (!m.key.empty()) {
                      keys_of<K>(self).done(m.key_user, m.key, body, version, actors::errc::ok,
                                            m.key_hash, m.p->ok_status);
                    }
                    K::trim(self);
                    if (rp) rp->deliver(actors::success(body, version));
                    K::changed(self, std::move(snap), version);
                  });
}

/// Reserves the amount on the source (durably: the debit, the move's row
/// and the key's `in_progress`), then asks the destination. `rp` gets the
/// source leg's document once the destination has the money, or the
/// refusal (nobody, if absent: the entity starts the move by itself).
/// Callers checked the destination exists where that matters.
template <class K, class Self>
void start(Self* self, move_request m, std::optional<caf::response_promise> rp) {
  auto& st = self->state;
  if (!actors::journal_accepting(*K::money_settings(self).gate)) {
    release_key<K>(self, m.key_user, m.key);
    if (rp) rp->deliver(journal_full());
    return;
  }
  auto c = ledger::can_debit(K::balances(self, m.p->from_account), m.amount);
  if (c != ledger::check::ok) {
    if (rp) {
      refuse<K>(self, m.key_user, m.key, errc_of(c), ledger::describe(c), *rp);
    } else {
      gm::log::get("money")->warn("{} {} not started: {}", m.p->type, st.core.id,
                                  ledger::describe(c));
    }
    return;
  }
  if (m.on_reserve) m.on_reserve();
  if (m.p->to_kind == std::string{K::kind()} && m.to_id == st.core.id) {
    move_within<K>(self, std::move(m), std::move(rp));
    return;
  }
  K::add(self, m.p->from_account, -m.amount);
  ++st.core.version;
  entry e;
  e.id = new_time_uuid();
  e.move_id = m.id.empty() ? new_time_uuid() : m.id;
  e.type = m.p->out_entry;
  e.amount = m.amount;
  e.delta = -m.amount;
  e.balance_after = K::balances(self, m.p->from_account).balance;
  e.owner_version = st.core.version;
  e.reference = m.note;
  e.counterparty = m.counterparty.empty() ? m.to_id : m.counterparty;
  e.created_at = now_rfc3339();
  auto id = e.move_id;
  std::vector<journal::row> rows;
  rows.reserve(4);
  K::state_rows(self, rows);
  rows.push_back(entry_row(K::leg_of(self, m.p->from_account), e));
  rows.push_back(reserve_row(id, *m.p, st.core.id, m.to_id, m.amount, m.note, e.created_at,
                             m.key, m.key_user));
  saga s;
  s.p = m.p;
  s.to_id = m.to_id;
  s.amount = m.amount;
  s.note = m.note;
  s.client = rp;
  s.reply_body = K::render(self, e);
  s.reply_version = st.core.version;
  s.reserved = false;
  s.key = m.key;
  s.key_user = m.key_user;
  s.key_hash = m.key_hash;
  s.ok_status = m.p->ok_status;
  if (!s.key.empty()) {
    // Until the saga ends the key answers 409; its final answer replaces
    // this row (version 2), also when a resumed saga ends.
    rows.push_back(key_row(s.key_user, s.key, s.key_hash, s.reply_body, actors::errc::in_progress));
  }
  auto& b = K::money(self);
  b.outgoing += m.amount;
  b.sagas.emplace(id, std::move(s));
  ++st.core.busy;  // until the saga ends
  auto snap = K::snapshot(self);
  auto version = st.core.version;
  actors::persist(self, st.core, std::move(rows), true, [self, id, snap, version](bool ok) mutable {
    auto* s = find_saga<K>(self, id);
    if (!ok || s == nullptr) {
      if (s != nullptr && s->client) s->client->deliver(not_stored());
      K::lost(self);
      return;
    }
    s->reserved = true;
    K::changed(self, std::move(snap), version);
    send_credit<K>(self, id);
  });
}

/// Serves start_cmd: another entity asks for move `c.move_id` from this
/// entity. The id is the asker's; a move already made (or refused) under it
/// is answered from its row, never made twice.
template <class K, class Self>
void on_start(Self* self, start_cmd& c, caf::response_promise rp) {
  auto* p = plan_of(c.type);
  if (p == nullptr || c.amount <= 0 || !is_uuid(c.move_id)) {
    rp.deliver(actors::fail(actors::errc::invalid, "not a move this entity can make"));
    return;
  }
  auto& b = K::money(self);
  if (auto* s = find_saga<K>(self, c.move_id)) {
    // Under way (resumed after a crash, or asked for twice): the newest
    // asker waits for its end.
    if (s->client) s->client->deliver(actors::fail(actors::errc::unavailable, "asked again"));
    s->client = rp;
    return;
  }
  if (b.starting.count(c.move_id) > 0 || b.within.count(c.move_id) > 0) {
    rp.deliver(actors::fail(actors::errc::unavailable, "this move is being started"));
    return;
  }
  b.starting.insert(c.move_id);
  ++self->state.core.busy;
  auto id = c.move_id;
  auto done = [self, id] {
    K::money(self).starting.erase(id);
    K::trim(self);
    --self->state.core.busy;
    actors::finish_if_idle(self, self->state.core);
  };
  move_request m;
  m.p = p;
  m.id = c.move_id;
  m.to_id = c.to_id;
  m.amount = c.amount;
  m.note = c.note;
  m.counterparty = c.counterparty;
  actors::on_pool(
    self,
    [self, id, m, rp, done](pg::connection& conn) mutable -> std::function<void()> {
      auto r = conn.exec("SELECT state FROM transfers WHERE id = $1", {id});
      return [self, r, m, rp, done]() mutable {
        if (!r.ok()) {
          rp.deliver(actors::fail(actors::errc::unavailable, "the database is unavailable"));
        } else if (r.rows.empty()) {
          start<K>(self, std::move(m), rp);
        } else {
          switch (ledger::parse_step_state(r.value(0, 0))) {
            case ledger::step_state::credited:
            case ledger::step_state::settled:
              rp.deliver(actors::success("{}", self->state.core.version));
              break;
            case ledger::step_state::refused:
            case ledger::step_state::reversed:
              rp.deliver(actors::fail(actors::errc::conflict, "this move was refused"));
              break;
            default:
              rp.deliver(actors::fail(actors::errc::unavailable, "this move is under way"));
          }
        }
        done();
      };
    },
    [rp, done](const std::string& why) mutable {
      rp.deliver(actors::fail(actors::errc::unavailable, why));
      done();
    });
}

/// Resumes what a crash left pending (after the entity loaded its state).
/// Every step is safe to take again: the destination answers a repeat with
/// what it decided the first time.
template <class K, class Self>
void resume(Self* self, std::vector<pending>& moves) {
  auto& st = self->state;
  std::vector<std::string> ids;
  for (auto& p : moves) {
    auto* pl = plan_of(p.type);
    if (pl == nullptr) continue;
    saga s;
    s.p = pl;
    s.to_id = p.to_id;
    s.amount = p.amount;
    s.note = p.note;
    s.attempts = 1;  // the next credit may be a repeat
    s.key = p.key;
    s.key_user = p.key_user;
    s.key_hash = p.key_hash;
    s.reply_body = p.reply_body;
    s.ok_status = pl->ok_status;
    s.reply_version = st.core.version;
    auto state = ledger::parse_step_state(p.state);
    s.held = state != ledger::step_state::credited;
    s.decided = state != ledger::step_state::reserved;
    auto& b = K::money(self);
    if (s.held) b.outgoing += s.amount;
    b.sagas.emplace(p.id, std::move(s));
    ++st.core.busy;
    ids.push_back(p.id);
    gm::log::get("money")->info("resuming {} {} ({})", p.type, p.id, p.state);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    auto& id = ids[i];
    auto* s = find_saga<K>(self, id);
    auto state = ledger::parse_step_state(moves[i].state);
    if (state == ledger::step_state::credited) {
      s->write_settled = true;
      settle<K>(self, id);
    } else if (state == ledger::step_state::refused) {
      reverse<K>(self, id, actors::fail(actors::errc::invalid, "the destination refused this move"));
    } else {
      send_credit<K>(self, id);
    }
  }
}

// ---- the destination side -----------------------------------------------------

template <class K, class Self>
void credit_done(Self* self, const std::string& id) {
  K::money(self).credits_in_flight.erase(id);
  K::trim(self);
}

/// Applies a credit this entity decided to apply (credits_in_flight holds
/// the move until its rows committed): the money, or a durable refusal
/// that every later request for this credit reads back.
template <class K, class Self>
void apply_credit(Self* self, const credit_cmd& c, const plan& p, caf::response_promise rp) {
  auto& st = self->state;
  auto id = c.move_id;
  if (!actors::journal_accepting(*K::money_settings(self).gate)) {
    credit_done<K>(self, id);
    rp.deliver(journal_full());
    return;
  }
  std::vector<journal::row> rows;
  auto chk = ledger::can_credit(K::balances(self, p.to_account), c.amount,
                                K::money_settings(self).max_balance);
  auto why = chk == ledger::check::ok ? K::accept(self, c, rows)
                                      : actors::fail(actors::errc::invalid, ledger::describe(chk));
  if (!why.ok()) {
    std::vector<journal::row> refusal;
    refusal.push_back(step_row(id, "refused", v_received));
    actors::persist(self, st.core, std::move(refusal), true,
                    [self, id, why, rp](bool ok) mutable {
                      credit_done<K>(self, id);
                      rp.deliver(ok ? why : not_stored());
                      if (!ok) K::lost(self);
                    });
    return;
  }
  K::add(self, p.to_account, c.amount);
  ++st.core.version;
  entry e;
  e.id = new_time_uuid();
  e.move_id = id;
  e.type = p.in_entry;
  e.amount = c.amount;
  e.delta = c.amount;
  e.balance_after = K::balances(self, p.to_account).balance;
  e.owner_version = st.core.version;
  e.reference = c.note;
  e.counterparty = c.from_id;
  e.created_at = now_rfc3339();
  K::state_rows(self, rows);
  rows.push_back(entry_row(K::leg_of(self, p.to_account), e));
  // `last`: the source has nothing to record after this step, so it ends
  // the saga here (one write of the move's row less).
  rows.push_back(c.last ? step_row(id, "settled", v_final) : step_row(id, "credited", v_received));
  auto version = st.core.version;
  auto snap = K::snapshot(self);
  actors::persist(self, st.core, std::move(rows), true,
                  [self, id, rp, version, snap](bool ok) mutable {
    credit_done<K>(self, id);
    if (!ok) {
      rp.deliver(not_stored());
      K::lost(self);
      return;
    }
    rp.deliver(actors::success("{}", version));
    K::changed(self, std::move(snap), version);
  });
}

template <class K, class Self>
void on_credit_decision(Self* self, ledger::credit_decision d, const credit_cmd& c,
                        const plan& p, caf::response_promise rp) {
  using ledger::credit_decision;
  switch (d) {
    case credit_decision::apply:
      apply_credit<K>(self, c, p, rp);
      return;
    case credit_decision::already:
      credit_done<K>(self, c.move_id);
      rp.deliver(actors::success("{}", self->state.core.version));
      return;
    case credit_decision::refused:
      credit_done<K>(self, c.move_id);
      rp.deliver(actors::fail(actors::errc::invalid, "the destination refused this move"));
      return;
    case credit_decision::busy:
      rp.deliver(actors::fail(actors::errc::unavailable, "this credit is being applied"));
      return;
    case credit_decision::unknown:
      credit_done<K>(self, c.move_id);
      rp.deliver(actors::fail(actors::errc::unavailable, "this move is not known yet"));
      return;
  }
}

/// Serves credit_cmd: applies it at most once per move (ledger::decide_credit).
template <class K, class Self>
void on_credit(Self* self, credit_cmd c, caf::response_promise rp) {
  auto* p = plan_of(c.type);
  if (p == nullptr || std::string{K::kind()} != p->to_kind) {
    rp.deliver(actors::fail(actors::errc::invalid, "not a move this entity can take"));
    return;
  }
  auto& st = self->state;
  auto& b = K::money(self);
  bool in_flight = b.credits_in_flight.count(c.move_id) > 0;
  if (in_flight || !c.maybe_repeat) {
    if (!in_flight) b.credits_in_flight.insert(c.move_id);
    on_credit_decision<K>(self, ledger::decide_credit(in_flight, std::nullopt), c, *p, rp);
    return;
  }
  // A repeat: what happened to the first request is in PostgreSQL (this
  // activation synced with the journal when it loaded, and every credit
  // since is in credits_in_flight until it committed). The move is in
  // flight from here on, so a second repeat waits instead of reading the
  // same `reserved` and applying too.
  b.credits_in_flight.insert(c.move_id);
  ++st.core.busy;
  auto finish = [self] {
    --self->state.core.busy;
    actors::finish_if_idle(self, self->state.core);
  };
  auto id = c.move_id;
  actors::on_pool(
    self,
    [self, id, c, p, rp, finish](pg::connection& conn) mutable -> std::function<void()> {
      auto r = conn.exec("SELECT state FROM transfers WHERE id = $1", {id});
      return [self, r, c, p, rp, finish]() mutable {
        if (!r.ok()) {
          credit_done<K>(self, c.move_id);
          rp.deliver(actors::fail(actors::errc::unavailable, "the database is unavailable"));
        } else {
          auto state = ledger::parse_step_state(r.rows.empty() ? "" : r.value(0, 0));
          on_credit_decision<K>(self, ledger::decide_credit(false, state), c, *p, rp);
        }
        finish();
      };
    },
    [self, id, rp, finish](const std::string& why) mutable {
      credit_done<K>(self, id);
      rp.deliver(actors::fail(actors::errc::unavailable, why));
      finish();
    });
}

// ---- dispatch -------------------------------------------------------------------

/// Serves the money mechanism's messages (retries, credit_cmd, start_cmd,
/// resume_cmd); returns nullopt for anything else. Kinds call it from
/// their default handler.
template <class K, class Self>
std::optional<caf::result<caf::message>> dispatch(Self* self, caf::message_view& xs) {
  auto& c = xs.content();
  if (c.match_elements<retry_atom, std::string>()) {
    auto* s = find_saga<K>(self, c.get_as<std::string>(1));
    if (s != nullptr && s->reserved && !s->decided) send_credit<K>(self, c.get_as<std::string>(1));
    return caf::result<caf::message>{caf::delegated<caf::message>{}};
  }
  if (c.match_elements<credit_cmd>()) {
    on_credit<K>(self, std::move(c.get_mutable_as<credit_cmd>(0)), self->make_response_promise());
    return caf::result<caf::message>{caf::delegated<caf::message>{}};
  }
  if (c.match_elements<start_cmd>()) {
    on_start<K>(self, c.get_mutable_as<start_cmd>(0), self->make_response_promise());
    return caf::result<caf::message>{caf::delegated<caf::message>{}};
  }
  if (c.match_elements<resume_cmd>()) {
    auto n = self->state.core.version;
    return caf::result<caf::message>{caf::make_message(actors::success(
      std::to_string(K::money(self).sagas.size()), n))};
  }
  return std::nullopt;
}

} // namespace gm::money
