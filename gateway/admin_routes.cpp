// The Admin and inspection routes of API.md (role admin): live entities
// from the shards' directories, one entity's state, passivate and kill on
// purpose, and the journal's figures.
#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/kinds.hpp"
#include "actors/router.hpp"
#include "gateway/api_context.hpp"
#include "gateway/routes.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"
#include "supervisors/supervisor.hpp"
#include "common/ids.hpp"
#include "common/registry.hpp"

namespace gm::gateway {
namespace {

using nlohmann::json;

/// The entity kinds this node runs a shard for (actors/kinds.cpp).
const std::vector<std::string>& entity_types() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> out;
    for (auto& k : actors::kinds()) out.push_back(k.type);
    return out;
  }();
  return types;
}

json info_json(const actors::entity_info& i, bool with_state) {
  json j = {{"type", i.type},       {"id", i.id},          {"node", i.node},
            {"status", i.status},   {"version", i.version}, {"mailbox", i.mailbox},
            {"restarts", i.restarts}, {"idle_ms", i.idle_ms}};
  if (with_state) {
    j["state"] = json::parse(i.state.empty() ? "{}" : i.state, nullptr, false);
    j["supervisor"] = "shard:" + i.type;
  }
  return j;
}

response no_entity() {
  return problem(404, "not-found", "Not Found", "no such live actor");
}

/// Runs `next` with the shard of the route's {type}, or answers 404.
bool with_shard(caf::event_based_actor* self, const request& rq, const respond_fn& respond,
                caf::actor& shard) {
  auto type = rq.path_params.at("type");
  if (std::find(entity_types().begin(), entity_types().end(), type) == entity_types().end()) {
    respond(problem(404, "not-found", "Not Found", "no actor type " + type));
    return false;
  }
  shard = actors::shard_of(self->system(), type);
  if (!shard) {
    respond(unavailable("the " + type + " shard is restarting"));
    return false;
  }
  return true;
}

void list_actors(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                 respond_fn respond) {
  auto type_filter = rq.query_param("type").value_or("");
  // This node lists its own entities: another node's name matches none here
  // (until the cluster issue asks the other nodes).
  auto node_filter = rq.query_param("node").value_or("");
  std::vector<std::string> types;
  for (auto& t : entity_types()) {
    if ((type_filter.empty() || t == type_filter) &&
        (node_filter.empty() || node_filter == ctx->node_id)) {
      types.push_back(t);
    }
  }
  auto doc = std::make_shared<json>(json{{"counts_by_type", json::object()},
                                         {"items", json::array()}});
  auto left = std::make_shared<size_t>(types.size());
  if (types.empty()) {
    respond(json_response(200, doc->dump()));
    return;
  }
  for (auto& t : types) {
    auto shard = actors::shard_of(self->system(), t);
    if (!shard) {
      if (--*left == 0) respond(json_response(200, doc->dump()));
      continue;
    }
    // The count is of every live entity; the items are the first 200.
    self->request(shard, ctx->request_timeout, actors::count_atom::value)
      .then([doc, t](int64_t n) { (*doc)["counts_by_type"][t] = n; }, [](caf::error&) {});
    self->request(shard, ctx->request_timeout, actors::list_atom::value, int64_t{200})
      .then(
        [doc, left, respond](std::vector<actors::entity_info>& items) {
          // At most 200 items in all (API.md's list maximum), over every kind.
          for (auto& i : items) {
            if ((*doc)["items"].size() >= 200) break;
            (*doc)["items"].push_back(info_json(i, false));
          }
          if (--*left == 0) respond(json_response(200, doc->dump()));
        },
        [left, respond](caf::error&) {
          if (--*left == 0) respond(unavailable("a shard did not answer"));
        });
  }
}

void inspect_actor(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                   respond_fn respond) {
  caf::actor shard;
  if (!with_shard(self, rq, respond, shard)) return;
  self->request(shard, ctx->request_timeout, actors::inspect_atom::value,
                lower_uuid(rq.path_params.at("id")))
    .then([respond](actors::entity_info& i) { respond(json_response(200, info_json(i, true).dump())); },
          [respond](caf::error& e) {
            respond(e == caf::sec::invalid_argument ? no_entity() : unavailable("the actor did not answer"));
          });
}

