// Implements the delivery task entity: activation (load), creation with its
// fee lock, dispatch (offers to riders, one at a time, with a timeout), the
// riders' and creator's steps (rules.hpp), the money moves it asks the
// creator's wallet for, and its sweep.
//
// Every step is written before it is answered or published (durable). A
// step that moves money is written twice, as a gig contract's is: its
// decision (`settling` names the move), then, once the wallet has made the
// move, its outcome. The move's id is derived from the task and the
// decision, so asking again after a crash never moves twice.
//
// Riders and tasks agree without sharing a transaction:
// - An offer: at once, the task writes `offered` (naming the rider) and
//   asks the rider to hold the offer (hold_cmd: a rider holds at most one,
//   until it runs out); once both are done it publishes `task.offered`. A
//   rider that refuses (it took another offer meanwhile) is replaced by
//   the next candidate in the next write. After a crash, the row names at
//   most one rider (no task is ever offered to two), and an offer runs out
//   by itself whichever side lost what.
// - An accept: the rider is asked to claim the task (claim_cmd: it turns
//   busy with it unless it holds another offer), then the task writes
//   `assigned`.
// - The task tells a rider it no longer holds or carries it (release_cmd,
//   finish_cmd for a completion, with its XP). A rider that activates asks
//   the task it holds or carries (whose_cmd) and mends itself, so a tell
//   lost to a crash costs nothing.
#include "actors/task/rules.hpp"
#include "actors/task/store.hpp"
#include "actors/task/task.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/commands.hpp"
#include "actors/dispatch/dispatcher.hpp"
#include "actors/entity_core.hpp"
#include "actors/money/keys.hpp"
#include "actors/money/moves.hpp"
#include "actors/money/saga.hpp"
#include "actors/rider/commands.hpp"
#include "actors/rider/rider.hpp"
#include "actors/router.hpp"
#include "actors/sweep.hpp"
#include "actors/topics.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::task {

using nlohmann::json;
using actors::errc;
using actors::entity_reply;
using actors::fail;
using actors::success;

std::string id_for(const std::string& user, const std::string& key) {
  if (key.empty()) return new_uuid();
  return money::derived_id("task:" + user + ":" + key);
}

