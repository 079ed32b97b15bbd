// Implements the gig contract entity: activation (load), its steps
// (rules.hpp), the escrow moves it asks the client's wallet for, the
// delivery deadline, reviews and notifications.
//
// Every step is written before it is answered (durable). A step that moves
// money is written twice: its decision (`settling` names the move), then,
// once the wallet has made the move, its outcome. The move's id is derived
// from the contract and the move, so asking again after a crash never moves
// twice; activation asks again for a decided move, and the contract sweep
// activates contracts that left one, or whose deadline passed while they
// were not active.
#include "actors/contract/contract.hpp"
#include "actors/contract/rules.hpp"
#include "actors/contract/store.hpp"

#include <algorithm>
#include <optional>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/commands.hpp"
#include "actors/entity_core.hpp"
#include "actors/money/keys.hpp"
#include "actors/money/moves.hpp"
#include "actors/money/saga.hpp"
#include "actors/router.hpp"
#include "actors/sweep.hpp"
#include "actors/topics.hpp"
#include "actors/user/commands.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::contract {

using nlohmann::json;
using actors::errc;
using actors::entity_reply;
using actors::fail;
using actors::success;

std::string id_of_gig(const std::string& gig_id) {
  return money::derived_id("gig:" + gig_id + ":contract");
}

