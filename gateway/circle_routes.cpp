// The Savings circles routes of API.md. A circle is created here (its first
// row and its creator's membership, in one PostgreSQL transaction); from
// then on the circle entity owns it, and every other route sends one
// command to it through the router. "My circles" is a read of PostgreSQL.
#include <algorithm>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/circle/circle.hpp"
#include "actors/router.hpp"
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

/// The circle the path names, or nullopt after answering 404 (an id that
/// is not a uuid names no circle).
std::optional<actors::entity_ref> circle_of(const request& rq, const respond_fn& respond) {
  auto id = rq.path_params.at("id");
  if (!is_uuid(id)) {
    respond(problem(404, "not-found", "Not Found", "no such circle"));
    return std::nullopt;
  }
  return actors::entity_ref{circle::type, lower_uuid(id)};
}

template <class Cmd>
actor_handler ask_circle(int ok_status, std::function<Cmd(const request&)> make) {
  return [ok_status, make](caf::event_based_actor* self, request& rq, respond_fn respond) {
    auto ref = circle_of(rq, respond);
    if (!ref) return;
    ask_entity(self, *ref, caf::make_message(make(rq)), ok_status, std::move(respond));
  };
}

/// A money POST to the circle: its Idempotency-Key (400 if malformed) and
/// the request's digest go into the command; answered 200.
template <class Cmd>
actor_handler ask_keyed(std::function<Cmd(const request&, std::string, std::string)> make) {
  return [make](caf::event_based_actor* self, request& rq, respond_fn respond) {
    auto key = idempotency_key(rq, respond);
    if (!key) return;
    auto ref = circle_of(rq, respond);
    if (!ref) return;
    auto hash = request_hash_if_keyed(rq, *key);
    ask_entity(self, *ref, caf::make_message(make(rq, *key, std::move(hash))), 200,
               std::move(respond));
  };
}

void create(caf::event_based_actor* self, api_context_ptr ctx, request& rq, respond_fn respond) {
  const auto& b = *rq.json;
  json doc = {{"id", new_uuid()},
              {"name", b["name"].get<std::string>()},
              {"creator_id", rq.user_id},
              {"contribution_amount", b["contribution_amount"].get<int64_t>()},
              {"frequency", b["frequency"].get<std::string>()},
              {"max_members", b["max_members"].get<int64_t>()},
              {"members_count", 1},
              {"current_round", 0},
              {"status", "forming"},
              {"pot", 0},
              {"payout_order", b.value("payout_order", std::string{"join"})},
              {"auto_payout", b.value("auto_payout", false)},
              {"version", 1}};
  with_pool(self, *ctx, respond, [doc, respond](std::shared_ptr<pg::pool> pool) mutable {
    bool queued = pool->submit([doc, respond](pg::connection& c) mutable {
      auto r = c.exec(
        "WITH c AS (INSERT INTO circles (id, name, creator_id, contribution_amount, frequency, "
        "max_members, payout_order, auto_payout, status, version, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'forming', 1, now()) RETURNING created_at) "
        "INSERT INTO circle_members (circle_id, user_id, joined, version, joined_at) "
        "SELECT $1, $3, 1, 1, created_at FROM c "
        "RETURNING to_char(joined_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
        {doc["id"].get<std::string>(), doc["name"].get<std::string>(),
         doc["creator_id"].get<std::string>(),
         std::to_string(doc["contribution_amount"].get<int64_t>()),
         doc["frequency"].get<std::string>(), std::to_string(doc["max_members"].get<int64_t>()),
         doc["payout_order"].get<std::string>(),
         doc["auto_payout"].get<bool>() ? "true" : "false"});
      if (!r.ok() || r.rows.empty()) {
        gm::log::get("circle")->warn("creating a circle failed: {}", r.error);
        respond(unavailable("the database is unavailable, retry shortly"));
        return;
      }
      doc["created_at"] = r.value(0, 0);
      respond(json_response(201, doc.dump()));
    });
    if (!queued) respond(unavailable("the database queue is full"));
  });
}