namespace {

/// Whoever waits for the move in `settling` to end, and the key its end
/// answers.
struct waiter {
  std::optional<caf::response_promise> rp;
  std::string user;
  std::string key;
  std::string hash;
  int32_t ok_status = 200;
};

struct state {
  actors::entity_core core;  // core.id: the task's id
  task t;
  const environment* env = nullptr;
  std::unique_ptr<money::book> money;  // Idempotency-Keys (saga.hpp's with_key)
  std::shared_ptr<actors::ask_book> asks;
  std::optional<waiter> waiting;
  bool asking = false;    // a money move is asked for and not answered
  bool stepping = false;  // a rider is being asked (a dispatch, an accept, an assign)
  // Bumped by every change of status or decision: the answer of a step
  // begun before one is stale (its rider is released).
  uint64_t gen = 0;
  int64_t armed_until = 0;        // the offer timeout armed (Unix ms; 0: none)
  int64_t dispatch_start_us = 0;  // the dispatch under way began
  std::vector<std::function<void()>> after_step;  // steps waiting for `stepping` to end
  static inline const char* name = "gm.task";
};

using task_actor = caf::stateful_actor<state>;

using retry_atom = caf::atom_constant<caf::atom("t_retry")>;
using offer_due_atom = caf::atom_constant<caf::atom("t_due")>;
using dispatch_atom = caf::atom_constant<caf::atom("t_disp")>;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string body_of(const state& st) {
  return render(st.t, st.core.version);
}

std::string empty_state(task_actor*) {
  return "{}";
}

std::string state_json(task_actor* self) {
  auto& st = self->state;
  auto j = json::parse(body_of(st));
  j["status"] = st.t.status.empty() ? "none" : st.t.status;
  j["settling"] = st.t.settling;
  j["tried"] = st.t.tried;
  j["asking_wallet"] = st.asking;
  j["asking_rider"] = st.stepping;
  return dump(j);
}

/// Publishes the task's change on `task:{id}`, one event per change:
/// task.offered, task.assigned, or task.updated for every other. Its rider
/// publishes there too (rider.location), so the seq is the node's rising
/// clock (topics::clock_seq), not the task's version (in the data).
void publish(task_actor* self, const char* event, const std::string& body, int64_t) {
  topics::publish(self->system(), self->state.env->events.get(), "task:" + self->state.core.id,
                  event, topics::clock_seq(), body);
}

/// `notification.new` to `user`: `what` happened to this task.
void notify(task_actor* self, const std::string& user, const char* what) {
  auto& t = self->state.t;
  topics::notify(self->system(), self->state.env->events.get(), user,
                 dump(json{{"type", what}, {"task_id", t.id}, {"status", t.status}, {"fee", t.fee}}));
}

// ---- keys: the task holds no money, but its money POSTs take keys ----------

struct key_traits {
  static money::book& money(task_actor* self) {
    auto& st = self->state;
    if (!st.money) st.money = std::make_unique<money::book>();
    return *st.money;
  }
  static void trim(task_actor* self) {
    auto& st = self->state;
    if (st.money && st.money->idle()) st.money.reset();
  }
  static const money::settings& money_settings(task_actor* self) {
    return self->state.env->money;
  }
};

using K = key_traits;

entity_reply refusal(const decision& d) {
  switch (d.v) {
    case verdict::not_found: return fail(errc::not_found, d.detail);
    case verdict::forbidden: return fail(errc::forbidden, d.detail);
    default: return fail(errc::conflict, d.detail);
  }
}

/// The journal refused or lost the task's rows: its state may be ahead of
/// PostgreSQL. It fails; its next activation reads what was stored.
void lost(task_actor* self) {
  auto& st = self->state;
  if (std::strcmp(st.core.status, "failed") == 0) return;
  if (st.waiting && st.waiting->rp) st.waiting->rp->deliver(money::not_stored());
  st.waiting.reset();
  actors::fail_entity(self, type, &empty_state);
}

/// Writes the task (its version bumped by the caller) with `extra` rows;
/// then `then`.
void write(task_actor* self, std::vector<journal::row> extra, std::function<void()> then) {
  auto& st = self->state;
  std::vector<journal::row> rows;
  rows.reserve(extra.size() + 1);
  rows.push_back(task_row(st.t, st.core.version));
  for (auto& r : extra) rows.push_back(std::move(r));
  actors::persist(self, st.core, std::move(rows), true, [self, then](bool ok) {
    if (!ok) {
      lost(self);
      return;
    }
    then();
  });
}

/// A change of the task's state: bumps its version and generation.
void changed(task_actor* self) {
  ++self->state.core.version;
  ++self->state.gen;
}

// ---- riders ------------------------------------------------------------------

/// Tells `rider` it no longer holds or carries this task.
void release_rider(task_actor* self, const std::string& rider) {
  if (rider.empty()) return;
  actors::tell(self->system(), {rider::type, rider},
               caf::make_message(rider::release_cmd{self->state.core.id}));
}

/// Tells the rider who delivered the task (XP, available again); asks
/// again a few times if it does not answer (it also asks the task itself
/// when it next activates).
void finish_rider(task_actor* self, int attempt) {
  auto& t = self->state.t;
  if (t.rider_id.empty() || attempt > 5) return;
  actors::ask(self, self->state.asks, {rider::type, t.rider_id},
              caf::make_message(rider::finish_cmd{t.id, t.on_time}), std::chrono::seconds{5},
              [self, attempt](entity_reply& r) {
                if (r.ok() || r.error() == errc::not_found) return;
                self->delayed_send(self, std::chrono::seconds{1} * attempt, retry_atom::value,
                                   attempt + 1);
              });
}

void dispatch_next(task_actor* self);

void arm_offer(task_actor* self) {
  auto& st = self->state;
  auto& t = st.t;
  if (t.status != "offered" || st.armed_until == t.offer_until_ms) return;
  st.armed_until = t.offer_until_ms;
  auto wait = std::max<int64_t>(0, t.offer_until_ms - now_unix_ms());
  self->delayed_send(self, std::chrono::milliseconds{wait}, offer_due_atom::value,
                     t.offer_until_ms);
}

/// The task goes back to pending (its offer declined or run out) and
/// offers itself to the next candidate.
void offer_ended(task_actor* self, std::function<void(const std::string&, int64_t)> answer) {
  auto& st = self->state;
  auto& t = st.t;
  release_rider(self, t.offered_to);
  t.status = "pending";
  t.offered_to.clear();
  t.offer_until_ms = 0;
  changed(self);
  auto version = st.core.version;
  auto body = body_of(st);
  write(self, {}, [self, body, version, answer] {
    if (answer) answer(body, version);
    publish(self, "task.updated", body, version);
    dispatch_next(self);
  });
}

void on_offer_due(task_actor* self, int64_t until) {
  auto& st = self->state;
  auto& t = st.t;
  if (until != st.armed_until) return;  // a later offer re-armed the timer
  st.armed_until = 0;
  if (t.status != "offered" || t.offer_until_ms != until) return;
  if (st.stepping || !t.settling.empty() || !actors::journal_accepting(*st.env->money.gate)) {
    // An accept (or a cancel) is under way: look again shortly.
    st.armed_until = until;
    self->delayed_send(self, std::chrono::milliseconds{100}, offer_due_atom::value, until);
    return;
  }
  gm::log::get("task")->debug("task {}: the offer to {} ran out", t.id, t.offered_to);
  offer_ended(self, nullptr);
}

void go_unassigned(task_actor* self) {
  auto& st = self->state;
  auto& t = st.t;
  t.status = "unassigned";
  t.offered_to.clear();
  t.offer_until_ms = 0;
  changed(self);
  auto version = st.core.version;
  auto body = body_of(st);
  write(self, {}, [self, body, version] {
    publish(self, "task.updated", body, version);
    notify(self, self->state.t.creator_id, "task.unassigned");
  });
}

/// Latency buckets for dispatch: 0.1 ms steps to 10 ms, then coarser.
std::vector<double> dispatch_buckets() {
  std::vector<double> b;
  for (int i = 1; i <= 100; ++i) b.push_back(i * 0.0001);
  for (double s : {0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0}) {
    b.push_back(s);
  }
  return b;
}

/// Dispatch start → offer sent; task created → its first offer sent.
metrics::histogram& dispatch_seconds() {
  static auto& h = metrics::global().get_histogram(
    "gigmesh_task_dispatch_seconds",
    "a task's dispatch: candidates asked until the offer is sent (durable, rider holding it)", {},
    dispatch_buckets());
  return h;
}
metrics::histogram& first_offer_seconds() {
  static auto& h = metrics::global().get_histogram(
    "gigmesh_task_first_offer_seconds",
    "a task's creation (its command arrived) until its first offer is sent", {},
    dispatch_buckets());
  return h;
}

void end_step(task_actor* self) {
  auto& st = self->state;
  st.stepping = false;
  --st.core.busy;
  // The steps that waited for this one run next, in their order, once the
  // caller has finished with this one (one may begin a step again: those
  // after it wait once more).
  if (!st.after_step.empty()) {
    auto waiting = std::move(st.after_step);
    st.after_step.clear();
    ++st.core.busy;
    self->send(self, actors::run_atom::value,
               std::make_shared<std::function<void()>>([self, waiting] {
                 for (auto& fn : waiting) fn();
                 --self->state.core.busy;
                 actors::finish_if_idle(self, self->state.core);
               }));
  }
  actors::finish_if_idle(self, st.core);
}

/// The offer is sent: to the rider (user:{rider}) and on the task's topic.
void send_offer(task_actor* self, const std::string& rider) {
  auto& st = self->state;
  auto version = st.core.version;
  auto body = body_of(st);
  topics::publish(self->system(), st.env->events.get(), "user:" + rider, "task.offered",
                  topics::clock_seq(), body);
  publish(self, "task.offered", body, version);
  auto now = now_unix_us();
  dispatch_seconds().observe(static_cast<double>(now - st.dispatch_start_us) / 1e6);
  if (st.t.offers == 1) {
    first_offer_seconds().observe(static_cast<double>(now - st.t.created_us) / 1e6);
  }
  arm_offer(self);
}

/// Offers the task to candidate `i` of `cs`: writes `offered` to it and
/// asks it to hold the offer, both at once; sends the offer once both are
/// done. A rider that refuses is replaced by the next candidate.
void offer_to(task_actor* self, std::shared_ptr<std::vector<rider::candidate>> cs, size_t i) {
  auto& st = self->state;
  auto& t = st.t;
  if (i >= cs->size()) {
    end_step(self);
    go_unassigned(self);
    return;
  }
  auto rider = (*cs)[i].id;
  auto until = now_unix_ms() + st.env->offer_timeout_ms;
  t.status = "offered";
  t.offered_to = rider;
  t.offer_until_ms = until;
  ++t.offers;
  t.tried.push_back(rider);
  t.offered_us = now_unix_us();
  t.dispatch_us = std::max<int64_t>(1, t.offered_us - st.dispatch_start_us);
  changed(self);
  auto mine = st.gen;
  struct join {
    int left = 2;
    bool held = false;
  };
  auto j = std::make_shared<join>();
  auto both = [self, cs, i, rider, mine, j] {
    if (--j->left > 0) return;
    auto& st = self->state;
    auto& t = st.t;
    if (mine != st.gen) {
      // Canceled meanwhile: the cancel releases the rider the row names.
      if (j->held) release_rider(self, rider);
      end_step(self);
      return;
    }
    if (!j->held) {
      // It took another offer since its dispatcher last heard of it: the
      // next candidate's write replaces this one.
      t.status = "pending";
      t.offered_to.clear();
      t.offer_until_ms = 0;
      --t.offers;
      t.tried.pop_back();
      t.offered_us = 0;
      offer_to(self, cs, i + 1);
      return;
    }
    end_step(self);
    send_offer(self, rider);
  };
  write(self, {}, both);
  actors::ask(self, st.asks, {rider::type, rider},
              caf::make_message(rider::hold_cmd{st.core.id, until}), std::chrono::seconds{5},
              [j, both](entity_reply& r) {
                j->held = r.ok();
                both();
              });
}

/// A pending task looks for its next rider: the best candidates near its
/// pickup that it has not offered itself to yet.
void dispatch_next(task_actor* self) {
  auto& st = self->state;
  auto& t = st.t;
  if (t.status != "pending" || !t.settling.empty() || st.stepping) return;
  if (t.offers >= st.env->max_offers) {
    go_unassigned(self);
    return;
  }
  if (!actors::journal_accepting(*st.env->money.gate)) {
    self->delayed_send(self, std::chrono::seconds{1}, dispatch_atom::value);
    return;
  }
  st.stepping = true;
  ++st.core.busy;
  st.dispatch_start_us = now_unix_us();
  auto gen = st.gen;
  dispatch::find_candidates(
    self, t.pickup_lat, t.pickup_lng, st.env->radius_m, 8, t.tried,
    [self, gen](std::vector<rider::candidate>& cs, const std::string& error) {
      auto& st = self->state;
      if (gen != st.gen) {
        end_step(self);
        return;
      }
      if (cs.empty() && !error.empty()) {
        gm::log::get("task")->warn("task {}: a dispatcher did not answer ({}); trying again",
                                   st.core.id, error);
        end_step(self);
        self->delayed_send(self, std::chrono::seconds{1}, dispatch_atom::value);
        return;
      }
      offer_to(self, std::make_shared<std::vector<rider::candidate>>(std::move(cs)), 0);
    });
}

// ---- money moves ---------------------------------------------------------------

void on_moved(task_actor* self, entity_reply& r);

/// Asks the creator's wallet for the move `settling` names, under an id
/// derived from the task and the decision.
void ask_move(task_actor* self) {
  auto& st = self->state;
  auto& t = st.t;
  if (t.settling.empty() || st.asking) return;
  money::start_cmd cmd;
  cmd.amount = t.fee;
  // Nothing else changes the task while a move is decided (rules.hpp), so
  // activation finds the same version.
  auto name = "task:" + t.id + ":" + t.settling + ":" + std::to_string(st.core.version);
  cmd.move_id = money::derived_id(name);
  if (t.settling == "lock") {
    cmd.type = "escrow_lock";
    cmd.to_id = t.creator_id;
    cmd.note = "fee of delivery task " + t.id;
  } else if (t.settling == "pay") {
    cmd.type = "task_earning";
    cmd.to_id = t.rider_id;
    cmd.counterparty = t.rider_id;
    cmd.note = "delivery task " + t.id;
  } else {
    cmd.type = "escrow_refund";
    cmd.to_id = t.creator_id;
    cmd.note = "refund of delivery task " + t.id;
  }
  st.asking = true;
  ++st.core.busy;
  actors::ask(self, st.asks, {"wallet", t.creator_id}, caf::make_message(std::move(cmd)),
              st.env->money.step_timeout * 2, [self](entity_reply& r) {
                auto& st = self->state;
                st.asking = false;
                --st.core.busy;
                on_moved(self, r);
                actors::finish_if_idle(self, st.core);
              });
}

/// The move in `settling` ended: `ok`, or refused for good (`why`).
void settle(task_actor* self, bool ok, const entity_reply& why) {
  auto& st = self->state;
  auto& t = st.t;
  auto move = t.settling;
  std::string release;  // the rider to tell it is free
  const char* note = nullptr;
  std::string note_to;
  if (move == "lock") {
    t.status = ok ? "pending" : "void";
  } else if (ok && move == "pay") {
    t.status = "completed";
    t.completed_us = now_unix_us();
    t.on_time = delivered_on_time(t, t.completed_us / 1000);
    note = "task.completed";
    note_to = t.creator_id;
  } else if (ok) {  // refund
    release = !t.offered_to.empty() ? t.offered_to : t.rider_id;
    note = "task.canceled";
    note_to = release;
    t.status = "canceled";
    t.canceled_us = now_unix_us();
    t.offered_to.clear();
    t.offer_until_ms = 0;
  }
  t.settling.clear();
  t.settle_by.clear();
  changed(self);
  auto version = st.core.version;
  auto w = std::move(st.waiting);
  st.waiting.reset();
  auto body = body_of(st);
  bool shown_now = shown(t);
  auto code = why.error() == errc::insufficient_funds ? errc::insufficient_funds : errc::conflict;
  auto detail = move == "lock" ? why.detail
                               : "the fee could not be " +
                                   std::string{move == "refund" ? "refunded" : "paid"} + ": " +
                                   why.detail;
  std::vector<journal::row> extra;
  if (w && !w->key.empty()) {
    extra.push_back(ok ? money::key_row(w->user, w->key, w->hash, body, errc::ok, 1, w->ok_status)
                       : money::key_row(w->user, w->key, w->hash, detail, code));
  }
  write(self, std::move(extra), [self, ok, code, detail, w, body, version, move, release, note,
                                 note_to, shown_now]() mutable {
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
      gm::log::get("task")->warn("task {}: the fee's {} was refused: {}", self->state.core.id,
                                 move, detail);
    }
    if (shown_now) publish(self, "task.updated", body, version);
    if (!ok) return;
    if (move == "pay") {
      finish_rider(self, 1);
    } else if (move == "refund") {
      release_rider(self, release);
    }
    if (note != nullptr && !note_to.empty()) notify(self, note_to, note);
  });
  // The fee is locked: the dispatch begins while `pending` is written. The
  // journal commits one entity's rows in order, so the offer's row never
  // commits before this one, and its event follows this one's.
  if (ok && move == "lock") dispatch_next(self);
}