namespace {

/// Whoever waits for the move in `settling` to end, and the key its end
/// answers (also after the client was told the outcome is unknown).
struct waiter {
  std::optional<caf::response_promise> rp;
  std::string user;
  std::string key;
  std::string hash;
  int32_t ok_status = 200;
};

struct state {
  actors::entity_core core;  // core.id: the contract's id
  contract c;
  const environment* env = nullptr;
  std::unique_ptr<money::book> money;  // Idempotency-Keys (saga.hpp's with_key)
  std::shared_ptr<actors::ask_book> asks;
  std::optional<waiter> waiting;
  bool asking = false;   // a move is asked for and not answered
  bool reading = false;  // an accept reads its gig and proposal
  int64_t armed_at = 0;  // the deadline a timer is armed for (Unix ms; 0: none)
  static inline const char* name = "gm.contract";
};

using contract_actor = caf::stateful_actor<state>;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json contract_json(const state& st) {
  auto& c = st.c;
  json j = {{"id", c.id},
            {"gig_id", c.gig_id},
            {"proposal_id", c.proposal_id},
            {"client_id", c.client_id},
            {"hustler_id", c.hustler_id},
            {"title", c.title},
            {"agreed_price", c.agreed_price},
            {"delivery_days", c.delivery_days},
            {"status", c.status},
            {"version", st.core.version},
            {"created_at", c.created_at},
            {"client_reviewed", c.client_reviewed},
            {"hustler_reviewed", c.hustler_reviewed}};
  auto opt = [&j](const char* k, const std::string& v) {
    if (!v.empty()) j[k] = v;
  };
  opt("delivery_note", c.delivery_note);
  opt("delivered_at", c.delivered_at);
  opt("dispute_reason", c.dispute_reason);
  opt("disputed_by", c.disputed_by);
  opt("resolution", c.resolution);
  opt("completed_at", c.completed_at);
  if (c.auto_release_at_ms != 0) j["auto_release_at"] = rfc3339_of_ms(c.auto_release_at_ms);
  if (!c.settling.empty() && c.settling != "lock") j["escrow_settling"] = c.settling;
  return j;
}

std::string empty_state(contract_actor*) {
  return "{}";
}

std::string state_json(contract_actor* self) {
  auto& st = self->state;
  auto j = contract_json(st);
  j["status"] = st.c.status.empty() ? "none" : st.c.status;
  j["settling"] = st.c.settling;
  j["asking_wallet"] = st.asking;
  if (st.armed_at != 0) j["deadline_armed_for"] = rfc3339_of_ms(st.armed_at);
  return dump(j);
}

void publish(contract_actor* self, std::string body, int64_t version) {
  topics::publish(self->system(), self->state.env->events.get(), "contract:" + self->state.core.id,
                  "contract.updated", version, std::move(body));
}

/// `notification.new` to `user`: `what` happened to this contract.
void notify(contract_actor* self, const std::string& user, const char* what) {
  auto& c = self->state.c;
  topics::notify(self->system(), self->state.env->events.get(), user,
                 dump(json{{"type", what},
                           {"contract_id", c.id},
                           {"gig_id", c.gig_id},
                           {"title", c.title},
                           {"status", c.status},
                           {"agreed_price", c.agreed_price}}));
}

// ---- keys: the contract holds no money, but its money POSTs take keys ----

struct key_traits {
  static money::book& money(contract_actor* self) {
    auto& st = self->state;
    if (!st.money) st.money = std::make_unique<money::book>();
    return *st.money;
  }
  static void trim(contract_actor* self) {
    auto& st = self->state;
    if (st.money && st.money->idle()) st.money.reset();
  }
  static const money::settings& money_settings(contract_actor* self) {
    return self->state.env->money;
  }
};

using K = key_traits;

entity_reply refusal(const decision& d) {
  switch (d.v) {
    case verdict::not_found: return fail(errc::not_found, d.detail);
    case verdict::forbidden: return fail(errc::forbidden, d.detail);
    case verdict::conflict: return fail(errc::conflict, d.detail);
    default: return fail(errc::invalid, d.detail);
  }
}

/// The journal refused or lost the contract's rows: its state may be ahead
/// of PostgreSQL. It fails; its next activation reads what was stored.
void lost(contract_actor* self) {
  auto& st = self->state;
  if (std::strcmp(st.core.status, "failed") == 0) return;
  if (st.waiting && st.waiting->rp) st.waiting->rp->deliver(money::not_stored());
  st.waiting.reset();
  actors::fail_entity(self, type, &empty_state);
}

/// Writes the contract (version bumped) with `extra` rows; then `then`.
void write(contract_actor* self, std::vector<journal::row> extra, std::function<void()> then) {
  auto& st = self->state;
  std::vector<journal::row> rows;
  rows.reserve(extra.size() + 1);
  rows.push_back(contract_row(st.c, st.core.version));
  for (auto& r : extra) rows.push_back(std::move(r));
  actors::persist(self, st.core, std::move(rows), true, [self, then](bool ok) {
    if (!ok) {
      lost(self);
      return;
    }
    then();
  });
}

void arm_deadline(contract_actor* self);

// ---- escrow moves ----------------------------------------------------------

using retry_atom = caf::atom_constant<caf::atom("k_retry")>;
using due_atom = caf::atom_constant<caf::atom("k_due")>;

void on_moved(contract_actor* self, entity_reply& r);

/// Asks the client's wallet for the move `settling` names. Its id is
/// derived from the contract and the decision, so a second request for it
/// is answered from the first.
void ask_move(contract_actor* self) {
  auto& st = self->state;
  auto& c = st.c;
  if (c.settling.empty() || st.asking) return;
  money::start_cmd cmd;
  cmd.amount = c.agreed_price;
  cmd.counterparty = c.hustler_id;
  // The decision's version names the move: nothing else changes the
  // contract while a move is decided (rules.hpp), so activation finds the
  // same version, and a later decision (after a refusal) a new move.
  auto name = "contract:" + c.id + ":" + c.settling + ":" + std::to_string(st.core.version);
  cmd.move_id = money::derived_id(name);
  if (c.settling == "lock") {
    cmd.type = "escrow_lock";
    cmd.to_id = c.client_id;
    cmd.note = "escrow for contract " + c.title;
  } else if (c.settling == "release") {
    cmd.type = "escrow_release";
    cmd.to_id = c.hustler_id;
    cmd.note = "payment for contract " + c.title;
  } else {
    cmd.type = "escrow_refund";
    cmd.to_id = c.client_id;
    cmd.note = "refund of contract " + c.title;
  }
  st.asking = true;
  ++st.core.busy;
  // A release is a saga of two wallets: allow it two steps' time.
  actors::ask(self, st.asks, {"wallet", c.client_id}, caf::make_message(std::move(cmd)),
              st.env->money.step_timeout * 2, [self](entity_reply& r) {
                auto& st = self->state;
                st.asking = false;
                --st.core.busy;
                on_moved(self, r);
                actors::finish_if_idle(self, st.core);
              });
}

/// The move in `settling` ended: `ok`, or refused for good (`why`).
void settle(contract_actor* self, bool ok, const entity_reply& why) {
  auto& st = self->state;
  auto& c = st.c;
  auto move = c.settling;
  auto by = c.settle_by;
  std::vector<journal::row> extra;
  const char* note = nullptr;     // to the other party(ies)
  bool both = false;
  if (move == "lock") {
    if (ok) {
      c.status = "active";
      extra.push_back(gig_close_row(c));
      note = "proposal.accepted";
    } else {
      c.status = "void";
    }
  } else if (ok) {
    c.status = move == "refund" ? "refunded" : "completed";
    c.completed_at = now_rfc3339();
    c.auto_release_at_ms = 0;
    if (c.resolution == "auto") {
      note = "contract.auto_released";
      both = true;
    } else if (!c.resolution.empty()) {
      note = "contract.resolved";
      both = true;
    } else {
      note = "contract.approved";
    }
  } else {
    // Refused for good (the hustler's wallet cannot take the amount): the
    // contract is as before, and the deadline does not try again by itself.
    if (c.resolution == "auto") c.auto_release_at_ms = 0;
    c.resolution.clear();
  }
  c.settling.clear();
  c.settle_by.clear();
  ++st.core.version;
  auto version = st.core.version;
  auto w = std::move(st.waiting);
  st.waiting.reset();
  auto body = dump(contract_json(st));
  bool shown_now = shown(c);
  // The refusal's answer: insufficient funds (a lock), else a conflict.
  auto code = why.error() == errc::insufficient_funds ? errc::insufficient_funds : errc::conflict;
  auto detail = move == "lock" ? why.detail
                               : "the escrow could not be " +
                                   std::string{move == "refund" ? "refunded" : "released"} + ": " +
                                   why.detail;
  // The key's answer goes with the change that decides it.
  if (w && !w->key.empty()) {
    extra.push_back(ok ? money::key_row(w->user, w->key, w->hash, body, errc::ok, 1, w->ok_status)
                       : money::key_row(w->user, w->key, w->hash, detail, code));
  }
  write(self, std::move(extra), [self, ok, code, detail, w, body, version, note, both, by,
                                 shown_now, move]() mutable {
    auto& st = self->state;
    auto& c = st.c;
    if (w) {
      if (!w->key.empty()) {
        if (ok) {
          money::keys_of<K>(self).done(w->user, w->key, body, version, errc::ok, w->hash,
                                       w->ok_status);
        } else {
          money::keys_of<K>(self).done(w->user, w->key, detail, 0, code, w->hash);
        }
      }
      if (w->rp) w->rp->deliver(ok ? success(body, version) : fail(code, detail));
    } else if (!ok) {
      gm::log::get("contract")->warn("contract {}: the escrow's {} was refused: {}", c.id, move,
                                     detail);
    }
    if (shown_now) publish(self, body, version);
    if (note != nullptr) {
      if (both) {
        notify(self, c.client_id, note);
        notify(self, c.hustler_id, note);
      } else {
        // To the other party than the one who took the step.
        notify(self, by == c.client_id ? c.hustler_id : c.client_id, note);
      }
    }
    arm_deadline(self);
  });
}

void on_moved(contract_actor* self, entity_reply& r) {
  auto& st = self->state;
  if (st.c.settling.empty()) return;
  if (r.ok()) {
    settle(self, true, r);
    return;
  }
  auto e = r.error();
  if (e == errc::insufficient_funds || e == errc::conflict || e == errc::invalid) {
    settle(self, false, r);
    return;
  }
  // Unknown (the wallet is busy, or did not answer in time): the move may
  // still be made. Its client hears that; the contract asks again, and the
  // key (held meanwhile: a repeat gets 409) answers with the outcome.
  if (st.waiting && st.waiting->rp) {
    st.waiting->rp->deliver(fail(errc::outcome_unknown,
                                 "the escrow's " + st.c.settling +
                                   " is under way; retry with the same Idempotency-Key"));
    st.waiting->rp.reset();
  }
  self->delayed_send(self, std::chrono::seconds{1}, retry_atom::value);
}

/// Writes the decision to make the escrow move `move` (by `user`; "" the
/// deadline), then asks the wallet; `w` waits for its end.
void decide_move(contract_actor* self, const std::string& move, const std::string& user,
                 std::optional<waiter> w) {
  auto& st = self->state;
  st.c.settling = move;
  st.c.settle_by = user;
  ++st.core.version;
  st.waiting = std::move(w);
  write(self, {}, [self] { ask_move(self); });
}

// ---- the delivery deadline --------------------------------------------------

void arm_deadline(contract_actor* self) {
  auto& st = self->state;
  auto& c = st.c;
  if (c.status != "delivered" || !c.settling.empty() || c.auto_release_at_ms == 0) return;
  if (st.armed_at == c.auto_release_at_ms) return;
  st.armed_at = c.auto_release_at_ms;
  auto wait = std::max<int64_t>(0, c.auto_release_at_ms - now_unix_ms());
  // delayed_send takes a duration; a deadline years away is re-armed when
  // it fires early.
  wait = std::min<int64_t>(wait, 86400000LL * 30);
  self->delayed_send(self, std::chrono::milliseconds{wait}, due_atom::value, c.auto_release_at_ms);
}

void on_deadline(contract_actor* self, int64_t at) {
  auto& st = self->state;
  if (at != st.armed_at) return;
  st.armed_at = 0;
  if (!auto_release_due(st.c, now_unix_ms())) {
    arm_deadline(self);
    return;
  }
  if (!actors::journal_accepting(*st.env->money.gate)) {
    st.armed_at = at;
    self->delayed_send(self, std::chrono::seconds{1}, due_atom::value, at);
    return;
  }
  gm::log::get("contract")->info("contract {}: the client did not answer the delivery; releasing",
                                 st.c.id);
  st.c.resolution = "auto";
  decide_move(self, "release", "", std::nullopt);
}

// ---- commands -----------------------------------------------------------------

using result = caf::result<caf::message>;

result on_get(contract_actor* self, get_cmd& c) {
  auto& st = self->state;
  if (!shown(st.c) || party_of(st.c, c.user, c.role) == party::stranger) {
    return caf::make_message(fail(errc::not_found, "no such contract"));
  }
  return caf::make_message(success(dump(contract_json(st)), st.core.version));
}

/// Refuses an accept for a reason that says nothing of its key.
void refuse_open(contract_actor* self, const open_cmd& o, caf::response_promise& rp,
                 entity_reply why) {
  money::release_key<K>(self, o.user, o.key);
  rp.deliver(std::move(why));
}

/// The gig and the proposal as PostgreSQL holds them (gateway/gig_routes).
struct offer {
  std::string error;
  bool gig = false, proposal = false;
  std::string owner, title, gig_status, hustler;
  int64_t price = 0;
  int32_t days = 0;
};

void open(contract_actor* self, const open_cmd& o, caf::response_promise rp) {
  auto& st = self->state;
  auto& c = st.c;
  if (st.reading || c.status == "opening") {
    return refuse_open(self, o, rp,
                       fail(errc::in_progress, "a proposal of this gig is being accepted"));
  }
  if (!c.status.empty() && c.status != "void") {
    return refuse_open(self, o, rp,
                       fail(errc::conflict, c.proposal_id == o.proposal_id
                                              ? "this proposal has been accepted already"
                                              : "the gig has a contract already"));
  }
  st.reading = true;
  ++st.core.busy;
  auto finish = [self] {
    self->state.reading = false;
    --self->state.core.busy;
    actors::finish_if_idle(self, self->state.core);
  };
  actors::on_pool(
    self,
    [self, o, rp, finish](pg::connection& conn) mutable -> std::function<void()> {
      offer f;
      auto r = conn.exec("SELECT g.client_id, g.title, g.status, p.hustler_id, p.proposed_price, "
                         "p.delivery_days FROM gigs g LEFT JOIN proposals p "
                         "ON p.id = $2 AND p.gig_id = g.id WHERE g.id = $1",
                         {o.gig_id, o.proposal_id});
      if (!r.ok()) {
        f.error = r.error;
      } else if (!r.rows.empty()) {
        f.gig = true;
        f.owner = r.value(0, 0);
        f.title = r.value(0, 1);
        f.gig_status = r.value(0, 2);
        f.proposal = r.rows[0][3].has_value();
        f.hustler = r.value(0, 3);
        f.price = std::stoll(r.value(0, 4, "0"));
        f.days = static_cast<int32_t>(std::stoll(r.value(0, 5, "0")));
      }
      return [self, o, rp, finish, f]() mutable {
        finish();
        auto& st = self->state;
        if (!f.error.empty()) {
          return refuse_open(self, o, rp,
                             fail(errc::unavailable, "the database is unavailable, retry shortly"));
        }
        if (!f.gig) return refuse_open(self, o, rp, fail(errc::not_found, "no such gig"));
        if (f.owner != o.user) {
          return refuse_open(self, o, rp,
                             fail(errc::forbidden, "only the gig's owner accepts a proposal"));
        }
        if (!f.proposal) {
          return refuse_open(self, o, rp, fail(errc::not_found, "no such proposal on this gig"));
        }
        if (f.gig_status != "open") {
          return refuse_open(self, o, rp, fail(errc::conflict, "the gig is closed"));
        }
        if (!actors::journal_accepting(*st.env->money.gate)) {
          return refuse_open(self, o, rp, money::journal_full());
        }
        contract x;
        x.id = st.core.id;
        x.gig_id = o.gig_id;
        x.proposal_id = o.proposal_id;
        x.client_id = o.user;
        x.hustler_id = f.hustler;
        x.title = f.title;
        x.agreed_price = f.price;
        x.delivery_days = f.days;
        x.status = "opening";
        x.created_at = now_rfc3339();
        st.c = std::move(x);
        decide_move(self, "lock", o.user, waiter{rp, o.user, o.key, o.hash, 201});
      };
    },
    [self, o, rp, finish](const std::string& why) mutable {
      finish();
      refuse_open(self, o, rp, fail(errc::unavailable, why));
    });
}

result on_open(contract_actor* self, open_cmd& o) {
  auto rp = self->make_response_promise();
  if (!is_uuid(o.gig_id) || !is_uuid(o.proposal_id) || !is_uuid(o.user) ||
      id_of_gig(o.gig_id) != self->state.core.id) {
    rp.deliver(fail(errc::invalid, "not an accept this contract can take"));
    return rp;
  }
  money::with_key<K>(self, o.user, o.key, o.hash, rp, [self, o, rp] { open(self, o, rp); });
  return rp;
}

void act(contract_actor* self, const act_cmd& a, action what, caf::response_promise rp) {
  auto& st = self->state;
  auto& c = st.c;
  auto p = party_of(c, a.user, a.role);
  auto d = can(c, what, p);
  if (!d.ok()) {
    money::release_key<K>(self, a.user, a.key);
    rp.deliver(refusal(d));
    return;
  }
  if (!actors::journal_accepting(*st.env->money.gate)) {
    money::release_key<K>(self, a.user, a.key);
    rp.deliver(money::journal_full());
    return;
  }
  auto move = move_of(what, a.release_to);
  if (!move.empty()) {
    if (what == action::resolve) c.resolution = a.release_to;
    decide_move(self, move, a.user, waiter{rp, a.user, a.key, a.hash, 200});
    return;
  }
  const char* note = nullptr;
  c.status = status_after(what, a.release_to);
  if (what == action::deliver) {
    c.delivery_note = a.text;
    auto now = now_unix_ms();
    c.delivered_at = rfc3339_of_ms(now);
    c.auto_release_at_ms = auto_release_at(now, st.env->auto_release_ms);
    note = "contract.delivered";
  } else {  // dispute: the escrow stays where it is until an admin resolves
    c.dispute_reason = a.text;
    c.disputed_by = a.user;
    c.auto_release_at_ms = 0;
    note = "contract.disputed";
  }
  ++st.core.version;
  auto version = st.core.version;
  auto body = dump(contract_json(st));
  auto user = a.user;
  write(self, {}, [self, rp, body, version, note, user]() mutable {
    auto& c = self->state.c;
    rp.deliver(success(body, version));
    publish(self, body, version);
    notify(self, user == c.client_id ? c.hustler_id : c.client_id, note);
    arm_deadline(self);
  });
}

result on_act(contract_actor* self, act_cmd& a) {
  auto rp = self->make_response_promise();
  action what;
  if (!parse_action(a.what, what)) {
    rp.deliver(fail(errc::invalid, "not a step of a contract"));
    return rp;
  }
  if (what == action::resolve && a.release_to != "hustler" && a.release_to != "client") {
    rp.deliver(fail(errc::invalid, "release_to: must be hustler or client"));
    return rp;
  }
  // Who may not take this step at all hears so before the key is looked at.
  auto d = can(self->state.c, what, party_of(self->state.c, a.user, a.role));
  if (d.v == verdict::not_found || d.v == verdict::forbidden) {
    rp.deliver(refusal(d));
    return rp;
  }
  money::with_key<K>(self, a.user, a.key, a.hash, rp,
                     [self, a, what, rp] { act(self, a, what, rp); });
  return rp;
}

result on_review(contract_actor* self, review_cmd& r) {
  auto& st = self->state;
  auto& c = st.c;
  auto p = party_of(c, r.user, r.role);
  auto d = can(c, action::review, p);
  if (!d.ok()) return caf::make_message(refusal(d));
  if (r.rating < 1 || r.rating > 5) {
    return caf::make_message(fail(errc::invalid, "rating: must be an integer from 1 to 5"));
  }
  if (!actors::journal_accepting(*st.env->money.gate)) {
    return caf::make_message(money::journal_full());
  }
  auto reviewee = p == party::client ? c.hustler_id : c.client_id;
  (p == party::client ? c.client_reviewed : c.hustler_reviewed) = true;
  ++st.core.version;
  auto id = new_uuid();
  auto at = now_rfc3339();
  json doc = {{"id", id},
              {"contract_id", c.id},
              {"reviewer_id", r.user},
              {"reviewee_id", reviewee},
              {"rating", r.rating},
              {"text", r.has_text ? json(r.text) : json(nullptr)},
              {"created_at", at}};
  auto review = dump(doc);
  std::vector<journal::row> extra;
  extra.push_back(review_row(c, id, r.user, reviewee, r.rating, r.has_text ? &r.text : nullptr, at));
  auto version = st.core.version;
  auto body = dump(contract_json(st));
  auto rp = self->make_response_promise();
  write(self, std::move(extra), [self, rp, review, body, version, reviewee]() mutable {
    rp.deliver(success(review, version));
    publish(self, body, version);
    notify(self, reviewee, "review.received");
    // The reviewee's profile reads its rating again.
    actors::ask(self, self->state.asks, {"user", reviewee}, caf::make_message(user::rated_cmd{}),
                std::chrono::seconds{10}, [](entity_reply&) {});
  });
  return rp;
}

const actors::command_table<contract_actor>& commands() {
  static const auto table = actors::command_table<contract_actor>{}
                              .on(&on_get)
                              .on(&on_open)
                              .on(&on_act)
                              .on(&on_review);
  return table;
}

caf::result<caf::message> dispatch(caf::scheduled_actor* ptr, caf::message_view& xs) {
  auto self = static_cast<contract_actor*>(ptr);
  auto& st = self->state;
  auto& c = xs.content();
  if (c.match_elements<actors::ask_tick_atom>()) {
    if (st.asks) actors::on_ask_tick(self, *st.asks);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<retry_atom>()) {
    ask_move(self);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<due_atom, int64_t>()) {
    on_deadline(self, c.get_as<int64_t>(1));
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<actors::inspect_atom>()) {
    return caf::make_message(actors::describe(self, st.core, state_json(self)));
  }
  if (c.match_elements<actors::passivate_atom>()) {
    actors::on_passivate(self, st.core);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<actors::exists_atom>()) {
    if (!shown(st.c)) return caf::make_message(fail(errc::not_found, "no such contract"));
    return caf::make_message(success("", st.core.version));
  }
  if (auto r = commands().dispatch(self, xs)) return std::move(*r);
  return caf::make_message(fail(errc::invalid, "contracts do not understand this command"));
}

caf::behavior active() {
  return {[](actors::run_atom, const actors::continuation& fn) { (*fn)(); }};
}

void on_loaded(contract_actor* self, loaded& l) {
  auto& st = self->state;
  if (!l.error.empty()) {
    gm::log::get("contract")->warn("contract {} could not load: {}", st.core.id, l.error);
    actors::give_up(self, type, errc::unavailable, "the database is unavailable, retry shortly",
                    "failed", &empty_state);
    return;
  }
  // No row: a contract not made yet, which only an accept (open_cmd) makes.
  if (l.found) {
    st.c = std::move(l.c);
    st.core.version = l.version;
  }
  st.c.id = st.core.id;
  st.core.status = "active";
  self->set_default_handler(dispatch);
  self->become(active());
  actors::announce_loaded(self, type, st.core.id);
  ask_move(self);  // a move decided before a crash
  arm_deadline(self);
}

caf::behavior contract_impl(contract_actor* self, std::string id, const environment* env) {
  auto& st = self->state;
  st.core.id = std::move(id);
  st.core.type = type;
  st.env = env;
  if (!is_uuid(st.core.id)) {
    actors::give_up(self, type, errc::not_found, "no such contract", "missing", &empty_state);
    return actors::entity_handlers(self, &empty_state);
  }
  self->set_default_handler(caf::skip);
  actors::load_entity(self, &load_rows, &on_loaded);
  return actors::entity_handlers(self, &empty_state);
}

/// What the contract sweep activates: contracts whose delivery deadline
/// passed, or that left an escrow move decided and not ended, while they
/// were not active (each then acts at once).
const char* due_contracts() {
  return
    "(SELECT id FROM contracts WHERE status = 'delivered' AND settling = '' "
    "AND auto_release_at <= now() LIMIT 1000) UNION "
    "(SELECT id FROM contracts WHERE (settling <> '' OR status = 'opening') "
    "AND updated_at < now() - interval '2 seconds' LIMIT 1000)";
}

} // namespace

