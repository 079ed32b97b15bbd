// Implements the savings circle entity: activation (load), joining and
// starting, and its side of the money mechanism (actors/money/saga.hpp):
// the pot is its account; contributions arrive as credits of moves its
// members' wallets make (asked for with money::start_cmd), payouts leave as
// moves it drives.
#include "actors/circle/circle.hpp"
#include "actors/circle/rules.hpp"
#include "actors/circle/store.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <unordered_map>
#include <unordered_set>

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
#include "common/ids.hpp"
#include "common/log.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::circle {

using nlohmann::json;
using actors::errc;
using actors::entity_reply;
using actors::fail;
using actors::success;

namespace {

/// A contribution this circle asked a member's wallet for, waiting for
/// the wallet's answer.
struct asked_contribution {
  std::string move_id;
  std::string key, hash;
  caf::response_promise rp;
  std::string doc;  // the contribution, once the pot has it
};

struct state {
  actors::entity_core core;  // core.id: the circle's id
  circle c;
  const environment* env = nullptr;
  std::unique_ptr<money::book> money;
  std::shared_ptr<actors::ask_book> asks;
  // By member: the contribution asked for and not yet answered.
  std::unordered_map<std::string, asked_contribution> contributing;
  // Members whose rows changed since the last write.
  std::unordered_set<std::string> dirty;
  // The event a change publishes once it committed ("" for circle.updated
  // alone), and its data; taken by snapshot().
  std::string event;
  std::string event_data;
  // Snapshots taken and not yet published, by version.
  std::map<int64_t, std::pair<std::string, std::string>> staged;
  // The round a payout in flight pays (for its document).
  std::map<std::string, int32_t> payout_rounds;
  // The due moment a timer is armed for (Unix ms; 0: none).
  int64_t armed_at = 0;
  // A round whose payout the recipient's wallet refused: it is not paid
  // out by itself again (the creator or an admin may retry).
  int32_t auto_refused_round = 0;
  static inline const char* name = "gm.circle";
};

using circle_actor = caf::stateful_actor<state>;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_admin(const std::string& role) {
  return role == "admin";
}

/// May `user` see this circle at all? Members and admins always; anyone
/// signed in while it is forming (to join it by its id).
bool may_see(const circle& c, const std::string& user, const std::string& role) {
  return is_admin(role) || c.status == "forming" || find_member(c, user) != nullptr;
}

json circle_json(const state& st) {
  auto& c = st.c;
  json j = {{"id", c.id},
            {"name", c.name},
            {"creator_id", c.creator_id},
            {"contribution_amount", c.contribution_amount},
            {"frequency", c.frequency},
            {"max_members", c.max_members},
            {"members_count", c.members.size()},
            {"current_round", c.current_round},
            {"status", c.status},
            {"pot", c.pot},
            {"payout_order", c.payout_order},
            {"auto_payout", c.auto_payout},
            {"version", st.core.version},
            {"created_at", c.created_at}};
  if (c.status == "active") {
    j["next_recipient_id"] = recipient(c);
    j["round_due_at"] = rfc3339_of_ms(due_at_ms(c, c.current_round, st.env->day_ms));
  }
  if (c.status != "forming") {
    j["started_at"] = rfc3339_of_ms(c.started_at_ms);
    std::vector<std::pair<int32_t, std::string>> order;
    for (auto& m : c.members) order.emplace_back(m.position, m.user_id);
    std::sort(order.begin(), order.end());
    json ids = json::array();
    for (auto& [pos, id] : order) ids.push_back(id);
    j["recipients_in_order"] = std::move(ids);
  }
  return j;
}

json member_json(const circle& c, const member& m) {
  return {{"user_id", m.user_id},
          {"position", m.position},
          {"paid_current_round", c.status == "active" && m.paid_round >= c.current_round},
          {"last_paid_round", m.paid_round},
          {"received_payout", m.received_payout},
          {"late_count", m.late_count},
          {"joined_at", m.joined_at}};
}

std::string empty_state(circle_actor*) {
  return "{}";
}

std::string state_json(circle_actor* self) {
  auto& st = self->state;
  auto j = circle_json(st);
  json members = json::array();
  for (auto& m : st.c.members) members.push_back(member_json(st.c, m));
  j["members"] = std::move(members);
  j["moves_in_progress"] = st.money ? st.money->sagas.size() : 0;
  j["contributions_asked"] = st.contributing.size();
  j["reminded_round"] = st.c.reminded_round;
  j["overdue_round"] = st.c.overdue_round;
  if (st.armed_at != 0) j["next_due_moment"] = rfc3339_of_ms(st.armed_at);
  return dump(j);
}

/// An event on `circle:{id}`. Its seq is the circle's version × 4 plus the
/// event's slot, so that the events of one change (and a payout's end,
/// which changes nothing) keep a rising seq.
void publish(circle_actor* self, const char* event, int64_t version, std::string data) {
  int slot = std::strcmp(event, "contribution.received") == 0 ? 1
             : std::strcmp(event, "payout.completed") == 0    ? 2
                                                              : 0;
  topics::publish(self->system(), self->state.env->events.get(), "circle:" + self->state.core.id,
                  event, version * 4 + slot, std::move(data));
}

/// The rows of the circle and of the members whose rows changed.
void circle_rows(circle_actor* self, std::vector<journal::row>& rows) {
  auto& st = self->state;
  rows.push_back(circle_row(st.c, st.core.version));
  for (auto& m : st.c.members) {
    if (st.dirty.count(m.user_id) > 0) rows.push_back(member_row(st.c, m, st.core.version));
  }
  st.dirty.clear();
}

std::string payout_doc(const state& st, const std::string& move_id, const std::string& to,
                       int32_t round, int64_t amount, const std::string& at) {
  return dump(json{{"id", move_id},
                   {"circle_id", st.c.id},
                   {"recipient_id", to},
                   {"round", round},
                   {"amount", amount},
                   {"created_at", at}});
}

void arm_due(circle_actor* self);
void maybe_auto_payout(circle_actor* self);

// ---- the circle's side of the money mechanism ------------------------------
// One account, "pot". Keys are the caller's (a member contributing, the
// creator or an admin paying out).

struct money_traits {
  static const char* kind() { return type; }
  static money::book& money(circle_actor* self) {
    auto& st = self->state;
    if (!st.money) st.money = std::make_unique<money::book>();
    return *st.money;
  }
  static void trim(circle_actor* self) {
    auto& st = self->state;
    if (st.money && st.money->idle()) st.money.reset();
  }
  static const money::settings& money_settings(circle_actor* self) {
    return self->state.env->money;
  }
  static std::shared_ptr<actors::ask_book>& asks(circle_actor* self) { return self->state.asks; }
  static ledger::balances balances(circle_actor* self, const std::string&) {
    return {self->state.c.pot, 0, money::outgoing_of(self->state.money.get())};
  }
  static void add(circle_actor* self, const std::string&, int64_t delta) {
    self->state.c.pot += delta;
  }
  static money::leg leg_of(circle_actor* self, const std::string&) {
    return {std::string{"circle:"} + self->state.core.id, journal::value{}};
  }
  static void state_rows(circle_actor* self, std::vector<journal::row>& rows) {
    circle_rows(self, rows);
  }
  /// The source leg of a payout, for its client.
  static std::string render(circle_actor* self, const money::entry& e) {
    auto& st = self->state;
    auto it = st.payout_rounds.find(e.move_id);
    return payout_doc(st, e.move_id, e.counterparty, it == st.payout_rounds.end() ? 0 : it->second,
                      e.amount, e.created_at);
  }
  /// A contribution's credit: only a member's first for this round.
  static entity_reply accept(circle_actor* self, const money::credit_cmd& cmd,
                             std::vector<journal::row>& rows) {
    auto& st = self->state;
    auto& user = cmd.from_id;
    auto d = can_contribute(st.c, user);
    if (!d.ok()) return fail(errc::conflict, d.detail);
    if (cmd.amount != st.c.contribution_amount) {
      return fail(errc::invalid, "a contribution must be the circle's contribution_amount");
    }
    auto round = st.c.current_round;
    bool late = record_contribution(st.c, user, now_unix_ms(), st.env->day_ms);
    st.dirty.insert(user);
    auto doc = dump(json{{"id", cmd.move_id},
                         {"circle_id", st.c.id},
                         {"user_id", user},
                         {"round", round},
                         {"amount", cmd.amount},
                         {"late", late},
                         {"created_at", now_rfc3339()}});
    auto it = st.contributing.find(user);
    if (it != st.contributing.end() && it->second.move_id == cmd.move_id) {
      it->second.doc = doc;
      // The key's final answer, in the same transaction as the money
      // reaching the pot.
      if (!it->second.key.empty()) {
        rows.push_back(
          money::key_row(user, it->second.key, it->second.hash, doc, errc::ok, 2, 200));
      }
    }
    st.event = "contribution.received";
    st.event_data = doc;
    return success("", 0);
  }
  /// A payout the recipient's wallet refused: the round is paid again.
  static void reversed(circle_actor* self, const std::string& id, const money::saga& s,
                       std::vector<journal::row>&) {
    auto& st = self->state;
    undo_payout(st.c, s.to_id);
    st.auto_refused_round = st.c.current_round;
    st.dirty.insert(s.to_id);
    st.payout_rounds.erase(id);
  }
  static void settled(circle_actor* self, const std::string& id, const money::saga& s) {
    auto& st = self->state;
    auto it = st.payout_rounds.find(id);
    int32_t round = it == st.payout_rounds.end() ? 0 : it->second;
    publish(self, "payout.completed", st.core.version,
            payout_doc(st, id, s.to_id, round, s.amount, now_rfc3339()));
    if (it != st.payout_rounds.end()) st.payout_rounds.erase(it);
  }
  static std::string snapshot(circle_actor* self) {
    auto& st = self->state;
    st.staged[st.core.version] = {std::move(st.event), std::move(st.event_data)};
    st.event.clear();
    st.event_data.clear();
    return dump(circle_json(st));
  }
  static void changed(circle_actor* self, std::string snapshot, int64_t version) {
    auto& st = self->state;
    publish(self, "circle.updated", version, std::move(snapshot));
    auto it = st.staged.find(version);
    if (it == st.staged.end()) return;
    auto [event, data] = std::move(it->second);
    st.staged.erase(st.staged.begin(), std::next(it));
    if (!event.empty()) publish(self, event.c_str(), version, std::move(data));
    arm_due(self);  // a new round, or everyone paid
    maybe_auto_payout(self);
  }
  static void lost(circle_actor* self) {
    auto& st = self->state;
    if (std::strcmp(st.core.status, "failed") == 0) return;
    if (st.money) money::drop_all<money_traits>(self);
    for (auto& [user, a] : st.contributing) a.rp.deliver(money::not_stored());
    st.contributing.clear();
    actors::fail_entity(self, type, &empty_state);
  }
};

using K = money_traits;

/// Writes a change made to the state (version bumped): the circle's rows,
/// then answers `rp` with the circle and publishes circle.updated.
void commit(circle_actor* self, caf::response_promise rp) {
  auto& st = self->state;
  std::vector<journal::row> rows;
  circle_rows(self, rows);
  auto snap = K::snapshot(self);
  auto version = st.core.version;
  actors::persist(self, st.core, std::move(rows), true,
                  [self, rp, snap, version](bool ok) mutable {
                    if (!ok) {
                      rp.deliver(money::not_stored());
                      K::lost(self);
                      return;
                    }
                    rp.deliver(success(snap, version));
                    K::changed(self, std::move(snap), version);
                  });
}

entity_reply refusal(const decision& d) {
  switch (d.v) {
    case verdict::forbidden: return fail(errc::forbidden, d.detail);
    case verdict::not_member: return fail(errc::forbidden, d.detail);
    case verdict::conflict: return fail(errc::conflict, d.detail);
    default: return fail(errc::invalid, d.detail);
  }
}

// ---- payouts ------------------------------------------------------------------

/// Pays the pot to this round's recipient: a move from the pot (the round
/// advances with its reserve). `rp` absent: an automatic payout.
void pay_out(circle_actor* self, const std::string& key, const std::string& key_user,
             const std::string& hash, std::optional<caf::response_promise> rp) {
  auto& st = self->state;
  money::move_request m;
  m.p = money::plan_of("payout");
  auto round = st.c.current_round;
  m.id = money::derived_id("circle:" + st.core.id + ":payout:" + std::to_string(round));
  m.to_id = recipient(st.c);
  m.amount = st.c.pot;
  m.note = "payout of round " + std::to_string(round) + " of circle " + st.c.name;
  m.key = key;
  m.key_user = key_user;
  m.key_hash = hash;
  auto to = m.to_id;
  m.on_reserve = [self, round, id = m.id, to] {
    auto& st = self->state;
    st.payout_rounds[id] = round;
    record_payout(st.c);
    st.dirty.insert(to);
  };
  money::start<K>(self, std::move(m), std::move(rp));
}

/// After a change committed (or on activation): if every member has paid
/// and the circle pays out by itself, it does.
void maybe_auto_payout(circle_actor* self) {
  auto& st = self->state;
  if (!st.c.auto_payout || st.c.status != "active" || !all_paid(st.c)) return;
  if (std::strcmp(st.core.status, "active") != 0) return;  // failed
  if (st.auto_refused_round == st.c.current_round) return;
  if (st.money && !st.money->sagas.empty()) return;  // a payout is under way
  pay_out(self, "", "", "", std::nullopt);
}

// ---- due dates ------------------------------------------------------------------
// The circle reminds the members who have not paid a round, once a quarter
// period before its due date and once when it passed. Its timer is armed
// on activation and after every change; a circle passive at the moment is
// activated by the due sweep (due_sweep_impl), whose timer then fires at
// once. reminded_round and overdue_round, stored with the circle, make
// each go out once.

using due_atom = caf::atom_constant<caf::atom("c_due")>;

void arm_due(circle_actor* self) {
  auto& st = self->state;
  auto m = next_due_moment(st.c, st.env->day_ms);
  if (m.what == due_event::none || st.armed_at == m.at_ms) return;
  st.armed_at = m.at_ms;
  auto wait = std::max<int64_t>(0, m.at_ms - now_unix_ms());
  self->delayed_send(self, std::chrono::milliseconds{wait}, due_atom::value, m.at_ms);
}

void on_due(circle_actor* self, int64_t at) {
  auto& st = self->state;
  if (at != st.armed_at) return;  // a later arming replaced this one
  st.armed_at = 0;
  auto m = next_due_moment(st.c, st.env->day_ms);
  auto now = now_unix_ms();
  if (m.what == due_event::none) return;
  if (now < m.at_ms) {
    arm_due(self);
    return;
  }
  if (!actors::journal_accepting(*st.env->money.gate)) {
    st.armed_at = now + 1000;  // try again shortly
    self->delayed_send(self, std::chrono::seconds{1}, due_atom::value, st.armed_at);
    return;
  }
  auto round = st.c.current_round;
  auto due = due_at_ms(st.c, round, st.env->day_ms);
  // A circle that was passive past both moments says only that it is due.
  bool overdue = m.what == due_event::overdue || now >= due;
  st.c.reminded_round = round;
  if (overdue) st.c.overdue_round = round;
  ++st.core.version;
  auto note = dump(json{{"type", overdue ? "circle.contribution_overdue" : "circle.contribution_due"},
                        {"circle_id", st.c.id},
                        {"circle_name", st.c.name},
                        {"round", round},
                        {"amount", st.c.contribution_amount},
                        {"due_at", rfc3339_of_ms(due)}});
  auto who = unpaid(st.c);
  std::vector<journal::row> rows;
  circle_rows(self, rows);
  auto snap = K::snapshot(self);
  auto version = st.core.version;
  actors::persist(self, st.core, std::move(rows), true,
                  [self, note, who, snap, version](bool ok) mutable {
                    if (!ok) {
                      K::lost(self);
                      return;
                    }
                    for (auto& user : who) {
                      topics::notify(self->system(), self->state.env->events.get(), user, note);
                    }
                    K::changed(self, std::move(snap), version);
                  });
}

/// What the due sweep activates: active circles whose reminder or due date
/// passed while they were not active (each then acts on it at once); $1 is
/// the length of a day in ms.
const char* due_circles() {
  return
    "SELECT c.id FROM circles c, LATERAL (SELECT $1::bigint * CASE c.frequency "
    "WHEN 'daily' THEN 1 WHEN 'weekly' THEN 7 ELSE 30 END AS p) x "
    "WHERE c.status = 'active' AND EXISTS (SELECT 1 FROM circle_members m "
    "WHERE m.circle_id = c.id AND m.paid_round < c.current_round) "
    "AND ((c.reminded_round < c.current_round AND c.overdue_round < c.current_round "
    "AND extract(epoch FROM now()) * 1000 >= extract(epoch FROM c.started_at) * 1000 "
    "+ c.current_round * x.p - x.p / 4) "
    "OR (c.overdue_round < c.current_round AND extract(epoch FROM now()) * 1000 >= "
    "extract(epoch FROM c.started_at) * 1000 + c.current_round * x.p)) LIMIT 1000";
}

// ---- commands -----------------------------------------------------------------

using result = caf::result<caf::message>;

result on_get(circle_actor* self, get_cmd& c) {
  auto& st = self->state;
  if (!may_see(st.c, c.user, c.role)) return caf::make_message(fail(errc::not_found, "no such circle"));
  return caf::make_message(success(dump(circle_json(st)), st.core.version));
}

result on_members(circle_actor* self, members_cmd& c) {
  auto& st = self->state;
  if (!is_admin(c.role) && find_member(st.c, c.user) == nullptr) {
    return caf::make_message(fail(errc::not_found, "no such circle"));
  }
  std::vector<const member*> ms;
  for (auto& m : st.c.members) ms.push_back(&m);
  std::sort(ms.begin(), ms.end(), [](const member* a, const member* b) {
    auto ka = a->position != 0 ? a->position : a->joined;
    auto kb = b->position != 0 ? b->position : b->joined;
    return ka < kb;
  });
  json items = json::array();
  for (auto* m : ms) items.push_back(member_json(st.c, *m));
  return caf::make_message(
    success(dump(json{{"items", std::move(items)}, {"next_cursor", nullptr}}), st.core.version));
}

result on_join(circle_actor* self, join_cmd& c) {
  auto& st = self->state;
  auto d = can_join(st.c, c.user);
  if (!d.ok()) return caf::make_message(refusal(d));
  if (!actors::journal_accepting(*st.env->money.gate)) {
    return caf::make_message(money::journal_full());
  }
  member m;
  m.user_id = c.user;
  for (auto& x : st.c.members) m.joined = std::max(m.joined, x.joined);
  ++m.joined;
  m.joined_at = now_rfc3339();
  st.c.members.push_back(m);
  st.dirty.insert(c.user);
  ++st.core.version;
  auto rp = self->make_response_promise();
  commit(self, rp);
  return rp;
}

result on_begin(circle_actor* self, begin_cmd& c) {
  auto& st = self->state;
  auto d = can_start(st.c, c.user);
  if (!d.ok()) return caf::make_message(refusal(d));
  if (!actors::journal_accepting(*st.env->money.gate)) {
    return caf::make_message(money::journal_full());
  }
  std::vector<size_t> order(st.c.members.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64{std::random_device{}()});
  assign_positions(st.c, order);
  st.c.status = "active";
  st.c.current_round = 1;
  st.c.started_at_ms = now_unix_ms();
  for (auto& m : st.c.members) st.dirty.insert(m.user_id);
  ++st.core.version;
  auto rp = self->make_response_promise();
  commit(self, rp);
  return rp;
}

/// A contribution: the circle decides (a member, once per round), then asks
/// the member's wallet to move the amount into the pot; the pot's credit
/// records it. The move's id is derived from the circle, the round and the
/// member, so it is made at most once however often it is asked for.
void contribute(circle_actor* self, const std::string& user, const std::string& key,
                const std::string& hash, caf::response_promise rp) {
  auto& st = self->state;
  auto d = can_contribute(st.c, user);
  if (!d.ok()) {
    rp.deliver(refusal(d));
    money::release_key<K>(self, user, key);
    return;
  }
  if (st.contributing.count(user) > 0) {
    money::release_key<K>(self, user, key);
    rp.deliver(fail(errc::in_progress, "your contribution to this round is under way"));
    return;
  }
  auto round = st.c.current_round;
  auto move_id = money::derived_id("circle:" + st.core.id + ":round:" + std::to_string(round) +
                                   ":member:" + user);
  st.contributing[user] = {move_id, key, hash, rp, {}};
  ++st.core.busy;
  money::start_cmd cmd{move_id, "contribution", st.core.id, st.c.contribution_amount,
                       "round " + std::to_string(round) + " of circle " + st.c.name, ""};
  // The wallet's answer comes once the pot has the money (or it refused);
  // allow it two steps' time.
  actors::ask(self, st.asks, {"wallet", user}, caf::make_message(std::move(cmd)),
              st.env->money.step_timeout * 2, [self, user, move_id](entity_reply& r) {
                auto& st = self->state;
                auto it = st.contributing.find(user);
                if (it == st.contributing.end() || it->second.move_id != move_id) return;
                auto a = std::move(it->second);
                st.contributing.erase(it);
                --st.core.busy;
                if (r.ok()) {
                  if (a.doc.empty()) {
                    // The pot had it before (a repeat after a crash): the
                    // contribution is the member's record.
                    a.rp.deliver(fail(errc::conflict, "you have already paid this round"));
                  } else {
                    if (!a.key.empty()) {
                      money::keys_of<K>(self).done(user, a.key, a.doc, st.core.version,
                                                   errc::ok, a.hash, 200);
                    }
                    a.rp.deliver(success(a.doc, st.core.version));
                  }
                } else if (r.error() == errc::insufficient_funds ||
                           r.error() == errc::conflict || r.error() == errc::invalid) {
                  money::refuse<K>(self, user, a.key, r.error(), r.detail, a.rp);
                } else {
                  money::release_key<K>(self, user, a.key);
                  a.rp.deliver(fail(errc::outcome_unknown,
                                    "the contribution may still be made; retry with the same "
                                    "Idempotency-Key"));
                }
                actors::finish_if_idle(self, st.core);
              });
}

result on_contribute(circle_actor* self, contribute_cmd& c) {
  auto rp = self->make_response_promise();
  auto user = c.user;
  auto key = c.key;
  auto hash = c.hash;
  money::with_key<K>(self, user, key, hash, rp,
                     [self, user, key, hash, rp]() mutable { contribute(self, user, key, hash, rp); });
  return rp;
}

result on_payout(circle_actor* self, payout_cmd& c) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  auto d = can_payout(st.c, c.user, is_admin(c.role));
  if (d.v == verdict::forbidden) {
    rp.deliver(refusal(d));
    return rp;
  }
  auto user = c.user;
  auto role = c.role;
  auto key = c.key;
  auto hash = c.hash;
  money::with_key<K>(self, user, key, hash, rp, [self, user, role, key, hash, rp]() mutable {
    auto& st = self->state;
    auto d = can_payout(st.c, user, is_admin(role));
    if (d.ok() && st.money && !st.money->sagas.empty()) {
      d = {verdict::conflict, "a payout is under way"};
    }
    if (!d.ok()) {
      money::release_key<K>(self, user, key);
      rp.deliver(refusal(d));
      return;
    }
    pay_out(self, key, user, hash, rp);
  });
  return rp;
}

