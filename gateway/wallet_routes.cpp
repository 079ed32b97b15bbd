// The Wallet routes of API.md. Each handler decodes (the gateway validated
// the body against the route's schema), sends one command to the caller's
// wallet entity through the router, and maps the entity's reply to HTTP.
// The transaction list is a read of the ledger (append-only, committed
// before any 201 went out), so it goes to PostgreSQL directly.
#include <algorithm>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/router.hpp"
#include "actors/wallet.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "gateway/api_context.hpp"
#include "gateway/crypto.hpp"
#include "gateway/routes.hpp"
#include "gateway/validation.hpp"
#include "persistence/pg.hpp"

namespace gm::gateway {

response entity_response(const actors::entity_reply& r, int ok_status) {
  using actors::errc;
  if (r.ok()) {
    return json_response(r.status_hint != 0 ? r.status_hint : ok_status, r.body);
  }
  switch (r.error()) {
    case errc::not_found: return problem(404, "not-found", "Not Found", r.detail);
    case errc::invalid: return problem(422, "invalid", "Unprocessable Entity", r.detail);
    case errc::insufficient_funds:
      return problem(409, "insufficient-funds", "Conflict", r.detail);
    case errc::conflict: return problem(409, "conflict", "Conflict", r.detail);
    case errc::in_progress: return problem(409, "in-progress", "Conflict", r.detail);
    case errc::key_reused:
      return problem(422, "idempotency-key-reused", "Unprocessable Entity", r.detail);
    case errc::outcome_unknown: return outcome_unknown(r.detail);
    case errc::unavailable:
    case errc::ok: break;
  }
  return unavailable(r.detail);
}

namespace {

using nlohmann::json;

constexpr int64_t max_amount = INT64_MAX;

/// Returns the caller's Idempotency-Key ("" if none), or answers 400 and
/// returns nullopt if it is malformed.
std::optional<std::string> idempotency_key(const request& rq, const respond_fn& respond) {
  auto key = rq.header("Idempotency-Key");
  auto given = rq.header_count("Idempotency-Key");
  // Two keys: which one the client meant is anyone's guess.
  if (given > 1) {
    respond(problem(400, "invalid-idempotency-key", "Bad Request",
                    "send one Idempotency-Key header, not several"));
    return std::nullopt;
  }
  bool printable = std::all_of(key.begin(), key.end(),
                               [](char c) { return c > 0x20 && c < 0x7f; });
  // A header sent empty is a malformed key, not "no key": the client meant one.
  if ((given == 1 && key.empty()) || key.size() > 255 || !printable) {
    respond(problem(400, "invalid-idempotency-key", "Bad Request",
                    "Idempotency-Key must be 1 to 255 printable ASCII characters"));
    return std::nullopt;
  }
  return key;
}

/// Returns a digest of what the request asks for, to tell a repeat from a
/// different request under the same key.
std::string request_hash(const request& rq) {
  return crypto::sha256_hex(rq.method + " " + rq.path + " " + rq.json->dump());
}

/// The request's digest if it carries an Idempotency-Key (only then is it
/// compared), else empty.
std::string hash_if_keyed(const request& rq, const std::string& key) {
  return key.empty() ? std::string{} : request_hash(rq);
}

actors::entity_ref wallet_of(const request& rq) {
  return {wallet::type, rq.user_id};
}

void ask_wallet(caf::event_based_actor* self, const request& rq,
                caf::message cmd, int ok_status, respond_fn respond) {
  // No CAF timeout: the HTTP server answers 503 after request_timeout.
  actors::ask(self, wallet_of(rq), std::move(cmd),
              [respond, ok_status](actors::entity_reply& r) {
                respond(entity_response(r, ok_status));
              });
}

/// deposit and withdraw: {amount, reference?}
template <class Atom>
actor_handler external_move(api_context_ptr ctx) {
  return [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
    auto key = idempotency_key(rq, respond);
    if (!key) return;
    const auto& b = *rq.json;
    auto amount = b["amount"].get<int64_t>();
    auto reference = b.value("reference", std::string{});
    ask_wallet(self, rq,
               caf::make_message(Atom::value, amount, reference, *key, hash_if_keyed(rq, *key)),
               201,
               std::move(respond));
  };
}

void transfer(caf::event_based_actor* self, request& rq, respond_fn respond) {
  auto key = idempotency_key(rq, respond);
  if (!key) return;
  const auto& b = *rq.json;
  // Lower-case ids so that one user is one entity whatever the spelling.
  auto to = lower_uuid(b["to_user_id"].get<std::string>());
  auto amount = b["amount"].get<int64_t>();
  auto note = b.value("note", std::string{});
  ask_wallet(self, rq,
             caf::make_message(wallet::transfer_atom::value, to, amount, note, *key,
                               hash_if_keyed(rq, *key), false),
             201, std::move(respond));
}

/// Parses ?limit= and ?cursor=; sets `bad` on malformed values.
bool page_params(const request& rq, int64_t& limit, std::optional<std::string>& cursor,
                 std::optional<response>& bad) {
  limit = 50;
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 18 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (auto l = rq.query_param("limit")) {
    if (!digits(*l) || std::stoll(*l) < 1) {
      bad = problem(400, "invalid-query", "Bad Request", "limit must be a positive integer");
      return false;
    }
    limit = std::min<int64_t>(200, std::stoll(*l));
  }
  if (auto c = rq.query_param("cursor")) {
    if (!digits(*c)) {
      bad = problem(400, "invalid-query", "Bad Request", "cursor is not one this API returned");
      return false;
    }
    cursor = *c;
  }
  return true;
}

void list_transactions(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                       respond_fn respond) {
  int64_t limit = 50;
  std::optional<std::string> cursor;
  std::optional<response> bad;
  if (!page_params(rq, limit, cursor, bad)) {
    respond(std::move(*bad));
    return;
  }
  auto uid = rq.user_id;
  with_pool(self, *ctx, respond, [uid, limit, cursor, respond](std::shared_ptr<pg::pool> pool) {
    bool queued = pool->submit([uid, limit, cursor, respond](pg::connection& c) {
      auto r = c.exec(
        "SELECT e.id, e.type, e.amount, e.balance_after, e.reference, e.counterparty, "
        "to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
        "e.wallet_version "
        "FROM ledger_entries e JOIN wallets w ON w.id = e.wallet_id "
        "WHERE w.user_id = $1 AND ($2::bigint IS NULL OR e.wallet_version < $2::bigint) "
        "ORDER BY e.wallet_version DESC LIMIT $3",
        {uid, cursor, std::to_string(limit + 1)});
      if (!r.ok()) {
        gm::log::get("wallet")->warn("listing transactions failed: {}", r.error);
        respond(unavailable("the database is unavailable, retry shortly"));
        return;
      }
      json items = json::array();
      size_t n = std::min(r.rows.size(), static_cast<size_t>(limit));
      for (size_t i = 0; i < n; ++i) {
        json t = {{"id", r.value(i, 0)},
                  {"type", r.value(i, 1)},
                  {"amount", std::stoll(r.value(i, 2, "0"))},
                  {"balance_after", std::stoll(r.value(i, 3, "0"))},
                  {"reference", r.rows[i][4] ? json(*r.rows[i][4]) : json(nullptr)},
                  {"created_at", r.value(i, 6)}};
        if (r.rows[i][5]) t["counterparty"] = *r.rows[i][5];
        items.push_back(std::move(t));
      }
      json doc = {{"items", std::move(items)}, {"next_cursor", nullptr}};
      if (r.rows.size() > static_cast<size_t>(limit)) {
        doc["next_cursor"] = r.value(n - 1, 7);
      }
      respond(json_response(200, doc.dump()));
    });
    if (!queued) respond(unavailable("the database queue is full"));
  });
}

} // namespace

void add_wallet_routes(route_table& table, api_context_ptr ctx) {
  auto amount = integer_field("amount", true, 1, max_amount);
  table.add(api_route("GET", "/api/v1/wallet", "The caller's wallet", "wallet",
                      {{200, "{id, balance, escrow_balance, currency, version}"}},
                      {true, {}, nullptr},
                      [](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        ask_wallet(self, rq, caf::make_message(wallet::get_atom::value),
                                   200, std::move(respond));
                      }));
  table.add(api_route("GET", "/api/v1/wallet/transactions",
                      "The caller's transactions, newest first (?limit=, ?cursor=)", "wallet",
                      {{200, "{items: [transaction], next_cursor}"}}, {true, {}, nullptr},
                      [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        list_transactions(self, ctx, rq, std::move(respond));
                      }));
  table.add(api_route("POST", "/api/v1/wallet/deposit",
                      "Deposit from the sandbox provider (credited at once; Idempotency-Key)",
                      "wallet", {{201, "transaction"}},
                      {true, {}, make_schema({amount, string_field("reference", false, 0, 140)})},
                      external_move<wallet::deposit_atom>(ctx)));
  table.add(api_route("POST", "/api/v1/wallet/withdraw",
                      "Withdraw to the sandbox provider (Idempotency-Key)", "wallet",
                      {{201, "transaction"}, {409, "insufficient funds"}},
                      {true, {}, make_schema({amount, string_field("reference", false, 0, 140)})},
                      external_move<wallet::withdraw_atom>(ctx)));
  table.add(api_route(
    "POST", "/api/v1/wallet/transfer", "Transfer to another user (saga; Idempotency-Key)",
    "wallet",
    {{201, "transaction (transfer_out)"},
     {404, "no such user"},
     {409, "insufficient funds"},
     {422, "transfer to oneself"}},
    {true, {},
     make_schema({string_field("to_user_id", true, 36, 36, "uuid"), amount,
                  string_field("note", false, 0, 140)})},
    [](caf::event_based_actor* self, request& rq, respond_fn respond) {
      transfer(self, rq, std::move(respond));
    }));
}

} // namespace gm::gateway