void on_moved(task_actor* self, entity_reply& r) {
  auto& st = self->state;
  if (st.t.settling.empty()) return;
  if (r.ok()) {
    settle(self, true, r);
    return;
  }
  auto e = r.error();
  if (e == errc::insufficient_funds || e == errc::conflict || e == errc::invalid ||
      e == errc::not_found) {
    settle(self, false, r);
    return;
  }
  // Unknown (the wallet is busy, or did not answer in time): the move may
  // still be made. Its client hears that; the task asks again, and the
  // key (held meanwhile: a repeat gets 409) answers with the outcome.
  if (st.waiting && st.waiting->rp) {
    st.waiting->rp->deliver(fail(errc::outcome_unknown,
                                 "the task's payment is under way; retry with the same "
                                 "Idempotency-Key"));
    st.waiting->rp.reset();
  }
  self->delayed_send(self, std::chrono::seconds{1}, retry_atom::value, 0);
}

/// Writes the decision to make the money move `move` (by `user`), then asks
/// the wallet; `w` waits for its end.
void decide_move(task_actor* self, const std::string& move, const std::string& user,
                 std::optional<waiter> w) {
  auto& st = self->state;
  st.t.settling = move;
  st.t.settle_by = user;
  changed(self);
  st.waiting = std::move(w);
  write(self, {}, [self] { ask_move(self); });
}