const actors::command_table<circle_actor>& commands() {
  static const auto table = actors::command_table<circle_actor>{}
                              .on(&on_get)
                              .on(&on_members)
                              .on(&on_join)
                              .on(&on_begin)
                              .on(&on_contribute)
                              .on(&on_payout);
  return table;
}

caf::result<caf::message> dispatch(caf::scheduled_actor* ptr, caf::message_view& xs) {
  auto self = static_cast<circle_actor*>(ptr);
  auto& st = self->state;
  auto& c = xs.content();
  if (c.match_elements<actors::ask_tick_atom>()) {
    if (st.asks) actors::on_ask_tick(self, *st.asks);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<due_atom, int64_t>()) {
    on_due(self, c.get_as<int64_t>(1));
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
    return caf::make_message(success("", st.core.version));
  }
  if (auto r = commands().dispatch(self, xs)) return std::move(*r);
  if (auto r = money::dispatch<K>(self, xs)) return std::move(*r);
  return caf::make_message(fail(errc::invalid, "circles do not understand this command"));
}

caf::behavior active() {
  return {[](actors::run_atom, const actors::continuation& fn) { (*fn)(); }};
}

void give_up(circle_actor* self, errc code, std::string detail, const char* status) {
  actors::give_up(self, type, code, std::move(detail), status, &empty_state);
}

