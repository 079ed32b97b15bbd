// The Wallet routes of API.md. Each handler decodes (the gateway validated
// the body against the route's schema), sends one command to the caller's
// wallet entity through the router, and maps the entity's reply to HTTP.
// The transaction list is a read of the ledger (append-only, committed
// before any 201 went out), so it goes to PostgreSQL directly.
#include <algorithm>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/router.hpp"
#include "actors/wallet/wallet.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "gateway/api_context.hpp"
#include "gateway/entity_http.hpp"
#include "gateway/routes.hpp"
#include "gateway/validation.hpp"
#include "persistence/pg.hpp"

namespace gm::gateway {

namespace {

using nlohmann::json;

constexpr int64_t max_amount = INT64_MAX;

actors::entity_ref wallet_of(const request& rq) {
  return {wallet::type, rq.user_id};
}

void ask_wallet(caf::event_based_actor* self, const request& rq, caf::message cmd,
                int ok_status, respond_fn respond) {
  ask_entity(self, wallet_of(rq), std::move(cmd), ok_status, std::move(respond));
}

/// deposit and withdraw: {amount, reference?}
template <class Cmd>
actor_handler external_move(api_context_ptr ctx) {
  return [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
    auto key = idempotency_key(rq, respond);
    if (!key) return;
    const auto& b = *rq.json;
    auto amount = b["amount"].get<int64_t>();
    auto reference = b.value("reference", std::string{});
    ask_wallet(self, rq,
               caf::make_message(Cmd{amount, reference, *key, request_hash_if_keyed(rq, *key)}),
               201, std::move(respond));
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
             caf::make_message(wallet::transfer_cmd{to, amount, note, *key,
                                                    request_hash_if_keyed(rq, *key), false}),
             201, std::move(respond));
}

void list_transactions(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                       respond_fn respond) {
  auto pg_page = page_of(rq, respond);
  if (!pg_page) return;
  auto limit = pg_page->limit;
  auto cursor = pg_page->cursor;
  auto uid = rq.user_id;
  with_pool(self, *ctx, respond, [uid, limit, cursor, respond](std::shared_ptr<pg::pool> pool) {
    bool queued = pool->submit([uid, limit, cursor, respond](pg::connection& c) {
      auto r = c.exec(
        "SELECT e.id, e.type, e.amount, e.balance_after, e.reference, e.counterparty, "
        "to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
        "e.wallet_version, e.account LIKE 'escrow:%' "
        "FROM ledger_entries e JOIN wallets w ON w.id = e.wallet_id "
        "WHERE w.user_id = $1 AND ($2::bigint IS NULL OR e.wallet_version < $2::bigint) "
        // The escrow account's side of a lock or a refund is the other half
        // of the entry on the available balance, which is listed; a release
        // (or its reversal) is listed from escrow, with account "escrow".
        "AND (e.account NOT LIKE 'escrow:%' OR e.type IN ('escrow_release', 'reversal')) "
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
                  {"created_at", r.value(i, 6)},
                  {"account", r.value(i, 8) == "t" ? "escrow" : "available"}};
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
                        ask_wallet(self, rq, caf::make_message(wallet::get_cmd{}),
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
                      external_move<wallet::deposit_cmd>(ctx)));
  table.add(api_route("POST", "/api/v1/wallet/withdraw",
                      "Withdraw to the sandbox provider (Idempotency-Key)", "wallet",
                      {{201, "transaction"}, {409, "insufficient funds"}},
                      {true, {}, make_schema({amount, string_field("reference", false, 0, 140)})},
                      external_move<wallet::withdraw_cmd>(ctx)));
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