// ---- commands -------------------------------------------------------------------

using result = caf::result<caf::message>;

bool sees(const state& st, const std::string& user, const std::string& role) {
  return shown(st.t) && caller_of(st.t, user, role).any();
}

result on_get(task_actor* self, get_cmd& c) {
  auto& st = self->state;
  if (!sees(st, c.user, c.role)) return caf::make_message(fail(errc::not_found, "no such task"));
  return caf::make_message(success(body_of(st), st.core.version));
}

result on_whose(task_actor* self, whose_cmd&) {
  auto& t = self->state.t;
  return caf::make_message(success(dump(json{{"status", t.status},
                                             {"rider_id", t.rider_id},
                                             {"offered_to", t.offered_to},
                                             {"settling", t.settling},
                                             {"on_time", t.on_time}}),
                                   self->state.core.version));
}

void refuse_key(task_actor* self, const std::string& user, const std::string& key,
                caf::response_promise& rp, entity_reply why) {
  money::release_key<K>(self, user, key);
  rp.deliver(std::move(why));
}

result on_create(task_actor* self, create_cmd& c) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  if (!is_uuid(c.user) || c.fee <= 0 || c.fee > st.env->money.max_balance ||
      !rider::valid_position(c.pickup_lat, c.pickup_lng) ||
      !rider::valid_position(c.dropoff_lat, c.dropoff_lng)) {
    rp.deliver(fail(errc::invalid, "not a task that can be created"));
    return rp;
  }
  money::with_key<K>(self, c.user, c.key, c.hash, rp, [self, c, rp]() mutable {
    auto& st = self->state;
    if (!st.t.status.empty() && st.t.status != "void") {
      return refuse_key(self, c.user, c.key, rp,
                        fail(st.t.status == "opening" ? errc::in_progress : errc::conflict,
                             "this task exists already"));
    }
    if (!actors::journal_accepting(*st.env->money.gate)) {
      return refuse_key(self, c.user, c.key, rp, money::journal_full());
    }
    task t;
    t.id = st.core.id;
    t.creator_id = c.user;
    t.status = "opening";
    t.fee = c.fee;
    t.pickup_lat = c.pickup_lat;
    t.pickup_lng = c.pickup_lng;
    t.dropoff_lat = c.dropoff_lat;
    t.dropoff_lng = c.dropoff_lng;
    t.description = c.description;
    t.has_description = c.has_description;
    t.created_us = now_unix_us();
    st.t = std::move(t);
    decide_move(self, "lock", c.user, waiter{rp, c.user, c.key, c.hash, 201});
  });
  return rp;
}