void on_loaded(circle_actor* self, loaded& l) {
  auto& st = self->state;
  if (!l.error.empty()) {
    gm::log::get("circle")->warn("circle {} could not load: {}", st.core.id, l.error);
    give_up(self, errc::unavailable, "the database is unavailable, retry shortly", "failed");
    return;
  }
  if (!l.found) {
    give_up(self, errc::not_found, "no such circle", "missing");
    return;
  }
  st.c = std::move(l.c);
  st.core.version = l.version;
  st.core.status = "active";
  self->set_default_handler(dispatch);
  self->become(active());
  actors::announce_loaded(self, type, st.core.id);
  // A payout in flight pays the round before the current one (its reserve
  // advanced the round), or the last round of a completed circle.
  for (auto& p : l.moves) {
    int32_t round = st.c.status == "completed" ? st.c.current_round : st.c.current_round - 1;
    st.payout_rounds[p.id] = round;
  }
  money::resume<K>(self, l.moves);
  arm_due(self);
  maybe_auto_payout(self);  // the last contribution committed just before a crash
}

caf::behavior circle_impl(circle_actor* self, std::string id, const environment* env) {
  auto& st = self->state;
  st.core.id = std::move(id);
  st.core.type = type;
  st.env = env;
  if (!is_uuid(st.core.id)) {
    give_up(self, errc::not_found, "no such circle", "missing");
    return actors::entity_handlers(self, &empty_state);
  }
  self->set_default_handler(caf::skip);
  actors::load_entity(self, &load_rows, &on_loaded);
  return actors::entity_handlers(self, &empty_state);
}

} // namespace