actors::kind_registration registration() {
  actors::kind_registration r;
  r.type = type;
  r.topic = "contract";
  r.announce = [](caf::actor_system_config& cfg) {
    cfg.add_message_type<get_cmd>("gm_k_get")
      .add_message_type<open_cmd>("gm_k_open")
      .add_message_type<act_cmd>("gm_k_act")
      .add_message_type<review_cmd>("gm_k_review");
  };
  r.make = [](const actors::kind_context& ctx) {
    auto env = std::make_shared<environment>();
    env->money = money::settings_of(ctx);
    env->events = ctx.events;
    env->auto_release_ms = ctx.contract_auto_release_ms;
    actors::entity_kind k;
    k.type = type;
    k.spawn = [env](caf::local_actor* shard, const std::string& id) {
      return shard->spawn(contract_impl, id, env.get());
    };
    k.on_start = [env](caf::local_actor* shard) {
      actors::start_activation_sweep(shard, type, env->money.sweep_interval, due_contracts());
    };
    return k;
  };
  r.may_see = [](caf::event_based_actor* self, const actors::topic_caller& who,
                 const std::string& id, std::function<void(int, std::string)> done) {
    // Its parties (and admins) only: the contract answers exactly them.
    actors::ask(self, {type, id}, caf::make_message(get_cmd{who.user_id, who.role}),
                std::chrono::seconds{5}, [done](entity_reply& r) {
                  if (r.ok()) {
                    done(0, "");
                  } else if (r.error() == errc::not_found) {
                    done(404, "no such contract");
                  } else {
                    done(503, r.detail);
                  }
                });
  };
  return r;
}

} // namespace gm::contract