template <class Atom>
actor_handler control(api_context_ptr ctx) {
  return [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
    caf::actor shard;
    if (!with_shard(self, rq, respond, shard)) return;
    self->request(shard, ctx->request_timeout, Atom::value, lower_uuid(rq.path_params.at("id")))
      .then(
        [respond](bool live) {
          if (!live) {
            respond(no_entity());
            return;
          }
          response r;
          r.status = 202;
          r.body = R"({"status":"accepted"})";
          respond(std::move(r));
        },
        [respond](caf::error&) { respond(unavailable("the shard did not answer")); });
  };
}

void journal_stats(caf::event_based_actor* self, api_context_ptr ctx, request&,
                   respond_fn respond) {
  auto j = journal::find(self->system());
  if (!j) {
    respond(unavailable("the journal is restarting"));
    return;
  }
  self->request(j, ctx->request_timeout, journal::stats_atom::value)
    .then(
      [respond](journal::stats& s) {
        json doc = {{"pending", s.pending},
                    {"in_flight", s.in_flight},
                    {"last_batch_rows", s.last_batch_rows},
                    {"flush_latency_ms_p50", s.flush_latency_ms_p50},
                    {"flush_latency_ms_p99", s.flush_latency_ms_p99},
                    {"batches", s.batches},
                    {"rows_written", s.rows_written},
                    {"failures", s.failures},
                    {"limit", s.limit},
                    {"failing_ms", s.failing_ms},
                    {"last_error", s.last_error.empty() ? json(nullptr) : json(s.last_error)},
                    {"refused_rows", s.refused_rows},
                    {"last_refused",
                     s.last_refused.empty() ? json(nullptr) : json(s.last_refused)},
                    {"stale_rows", s.stale_rows}};
        respond(json_response(200, doc.dump(-1, ' ', false, json::error_handler_t::replace)));
      },
      [respond](caf::error&) { respond(unavailable("the journal did not answer")); });
}

/// Counts this node's live entities over every shard, then runs `done`.
void count_live(caf::event_based_actor* self, const api_context& ctx,
                std::function<void(int64_t)> done) {
  auto total = std::make_shared<int64_t>(0);
  auto left = std::make_shared<size_t>(entity_types().size());
  for (auto& t : entity_types()) {
    auto shard = actors::shard_of(self->system(), t);
    auto finish = [total, left, done](int64_t n) {
      *total += n;
      if (--*left == 0) done(*total);
    };
    if (!shard) {
      finish(0);
      continue;
    }
    self->request(shard, ctx.request_timeout, actors::count_atom::value)
      .then([finish](int64_t n) { finish(n); }, [finish](caf::error&) { finish(0); });
  }
}

void cluster_nodes(caf::event_based_actor* self, api_context_ptr ctx, request&,
                   respond_fn respond) {
  count_live(self, *ctx, [self, ctx, respond](int64_t live) {
    with_pool(self, *ctx, respond, [ctx, live, respond](std::shared_ptr<pg::pool> pool) {
      bool queued = pool->submit([ctx, live, respond](pg::connection& c) {
        auto r = c.exec(
          "SELECT node_id, address, CASE WHEN last_heartbeat > now() - interval '15 seconds' "
          "THEN status ELSE 'down' END, incarnation, "
          "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
          "to_char(last_heartbeat AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
          "FROM nodes ORDER BY node_id");
        if (!r.ok()) {
          respond(unavailable("the database is unavailable, retry shortly"));
          return;
        }
        json nodes = json::array();
        for (size_t i = 0; i < r.rows.size(); ++i) {
          auto id = r.value(i, 0);
          nodes.push_back({{"id", id},
                           {"address", r.value(i, 1)},
                           {"status", r.value(i, 2)},
                           {"incarnation", std::stoll(r.value(i, 3, "0"))},
                           {"started_at", r.value(i, 4)},
                           {"last_heartbeat", r.value(i, 5)},
                           // Only this node's count is known here (no cluster yet).
                           {"actors", id == ctx->node_id ? json(live) : json(nullptr)}});
        }
        respond(json_response(200, json{{"nodes", std::move(nodes)}}.dump()));
      });
      if (!queued) respond(unavailable("the database queue is full"));
    });
  });
}

json report_json(const sup::supervisor_report& r) {
  json children = json::array();
  for (auto& c : r.children) {
    children.push_back({{"name", c.name},
                        {"running", c.running},
                        {"restarts", c.restarts},
                        {"last_failure", c.last_reason.empty() ? json(nullptr)
                                                               : json(c.last_reason)}});
  }
  return {{"name", r.name},         {"strategy", r.strategy}, {"intensity", r.intensity},
          {"period_ms", r.period_ms}, {"restarts", r.restarts}, {"children", std::move(children)}};
}

