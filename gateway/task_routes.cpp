// The delivery task routes of API.md's "Riders and delivery tasks": a
// client (or dispatcher) creates a task with a fee, which the task locks in
// the creator's escrow and then offers to riders; riders accept, decline,
// pick up and complete; the creator cancels before pickup. Added for
// dispatchers (docs/departures.md): the list of tasks by status and a
// manual assignment. Each route but the list is one command to the task
// entity.
#include <algorithm>
#include <optional>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/router.hpp"
#include "actors/task/store.hpp"
#include "actors/task/task.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "gateway/api_context.hpp"
#include "gateway/entity_http.hpp"
#include "gateway/routes.hpp"
#include "gateway/validation.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::gateway {

namespace {

/// The task the path names, or nullopt after answering 404.
std::optional<actors::entity_ref> task_of(const request& rq, const respond_fn& respond) {
  auto id = rq.path_params.at("id");
  if (!is_uuid(id)) {
    respond(problem(404, "not-found", "Not Found", "no such task"));
    return std::nullopt;
  }
  return actors::entity_ref{task::type, lower_uuid(id)};
}

void create(caf::event_based_actor* self, request& rq, respond_fn respond) {
  auto key = idempotency_key(rq, respond);
  if (!key) return;
  const auto& b = *rq.json;
  task::create_cmd cmd;
  cmd.user = rq.user_id;
  cmd.role = rq.role;
  cmd.fee = b["fee"].get<int64_t>();
  cmd.pickup_lat = b["pickup"]["lat"].get<double>();
  cmd.pickup_lng = b["pickup"]["lng"].get<double>();
  cmd.dropoff_lat = b["dropoff"]["lat"].get<double>();
  cmd.dropoff_lng = b["dropoff"]["lng"].get<double>();
  if (b.contains("description")) {
    cmd.description = b["description"].get<std::string>();
    cmd.has_description = true;
  }
  cmd.key = *key;
  cmd.hash = request_hash_if_keyed(rq, *key);
  ask_entity(self, {task::type, task::id_for(rq.user_id, *key)},
             caf::make_message(std::move(cmd)), 201, std::move(respond));
}

/// A step of the task (`what`); `keyed`: it moves money and takes an
/// Idempotency-Key.
actor_handler step(const char* what, bool keyed) {
  return [what, keyed](caf::event_based_actor* self, request& rq, respond_fn respond) {
    std::string key;
    if (keyed) {
      auto k = idempotency_key(rq, respond);
      if (!k) return;
      key = *k;
    }
    auto ref = task_of(rq, respond);
    if (!ref) return;
    task::act_cmd cmd;
    cmd.user = rq.user_id;
    cmd.role = rq.role;
    cmd.what = what;
    if (rq.json) {
      auto& b = *rq.json;
      if (b.contains("proof")) {
        cmd.text = b["proof"].get<std::string>();
        cmd.has_text = true;
      }
      cmd.rider = b.value("rider_id", std::string{});
    }
    cmd.key = key;
    cmd.hash = request_hash_if_keyed(rq, key);
    ask_entity(self, *ref, caf::make_message(std::move(cmd)), 200, std::move(respond));
  };
}

/// GET /tasks: dispatchers and admins see every task, others those they
/// created or rode; ?status= filters. Read from PostgreSQL once the journal
/// has committed what it holds, so a caller reads its own writes.
void list(caf::event_based_actor* self, api_context_ptr ctx, request& rq, respond_fn respond) {
  auto pg_page = page_of(rq, respond);
  if (!pg_page) return;
  task::list_query q;
  q.everyone = rq.role == "dispatcher" || rq.role == "admin";
  q.user = rq.user_id;
  if (auto s = rq.query_param("status")) {
    if (!task::is_status(*s)) {
      respond(problem(400, "invalid-query", "Bad Request",
                      "status must be pending, offered, assigned, picked_up, completed, canceled "
                      "or unassigned"));
      return;
    }
    q.status = *s;
  }
  q.offset = pg_page->cursor ? std::stoll(*pg_page->cursor) : 0;
  q.limit = pg_page->limit + 1;
  auto limit = pg_page->limit;
  auto read = [self, ctx, q, limit, respond] {
    with_pool(self, *ctx, respond, [q, limit, respond](std::shared_ptr<pg::pool> pool) {
      bool queued = pool->submit([q, limit, respond](pg::connection& c) {
        std::vector<std::string> items;
        std::string error;
        if (!task::list(c, q, items, error)) {
          gm::log::get("task")->warn("listing tasks failed: {}", error);
          respond(unavailable("the database is unavailable, retry shortly"));
          return;
        }
        std::string out = "{\"items\":[";
        size_t n = std::min(items.size(), static_cast<size_t>(limit));
        for (size_t i = 0; i < n; ++i) {
          if (i) out += ",";
          out += items[i];
        }
        out += "],\"next_cursor\":";
        out += items.size() > static_cast<size_t>(limit)
                 ? "\"" + std::to_string(q.offset + limit) + "\""
                 : std::string{"null"};
        out += "}";
        respond(json_response(200, out));
      });
      if (!queued) respond(unavailable("the database queue is full"));
    });
  };
  after_journal_sync(self, respond, read);
}

} // namespace