/// Accept (the rider offered it) or a dispatcher's assign (`rider`): the
/// rider claims the task (turns busy with it), then the task is assigned.
void assign(task_actor* self, const std::string& rider, bool forced, caf::response_promise rp) {
  auto& st = self->state;
  st.stepping = true;
  ++st.core.busy;
  auto gen = st.gen;
  actors::ask(
    self, st.asks, {rider::type, rider},
    caf::make_message(rider::claim_cmd{st.core.id, forced}), std::chrono::seconds{5},
    [self, rider, forced, gen, rp](entity_reply& r) mutable {
      auto& st = self->state;
      auto& t = st.t;
      end_step(self);
      if (gen != st.gen) {
        if (r.ok()) release_rider(self, rider);
        rp.deliver(fail(errc::conflict, "the task changed meanwhile (" + t.status + ")"));
        return;
      }
      if (!r.ok()) {
        if (forced && r.error() == errc::not_found) {
          rp.deliver(fail(errc::invalid, "rider_id: names no rider"));
        } else if (r.error() == errc::conflict || r.error() == errc::not_found) {
          rp.deliver(fail(errc::conflict, forced ? "the rider cannot take it: " + r.detail
                                                 : "the offer is no longer yours: " + r.detail));
        } else {
          rp.deliver(r);
        }
        return;
      }
      if (!t.offered_to.empty() && t.offered_to != rider) release_rider(self, t.offered_to);
      auto now = now_unix_us();
      t.status = "assigned";
      t.rider_id = rider;
      t.offered_to.clear();
      t.offer_until_ms = 0;
      t.assigned_us = now;
      t.due_at_ms = due_at_ms(t, now / 1000);
      changed(self);
      auto version = st.core.version;
      auto body = body_of(st);
      write(self, {}, [self, rp, body, version]() mutable {
        rp.deliver(success(body, version));
        publish(self, "task.assigned", body, version);
      });
    });
}