/// Fills `node` (a supervisor's JSON) with the reports of its children that
/// are supervisors themselves, then runs `done`.
void nest(caf::event_based_actor* self, const api_context& ctx, std::shared_ptr<json> root,
          json* node, std::function<void()> done) {
  std::vector<std::pair<json*, caf::actor>> subs;
  for (auto& c : (*node)["children"]) {
    auto name = c["name"].get<std::string>();
    if (name.size() > 6) continue;
    auto h = find_registered(self->system(), sup::registry_name(name));
    if (h) subs.emplace_back(&c, h);
  }
  if (subs.empty()) {
    done();
    return;
  }
  auto left = std::make_shared<size_t>(subs.size());
  for (auto& [child, h] : subs) {
    auto timeout = ctx.request_timeout;
    self->request(h, timeout, sup::report_atom::value)
      .then(
        [self, &ctx, root, child = child, left, done](sup::supervisor_report& r) {
          (*child)["supervisor"] = report_json(r);
          nest(self, ctx, root, &(*child)["supervisor"], [left, done] {
            if (--*left == 0) done();
          });
        },
        [left, done](caf::error&) {
          if (--*left == 0) done();
        });
  }
}

void supervisors(caf::event_based_actor* self, api_context_ptr ctx, request&,
                 respond_fn respond) {
  auto root = find_registered(self->system(), sup::registry_name("root"));
  if (!root) {
    respond(unavailable("the root supervisor is not registered"));
    return;
  }
  self->request(root, ctx->request_timeout, sup::report_atom::value)
    .then(
      [self, ctx, respond](sup::supervisor_report& r) {
        auto doc = std::make_shared<json>(report_json(r));
        nest(self, *ctx, doc, doc.get(), [doc, respond] {
          respond(json_response(200, doc->dump(-1, ' ', false, json::error_handler_t::replace)));
        });
      },
      [respond](caf::error&) { respond(unavailable("the root supervisor did not answer")); });
}

} // namespace

void add_admin_routes(route_table& table, api_context_ptr ctx) {
  api_options admin{true, {"admin"}, nullptr};
  auto bind = [ctx](void (*fn)(caf::event_based_actor*, api_context_ptr, request&, respond_fn)) {
    return [ctx, fn](caf::event_based_actor* self, request& rq, respond_fn respond) {
      fn(self, ctx, rq, std::move(respond));
    };
  };
  table.add(api_route("GET", "/api/v1/admin/cluster", "The nodes of the cluster", "admin",
                      {{200, "{nodes: [{id, address, status, incarnation, started_at, "
                             "last_heartbeat, actors}]}"}},
                      admin, bind(cluster_nodes)));
  table.add(api_route("GET", "/api/v1/admin/actors", "Live actors by type (?type=)", "admin",
                      {{200, "{counts_by_type, items}"}}, admin, bind(list_actors)));
  table.add(api_route("GET", "/api/v1/admin/actors/{type}/{id}", "One live actor's state",
                      "admin", {{200, "{type, id, node, state, version, mailbox, restarts}"},
                                {404, "not live"}},
                      admin, bind(inspect_actor)));
  table.add(api_route("POST", "/api/v1/admin/actors/{type}/{id}/passivate",
                      "Passivate a live actor (flush, then stop)", "admin",
                      {{202, "accepted"}, {404, "not live"}}, admin,
                      control<actors::passivate_atom>(ctx)));
  table.add(api_route("POST", "/api/v1/admin/actors/{type}/{id}/kill",
                      "Crash a live actor on purpose; its shard restarts it", "admin",
                      {{202, "accepted"}, {404, "not live"}}, admin,
                      control<actors::kill_atom>(ctx)));
  table.add(api_route("GET", "/api/v1/admin/supervisors",
                      "The supervision tree: strategies, children, restart counts", "admin",
                      {{200, "{name, strategy, intensity, period_ms, restarts, children}"}}, admin,
                      bind(supervisors)));
  table.add(api_route("GET", "/api/v1/admin/journal", "The write-behind journal's figures",
                      "admin", {{200, "{pending, in_flight, last_batch_rows, ...}"}}, admin,
                      bind(journal_stats)));
}

} // namespace gm::gateway