actors::kind_registration registration() {
  actors::kind_registration r;
  r.type = type;
  r.topic = "circle";
  r.announce = [](caf::actor_system_config& cfg) {
    cfg.add_message_type<get_cmd>("gm_c_get")
      .add_message_type<members_cmd>("gm_c_members")
      .add_message_type<join_cmd>("gm_c_join")
      .add_message_type<begin_cmd>("gm_c_begin")
      .add_message_type<contribute_cmd>("gm_c_contrib")
      .add_message_type<payout_cmd>("gm_c_payout");
  };
  r.make = [](const actors::kind_context& ctx) {
    auto env = std::make_shared<environment>();
    env->money = money::settings_of(ctx);
    env->events = ctx.events;
    env->day_ms = ctx.circle_day_ms;
    actors::entity_kind k;
    k.type = type;
    k.spawn = [env](caf::local_actor* shard, const std::string& id) {
      return shard->spawn(circle_impl, id, env.get());
    };
    k.on_start = [env](caf::local_actor* shard) {
      money::start_sweep(shard, type, env->money.sweep_interval);
      actors::start_activation_sweep(shard, type, env->money.sweep_interval, due_circles(),
                                     {std::to_string(env->day_ms)});
    };
    return k;
  };
  r.may_see = [](caf::event_based_actor* self, const actors::topic_caller& who,
                 const std::string& id, std::function<void(int, std::string)> done) {
    // Members (and admins) only: the members list answers exactly them.
    actors::ask(self, {type, id}, caf::make_message(members_cmd{who.user_id, who.role}),
                std::chrono::seconds{5}, [done](entity_reply& r) {
                  if (r.ok()) {
                    done(0, "");
                  } else if (r.error() == errc::not_found) {
                    done(404, "no such circle");
                  } else {
                    done(503, r.detail);
                  }
                });
  };
  return r;
}

} // namespace gm::circle