/// The caller's circles, newest first. The cursor is the number of circles
/// already listed (a member has few).
void list_mine(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
               respond_fn respond) {
  auto pg_page = page_of(rq, respond);
  if (!pg_page) return;
  auto limit = pg_page->limit;
  auto offset = pg_page->cursor.value_or("0");
  auto uid = rq.user_id;
  with_pool(self, *ctx, respond, [uid, limit, offset, respond](std::shared_ptr<pg::pool> pool) {
    bool queued = pool->submit([uid, limit, offset, respond](pg::connection& c) {
      auto r = c.exec(
        "SELECT c.id, c.name, c.creator_id, c.contribution_amount, c.frequency, c.max_members, "
        "(SELECT count(*) FROM circle_members x WHERE x.circle_id = c.id), c.current_round, "
        "c.status, c.pot, c.payout_order, c.auto_payout, c.version, "
        "to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
        "FROM circles c JOIN circle_members m ON m.circle_id = c.id AND m.user_id = $1 "
        "ORDER BY c.created_at DESC, c.id LIMIT $2 OFFSET $3",
        {uid, std::to_string(limit + 1), offset});
      if (!r.ok()) {
        gm::log::get("circle")->warn("listing circles failed: {}", r.error);
        respond(unavailable("the database is unavailable, retry shortly"));
        return;
      }
      json items = json::array();
      size_t n = std::min(r.rows.size(), static_cast<size_t>(limit));
      for (size_t i = 0; i < n; ++i) {
        items.push_back({{"id", r.value(i, 0)},
                         {"name", r.value(i, 1)},
                         {"creator_id", r.value(i, 2)},
                         {"contribution_amount", std::stoll(r.value(i, 3, "0"))},
                         {"frequency", r.value(i, 4)},
                         {"max_members", std::stoll(r.value(i, 5, "0"))},
                         {"members_count", std::stoll(r.value(i, 6, "0"))},
                         {"current_round", std::stoll(r.value(i, 7, "0"))},
                         {"status", r.value(i, 8)},
                         {"pot", std::stoll(r.value(i, 9, "0"))},
                         {"payout_order", r.value(i, 10)},
                         {"auto_payout", r.value(i, 11) == "t"},
                         {"version", std::stoll(r.value(i, 12, "0"))},
                         {"created_at", r.value(i, 13)}});
      }
      json doc = {{"items", std::move(items)}, {"next_cursor", nullptr}};
      if (r.rows.size() > static_cast<size_t>(limit)) {
        doc["next_cursor"] = std::to_string(std::stoll(offset) + limit);
      }
      respond(json_response(200, doc.dump()));
    });
    if (!queued) respond(unavailable("the database queue is full"));
  });
}

field_rule boolean_field(std::string name) {
  field_rule f;
  f.name = std::move(name);
  f.type = json_type::boolean;
  return f;
}

} // namespace

void add_circle_routes(route_table& table, api_context_ptr ctx) {
  table.add(api_route(
    "POST", "/api/v1/circles", "Create a savings circle (the creator is its first member)",
    "circles", {{201, "circle"}},
    {true, {},
     make_schema({string_field("name", true, 1, 100),
                  integer_field("contribution_amount", true, 1, INT64_MAX),
                  one_of(string_field("frequency", true, 1, 16), {"daily", "weekly", "monthly"}),
                  integer_field("max_members", true, 2, 100),
                  one_of(string_field("payout_order", false, 1, 16), {"join", "random"}),
                  boolean_field("auto_payout")})},
    [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
      create(self, ctx, rq, std::move(respond));
    }));
  table.add(api_route("GET", "/api/v1/circles", "The caller's circles (?limit=, ?cursor=)",
                      "circles", {{200, "{items: [circle], next_cursor}"}}, {true, {}, nullptr},
                      [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        list_mine(self, ctx, rq, std::move(respond));
                      }));
  table.add(api_route("GET", "/api/v1/circles/{id}",
                      "A circle (while forming: anyone signed in; then members and admins)",
                      "circles", {{200, "circle"}, {404, "no such circle"}}, {true, {}, nullptr},
                      ask_circle<circle::get_cmd>(200, [](const request& rq) {
                        return circle::get_cmd{rq.user_id, rq.role};
                      })));
  table.add(api_route("GET", "/api/v1/circles/{id}/members",
                      "The members, in payout order once started (members and admins)",
                      "circles", {{200, "{items: [member], next_cursor}"}, {404, "no such circle"}},
                      {true, {}, nullptr},
                      ask_circle<circle::members_cmd>(200, [](const request& rq) {
                        return circle::members_cmd{rq.user_id, rq.role};
                      })));
  table.add(api_route("POST", "/api/v1/circles/{id}/join", "Join a forming circle", "circles",
                      {{200, "circle"}, {404, "no such circle"}, {409, "full, started, or a member"}},
                      {true, {}, nullptr},
                      ask_circle<circle::join_cmd>(200, [](const request& rq) {
                        return circle::join_cmd{rq.user_id};
                      })));
  table.add(api_route("POST", "/api/v1/circles/{id}/start",
                      "Start the circle (creator): fixes the payout order", "circles",
                      {{200, "circle"}, {403, "not the creator"}, {409, "started, or too few members"}},
                      {true, {}, nullptr},
                      ask_circle<circle::begin_cmd>(200, [](const request& rq) {
                        return circle::begin_cmd{rq.user_id};
                      })));
  table.add(api_route(
    "POST", "/api/v1/circles/{id}/contribute",
    "Pay this round's contribution from the caller's wallet into the pot (Idempotency-Key)",
    "circles",
    {{200, "contribution"},
     {403, "not a member"},
     {409, "already paid this round, insufficient funds, or not active"}},
    {true, {}, nullptr},
    ask_keyed<circle::contribute_cmd>([](const request& rq, std::string key, std::string hash) {
      return circle::contribute_cmd{rq.user_id, std::move(key), std::move(hash)};
    })));
  table.add(api_route(
    "POST", "/api/v1/circles/{id}/payout",
    "Pay the pot to this round's recipient once every member has paid (creator or admin; "
    "Idempotency-Key)",
    "circles",
    {{200, "payout"}, {403, "not the creator or an admin"}, {409, "not every member has paid"}},
    {true, {}, nullptr},
    ask_keyed<circle::payout_cmd>([](const request& rq, std::string key, std::string hash) {
      return circle::payout_cmd{rq.user_id, rq.role, std::move(key), std::move(hash)};
    })));
}

} // namespace gm::gateway