/// A step (after its key, if it takes one): decided by the rules, then
/// taken.
void run_act(task_actor* self, act_cmd a, action what, caf::response_promise rp) {
  auto& st = self->state;
  auto& t = st.t;
  if (st.stepping && what != action::cancel) {
    // A rider is being asked (an offer going out, an accept): this step
    // waits for that answer. A cancel goes first (the step in flight
    // sees the change and gives way).
    st.after_step.push_back([self, a, what, rp] { run_act(self, a, what, rp); });
    return;
  }
  auto d = can(t, what, caller_of(t, a.user, a.role), now_unix_ms());
  if (!d.ok()) return refuse_key(self, a.user, a.key, rp, refusal(d));
  if (!actors::journal_accepting(*st.env->money.gate)) {
    return refuse_key(self, a.user, a.key, rp, money::journal_full());
  }
  auto move = move_of(what);
  if (!move.empty()) {
    if (what == action::complete) {
      t.proof = a.text;
      t.has_proof = a.has_text;
    }
    decide_move(self, move, a.user, waiter{rp, a.user, a.key, a.hash, 200});
    return;
  }
  money::release_key<K>(self, a.user, a.key);  // the other steps move no money
  switch (what) {
    case action::accept:
      assign(self, a.user, false, rp);
      return;
    case action::assign:
      assign(self, lower_uuid(a.rider), true, rp);
      return;
    case action::decline:
      offer_ended(self, [rp](const std::string& body, int64_t version) mutable {
        rp.deliver(success(body, version));
      });
      return;
    default: {  // pickup
      t.status = "picked_up";
      t.picked_up_us = now_unix_us();
      changed(self);
      auto version = st.core.version;
      auto body = body_of(st);
      write(self, {}, [self, rp, body, version]() mutable {
        rp.deliver(success(body, version));
        publish(self, "task.updated", body, version);
      });
    }
  }
}

