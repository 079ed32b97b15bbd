// Implements the wallet entity: activation (load), deposits and
// withdrawals, and its side of the money mechanism (actors/money/saga.hpp):
// what its account holds, and how its state is written.
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
#include "actors/money/moves.hpp"
#include "actors/money/saga.hpp"
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

using journal::value;
using journal::values_of;

value num(int64_t v) {
  return value::integer(v);
}

/// Rows moved into a vector (a braced list would copy each: an
/// initializer_list's elements are const).
template <class... R>
std::vector<journal::row> rows_of(R&&... r) {
  std::vector<journal::row> out;
  out.reserve(sizeof...(r) + 1);  // room for an idempotency key's row
  (out.push_back(std::forward<R>(r)), ...);
  return out;
}

struct state {
  actors::entity_core core;  // core.id: the user id
  packed_uuid wallet_uuid;
  int64_t balance = 0;
  int64_t escrow = 0;
  const environment* env = nullptr;  // the kind's, which outlives its wallets
  std::unique_ptr<money::book> money;  // while it moves money (saga.hpp)
  std::shared_ptr<actors::ask_book> asks;  // asks to other entities, once it asked
  static inline const char* name = "gm.wallet";

  std::string wallet_id() const { return wallet_uuid.str(); }
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

/// The sandbox provider's leg of a deposit (delta < 0) or withdrawal.
journal::row external_row(const money::entry& e, int64_t delta) {
  money::entry x = e;
  x.id = new_time_uuid();
  x.type = "external";
  x.delta = delta;
  auto row = money::entry_row({std::string{"external:sandbox"}, value{}}, x);
  // No balance or version: the provider's account is not an entity's.
  row.values[7] = value{};
  row.values[8] = value{};
  return row;
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
std::string tx_body(const money::entry& e) {
  std::string out;
  out.reserve(256);
  out += '{';
  put_number(out, "amount", e.amount);
  out += ',';
  put_number(out, "balance_after", e.balance_after);
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

std::string empty_state(wallet_actor*) {
  return "{}";
}

// ---- the wallet's side of the money mechanism (actors/money/saga.hpp) -----
// A wallet has two accounts: "available" (its balance) and "escrow" (money
// locked for gig contracts, which the contract asks to lock, release or
// refund). Both count toward what it may hold. Its keys are its user's: the
// wallet's id is the user's id.

struct money_traits {
  static const char* kind() { return type; }
  static money::book& money(wallet_actor* self) {
    auto& st = self->state;
    if (!st.money) st.money = std::make_unique<money::book>();
    return *st.money;
  }
  static void trim(wallet_actor* self) {
    auto& st = self->state;
    if (st.money && st.money->idle()) st.money.reset();
  }
  static const money::settings& money_settings(wallet_actor* self) {
    return self->state.env->money;
  }
  static std::shared_ptr<actors::ask_book>& asks(wallet_actor* self) { return self->state.asks; }
  static ledger::balances balances(wallet_actor* self, const std::string& account) {
    auto& st = self->state;
    auto out = money::outgoing_of(st.money.get());
    // What the account holds first; the other counts toward the maximum.
    if (account == "escrow") return {st.escrow, st.balance, out};
    return {st.balance, st.escrow, out};
  }
  static void add(wallet_actor* self, const std::string& account, int64_t delta) {
    (account == "escrow" ? self->state.escrow : self->state.balance) += delta;
  }
  static money::leg leg_of(wallet_actor* self, const std::string& account) {
    // The available balance's account (text) is the wallet id; its escrow's
    // is `escrow:{wallet id}`. Both are the wallet's (wallet_id).
    auto w = value::uuid(self->state.wallet_uuid);
    if (account == "escrow") return {std::string{"escrow:"} + self->state.wallet_id(), w};
    return {w, w};
  }
  static void state_rows(wallet_actor* self, std::vector<journal::row>& rows) {
    rows.push_back(wallet_row(self->state));
  }
  static std::string render(wallet_actor*, const money::entry& e) { return tx_body(e); }
  static entity_reply accept(wallet_actor*, const money::credit_cmd&,
                             std::vector<journal::row>&) {
    return success("", 0);
  }
  static void reversed(wallet_actor*, const std::string&, const money::saga&,
                       std::vector<journal::row>&) {}
  static void settled(wallet_actor*, const std::string&, const money::saga&) {}
  static std::string snapshot(wallet_actor* self) { return wallet_body(self->state); }
  static void changed(wallet_actor* self, std::string snapshot, int64_t version) {
    publish_updated(self, std::move(snapshot), version);
  }
  /// The journal refused rows of this wallet (or lost them): its state may
  /// be ahead of PostgreSQL. It fails (actors::fail_entity): every waiting
  /// client hears that the outcome is unknown, and the next activation
  /// resumes from what PostgreSQL holds, sagas included.
  static void lost(wallet_actor* self) {
    if (std::strcmp(self->state.core.status, "failed") == 0) return;
    if (self->state.money) money::drop_all<money_traits>(self);
    actors::fail_entity(self, type, &empty_state);
  }
};

using K = money_traits;

/// The wallet's balances as the money rules see them.
ledger::balances balances_of(wallet_actor* self) {
  return K::balances(self, "available");
}

// ---- deposit and withdrawal ---------------------------------------------

/// Applies a movement against the sandbox provider: `kind` is deposit or
/// withdrawal. One entity, one write: no saga.
void external_move(wallet_actor* self, const std::string& kind, int64_t amount,
                   const std::string& reference, const std::string& key,
                   caf::response_promise rp) {
  auto& st = self->state;
  if (!actors::journal_accepting(*st.env->money.gate)) {
    money::release_key<K>(self, st.core.id, key);
    rp.deliver(money::journal_full());
    return;
  }
  bool credit = kind == "deposit";
  auto c = credit ? ledger::can_credit(balances_of(self), amount, st.env->money.max_balance)
                  : ledger::can_debit(balances_of(self), amount);
  if (c != ledger::check::ok) {
    money::refuse<K>(self, st.core.id, key, money::errc_of(c), ledger::describe(c), rp);
    return;
  }
  st.balance += credit ? amount : -amount;
  ++st.core.version;
  money::entry e;
  e.id = new_time_uuid();
  e.move_id = new_time_uuid();
  e.type = kind;
  e.amount = amount;
  e.delta = credit ? amount : -amount;
  e.balance_after = st.balance;
  e.owner_version = st.core.version;
  e.reference = reference;
  e.created_at = now_rfc3339();
  auto body = tx_body(e);
  auto rows = rows_of(wallet_row(st), money::entry_row(K::leg_of(self, kind), e),
                      external_row(e, -e.delta));
  std::string hash;
  if (!key.empty()) {
    hash = money::keys_of<K>(self).find(st.core.id, key)->hash;
    rows.push_back(money::key_row(st.core.id, key, hash, body));
  }
  auto version = st.core.version;
  auto event = wallet_body(st);
  actors::persist(self, st.core, std::move(rows), true,
                  [self, rp, key, hash, body, version, event](bool ok) mutable {
                    if (!ok) {
                      rp.deliver(money::not_stored());
                      K::lost(self);
                      return;
                    }
                    if (!key.empty()) {
                      money::keys_of<K>(self).done(self->state.core.id, key, body, version);
                    }
                    rp.deliver(success(body, version));
                    publish_updated(self, std::move(event), version);
                  });
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
  // Resume what a crash left pending.
  money::resume<K>(self, l.moves);
}

void load(wallet_actor* self) {
  actors::load_entity(self, &load_rows, &on_loaded);
}

std::string state_json(wallet_actor* self) {
  auto& st = self->state;
  auto j = wallet_json(st);
  j["user_id"] = st.core.id;
  j["transfers_in_progress"] = st.money ? st.money->sagas.size() : 0;
  j["idempotency_keys"] = st.money ? st.money->keys.size() : 0;
  return dump(j);
}

// ---- commands ---------------------------------------------------------------

void on_move(wallet_actor* self, const char* kind, int64_t amount, std::string reference,
             std::string key, const std::string& hash) {
  auto rp = self->make_response_promise();
  money::with_key<K>(self, self->state.core.id, key, hash, rp,
                     [self, kind, amount, reference, key, rp] {
                       external_move(self, kind, amount, reference, key, rp);
                     });
}

void on_transfer(wallet_actor* self, std::string to, int64_t amount, std::string note,
                 std::string key, const std::string& hash, bool to_loaded) {
  auto rp = self->make_response_promise();
  auto& uid = self->state.core.id;
  if (to == uid) {
    rp.deliver(fail(errc::invalid, "to_user_id: cannot transfer to yourself"));
    return;
  }
  money::move_request m;
  m.p = money::plan_of("transfer");
  m.to_id = std::move(to);
  m.amount = amount;
  m.note = std::move(note);
  m.key = key;
  m.key_user = uid;
  m.key_hash = hash;
  money::with_key<K>(self, uid, key, hash, rp, [self, m, rp, to_loaded]() mutable {
    // The destination must exist before any money moves. The shard said so
    // if it has loaded (wallets are never deleted); else ask.
    if (to_loaded || actors::known_live(self->system(), type, m.to_id)) {
      money::start<K>(self, std::move(m), rp);
      return;
    }
    ++self->state.core.busy;
    auto to = m.to_id;
    actors::ask(self, self->state.asks, {type, to}, caf::make_message(exists_atom::value),
                self->state.env->money.step_timeout, [self, m, rp](entity_reply& r) mutable {
                  auto& uid = self->state.core.id;
                  if (r.ok()) {
                    money::start<K>(self, std::move(m), rp);
                  } else if (r.error() == errc::not_found) {
                    money::refuse<K>(self, uid, m.key, errc::not_found, "to_user_id: no such user",
                                     rp);
                  } else {
                    money::release_key<K>(self, uid, m.key);
                    rp.deliver(r);
                  }
                  --self->state.core.busy;
                  actors::finish_if_idle(self, self->state.core);
                });
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

const actors::command_table<wallet_actor>& commands() {
  static const auto table = actors::command_table<wallet_actor>{}
                              .on(&on_get)
                              .on(&on_deposit)
                              .on(&on_withdraw)
                              .on(&on_transfer_cmd);
  return table;
}

/// Serves an active wallet's commands. One function for every wallet (it
/// is the actors' default handler), instead of a behavior of a dozen
/// handlers per actor: each handler object costs every idle wallet memory.
caf::result<caf::message> dispatch(caf::scheduled_actor* ptr, caf::message_view& xs) {
  auto self = static_cast<wallet_actor*>(ptr);
  auto& st = self->state;
  auto& c = xs.content();
  // The wallet's own messages and its shard's first; then commands, which
  // may have come straight from a router (see note_command).
  if (c.match_elements<actors::ask_tick_atom>()) {
    if (st.asks) actors::on_ask_tick(self, *st.asks);
    return caf::delegated<caf::message>{};
  }
  if (c.match_elements<money::retry_atom, std::string>()) {
    return *money::dispatch<K>(self, xs);
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
  if (auto r = money::dispatch<K>(self, xs)) return std::move(*r);
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

} // namespace

actors::entity_kind kind(std::shared_ptr<const environment> env) {
  actors::entity_kind k;
  k.type = type;
  k.spawn = [env](caf::local_actor* shard, const std::string& id) {
    return shard->spawn(wallet_impl, id, env.get());
  };
  k.on_start = [env](caf::local_actor* shard) {
    money::start_sweep(shard, type, env->money.sweep_interval);
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
      .add_message_type<transfer_cmd>("gm_w_transfer");
  };
  r.make = [](const actors::kind_context& ctx) {
    auto env = std::make_shared<environment>();
    env->money = money::settings_of(ctx);
    env->events = ctx.events;
    env->currency = ctx.currency;
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