void add_task_routes(route_table& table, api_context_ptr ctx, int64_t max_fee) {
  table.add(api_route(
    "POST", "/api/v1/tasks",
    "Create a delivery task (clients and dispatchers; Idempotency-Key): the fee is locked in the "
    "creator's escrow, then the task is offered to the best available rider near its pickup",
    "tasks", {{201, "task"}, {409, "the fee is not covered"}},
    {true, {"client", "dispatcher", "admin"},
     make_schema({position_field("pickup", true), position_field("dropoff", true),
                  integer_field("fee", true, 1, max_fee),
                  string_field("description", false, 0, 500)})},
    [](caf::event_based_actor* self, request& rq, respond_fn respond) {
      create(self, rq, std::move(respond));
    }));
  // Before /tasks/{id}: the first route whose pattern matches wins.
  table.add(api_route(
    "GET", "/api/v1/tasks",
    "Tasks, newest first: every task for dispatchers and admins, else those the caller created "
    "or rode (?status=, ?limit=, ?cursor=)",
    "tasks", {{200, "{items: [task], next_cursor}"}, {400, "bad status"}}, {true, {}, nullptr},
    [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
      list(self, ctx, rq, std::move(respond));
    }));
  table.add(api_route("GET", "/api/v1/tasks/{id}",
                      "A task (its creator, its riders, dispatchers and admins)", "tasks",
                      {{200, "task"}, {404, "no such task"}}, {true, {}, nullptr},
                      [](caf::event_based_actor* self, request& rq, respond_fn respond) {
                        auto ref = task_of(rq, respond);
                        if (!ref) return;
                        ask_entity(self, *ref,
                                   caf::make_message(task::get_cmd{rq.user_id, rq.role}), 200,
                                   std::move(respond));
                      }));
  table.add(api_route("POST", "/api/v1/tasks/{id}/accept",
                      "Accept the offer (the rider it is offered to): the rider is busy with it",
                      "tasks",
                      {{200, "task"}, {403, "not offered to the caller"}, {404, "no such task"},
                       {409, "the offer ran out"}},
                      {true, {}, nullptr}, step("accept", false)));
  table.add(api_route("POST", "/api/v1/tasks/{id}/decline",
                      "Decline the offer (the rider it is offered to): it goes to the next rider",
                      "tasks",
                      {{200, "task"}, {403, "not offered to the caller"}, {404, "no such task"},
                       {409, "the offer ran out"}},
                      {true, {}, nullptr}, step("decline", false)));
  table.add(api_route("POST", "/api/v1/tasks/{id}/pickup", "Picked up (the assigned rider)",
                      "tasks",
                      {{200, "task"}, {403, "not its rider"}, {404, "no such task"},
                       {409, "not assigned"}},
                      {true, {}, nullptr}, step("pickup", false)));
  table.add(api_route(
    "POST", "/api/v1/tasks/{id}/complete",
    "Delivered (the assigned rider, after pickup; Idempotency-Key): the fee is paid to the rider's "
    "wallet as an earning, and the rider earns XP",
    "tasks",
    {{200, "task"}, {403, "not its rider"}, {404, "no such task"}, {409, "not picked up"}},
    {true, {}, make_schema({string_field("proof", false, 0, 2000)})}, step("complete", true)));
  table.add(api_route(
    "POST", "/api/v1/tasks/{id}/cancel",
    "Cancel before pickup (its creator, dispatchers, admins; Idempotency-Key): the fee is "
    "refunded",
    "tasks",
    {{200, "task"}, {403, "not its creator"}, {404, "no such task"}, {409, "picked up already"}},
    {true, {}, nullptr}, step("cancel", true)));
  table.add(api_route(
    "POST", "/api/v1/tasks/{id}/assign",
    "Assign the task to a rider directly (dispatchers and admins; from pending, offered or "
    "unassigned): the rider must be online and free",
    "tasks",
    {{200, "task"}, {404, "no such task"}, {409, "the rider is busy, offline or holds an offer"},
     {422, "rider_id names no rider"}},
    {true, {"dispatcher", "admin"}, make_schema({string_field("rider_id", true, 36, 36, "uuid")})},
    step("assign", false)));
}

} // namespace gm::gateway