result on_act(task_actor* self, act_cmd& a) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  action what;
  if (!parse_action(a.what, what)) {
    rp.deliver(fail(errc::invalid, "not a step of a task"));
    return rp;
  }
  auto who = caller_of(st.t, a.user, a.role);
  auto d = can(st.t, what, who, now_unix_ms());
  // Who may not take this step at all hears so before the key is looked at.
  if (d.v == verdict::not_found || d.v == verdict::forbidden) {
    rp.deliver(refusal(d));
    return rp;
  }
  if (what == action::assign && !is_uuid(a.rider)) {
    rp.deliver(fail(errc::invalid, "rider_id: names no rider"));
    return rp;
  }
  auto proceed = [self, a, what, rp]() mutable { run_act(self, a, what, rp); };
  if (move_of(what).empty()) {
    proceed();
  } else {
    money::with_key<K>(self, a.user, a.key, a.hash, rp, proceed);
  }
  return rp;
}

const actors::command_table<task_actor>& commands() {
  static const auto table = actors::command_table<task_actor>{}
                              .on(&on_get)
                              .on(&on_create)
                              .on(&on_act)
                              .on(&on_whose);
  return table;
}

caf::result<caf::message> dispatch_cmd(caf::scheduled_actor* ptr, caf::message_view& xs) {
  auto self = static_cast<task_actor*>(ptr);
  auto& st = self->state;
  auto& c = xs.content();
  if (c.match_elements<actors::ask_tick_atom>()) {
    if (st.asks) actors::on_ask_tick(self, *st.asks);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<retry_atom, int>()) {
    auto attempt = c.get_as<int>(1);
    if (attempt == 0) {
      ask_move(self);
    } else {
      finish_rider(self, attempt);
    }
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<offer_due_atom, int64_t>()) {
    on_offer_due(self, c.get_as<int64_t>(1));
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<dispatch_atom>()) {
    dispatch_next(self);
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
    if (!shown(st.t)) return caf::make_message(fail(errc::not_found, "no such task"));
    return caf::make_message(success("", st.core.version));
  }
  if (auto r = commands().dispatch(self, xs)) return std::move(*r);
  return caf::make_message(fail(errc::invalid, "tasks do not understand this command"));
}

void on_loaded(task_actor* self, loaded& l) {
  auto& st = self->state;
  if (!l.error.empty()) {
    gm::log::get("task")->warn("task {} could not load: {}", st.core.id, l.error);
    actors::give_up(self, type, errc::unavailable, "the database is unavailable, retry shortly",
                    "failed", &empty_state);
    return;
  }
  // No row: a task not made yet, which only create_cmd makes.
  if (l.found) {
    st.t = std::move(l.t);
    st.core.version = l.version;
  }
  st.t.id = st.core.id;
  st.core.status = "active";
  self->set_default_handler(dispatch_cmd);
  self->become(caf::behavior{[](actors::run_atom, const actors::continuation& fn) { (*fn)(); }});
  actors::announce_loaded(self, type, st.core.id);
  // What a crash or a passivation interrupted.
  ask_move(self);
  arm_offer(self);
  dispatch_next(self);
}

caf::behavior task_impl(task_actor* self, std::string id, const environment* env) {
  auto& st = self->state;
  st.core.id = std::move(id);
  st.core.type = type;
  st.env = env;
  if (!is_uuid(st.core.id)) {
    actors::give_up(self, type, errc::not_found, "no such task", "missing", &empty_state);
    return actors::entity_handlers(self, &empty_state);
  }
  self->set_default_handler(caf::skip);
  actors::load_entity(self, &load_rows, &on_loaded);
  return actors::entity_handlers(self, &empty_state);
}

/// What the task sweep activates: tasks whose next step is the runtime's
/// while they were not active (a money move decided and not ended, a
/// dispatch to run, an offer run out).
const char* due_tasks() {
  return
    "SELECT id FROM tasks WHERE (status IN ('opening', 'pending') OR settling <> '' "
    "OR (status = 'offered' AND offer_until < now())) "
    "AND updated_at < now() - interval '2 seconds' LIMIT 1000";
}

} // namespace

actors::kind_registration registration() {
  actors::kind_registration r;
  r.type = type;
  r.topic = "task";
  r.announce = [](caf::actor_system_config& cfg) {
    cfg.add_message_type<create_cmd>("gm_t_create")
      .add_message_type<get_cmd>("gm_t_get")
      .add_message_type<act_cmd>("gm_t_act")
      .add_message_type<whose_cmd>("gm_t_whose");
  };
  r.make = [](const actors::kind_context& ctx) {
    auto env = std::make_shared<environment>();
    env->money = money::settings_of(ctx);
    env->events = ctx.events;
    env->offer_timeout_ms = ctx.dispatch_offer_timeout_ms;
    env->max_offers = ctx.dispatch_max_offers;
    env->radius_m = ctx.dispatch_radius_m;
    actors::entity_kind k;
    k.type = type;
    k.spawn = [env](caf::local_actor* shard, const std::string& id) {
      return shard->spawn(task_impl, id, env.get());
    };
    k.on_start = [env](caf::local_actor* shard) {
      actors::start_activation_sweep(shard, type, env->money.sweep_interval, due_tasks());
    };
    return k;
  };
  r.may_see = [](caf::event_based_actor* self, const actors::topic_caller& who,
                 const std::string& id, std::function<void(int, std::string)> done) {
    // Those who may read it: the task answers exactly them.
    actors::ask(self, {type, id}, caf::make_message(get_cmd{who.user_id, who.role}),
                std::chrono::seconds{5}, [done](entity_reply& r) {
                  if (r.ok()) {
                    done(0, "");
                  } else if (r.error() == errc::not_found) {
                    done(404, "no such task");
                  } else {
                    done(503, r.detail);
                  }
                });
  };
  return r;
}

} // namespace gm::task
