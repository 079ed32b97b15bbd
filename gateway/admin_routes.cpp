// The Admin and inspection routes of API.md (role admin): live entities
// from the shards' directories, one entity's state, passivate and kill on
// purpose, and the journal's figures.
#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "cluster/membership.hpp"
#include "actors/kinds.hpp"
#include "actors/router.hpp"
#include "gateway/api_context.hpp"
#include "gateway/entity_http.hpp"
#include "gateway/inspector.hpp"
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
            {"restarts", i.restarts}, {"idle_ms", i.idle_ms}, {"messages", i.messages}};
  if (with_state) {
    j["state"] = json::parse(i.state.empty() ? "{}" : i.state, nullptr, false);
    j["supervisor"] = "shard:" + i.type;
  }
  return j;
}

response no_entity() {
  return problem(404, "not-found", "Not Found", "no such live actor");
}

/// Requests `xs` of the shard of `type` on this node (`endpoint` invalid)
/// or, through its cluster endpoint, on another node.
template <class... Ts>
auto ask_shard(caf::event_based_actor* self, const caf::actor& endpoint, const caf::actor& shard,
               const std::string& type, std::chrono::milliseconds timeout, Ts&&... xs) {
  if (endpoint) {
    return self->request(endpoint, timeout, cluster::admin_atom::value, type,
                         caf::make_message(std::forward<Ts>(xs)...));
  }
  return self->request(shard, timeout, std::forward<Ts>(xs)...);
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

/// Like with_shard, and finds the node that owns entity {id}: `endpoint`
/// is that node's if it is another (invalid if it is this one).
bool with_owner(caf::event_based_actor* self, const request& rq, const respond_fn& respond,
                caf::actor& shard, caf::actor& endpoint) {
  if (!with_shard(self, rq, respond, shard)) return false;
  auto id = lower_uuid(rq.path_params.at("id"));
  if (actors::owned_elsewhere(rq.path_params.at("type"), id, endpoint) && !endpoint) {
    respond(unavailable("the node that owns this actor is not reachable right now"));
    return false;
  }
  return true;
}

/// GET /admin/actors: this node's live actors, filtered by kind and node,
/// sorted (highest first) by mailbox, messages, restarts or idle time, a
/// page at a time. Each shard answers its own best offset+limit; the pages
/// merge here.
void list_actors(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                 respond_fn respond) {
  auto type_filter = rq.query_param("type").value_or("");
  // Every node up that this node is connected to (cluster::admin_nodes),
  // or the one named.
  auto node_filter = rq.query_param("node").value_or("");
  auto sort = rq.query_param("sort").value_or("mailbox");
  if (sort != "mailbox" && sort != "messages" && sort != "restarts" && sort != "idle") {
    respond(problem(400, "invalid-query", "Bad Request",
                    "sort must be mailbox, messages, restarts or idle"));
    return;
  }
  auto pg_page = page_of(rq, respond);
  if (!pg_page) return;
  int64_t offset = pg_page->cursor ? std::stoll(*pg_page->cursor) : 0;
  int64_t limit = pg_page->limit;
  std::vector<std::string> types;
  for (auto& t : entity_types()) {
    if (type_filter.empty() || t == type_filter) types.push_back(t);
  }
  std::vector<cluster::node_handle> nodes;
  for (auto& n : cluster::admin_nodes(ctx->node_id)) {
    if (node_filter.empty() || node_filter == n.id) nodes.push_back(n);
  }
  struct merged {
    json counts = json::object();
    int64_t total = 0;
    std::vector<actors::entity_info> rows;
    size_t left = 0;
    bool failed = false;
  };
  auto m = std::make_shared<merged>();
  m->left = types.size() * nodes.size() * 2;  // a count and a list from each shard
  auto finish = [m, offset, limit, sort, respond] {
    auto key = [&sort](const actors::entity_info& i) {
      if (sort == "messages") return i.messages;
      if (sort == "restarts") return i.restarts;
      if (sort == "idle") return i.idle_ms;
      return i.mailbox;
    };
    std::sort(m->rows.begin(), m->rows.end(), [&key](const auto& a, const auto& b) {
      auto ka = key(a), kb = key(b);
      if (ka != kb) return ka > kb;
      return a.type != b.type ? a.type < b.type : a.id < b.id;
    });
    json items = json::array();
    for (int64_t i = offset; i < offset + limit && i < static_cast<int64_t>(m->rows.size()); ++i) {
      items.push_back(info_json(m->rows[static_cast<size_t>(i)], false));
    }
    json doc = {{"counts_by_type", m->counts}, {"total", m->total}, {"sort", sort},
                {"items", std::move(items)}, {"next_cursor", nullptr}};
    if (offset + limit < static_cast<int64_t>(m->rows.size())) {
      doc["next_cursor"] = std::to_string(offset + limit);
    }
    respond(json_response(200, doc.dump(-1, ' ', false, json::error_handler_t::replace)));
  };
  if (types.empty() || nodes.empty()) {
    finish();
    return;
  }
  for (auto& node : nodes) {
    bool remote = static_cast<bool>(node.endpoint);
    for (auto& t : types) {
      auto shard = actors::shard_of(self->system(), t);
      if (!shard && !remote) {
        m->left -= 2;
        if (m->left == 0) finish();
        continue;
      }
      ask_shard(self, node.endpoint, shard, t, ctx->request_timeout, actors::count_atom::value)
        .then(
          [m, t, finish](int64_t n) {
            if (m->failed) return;
            m->counts[t] = m->counts.value(t, int64_t{0}) + n;
            m->total += n;
            if (--m->left == 0) finish();
          },
          [m, finish](caf::error&) {
            if (m->failed) return;
            if (--m->left == 0) finish();
          });
      // One more than the page: whether a next page exists.
      ask_shard(self, node.endpoint, shard, t, ctx->request_timeout, actors::list_atom::value,
                offset + limit + 1, sort)
        .then(
          [m, finish](std::vector<actors::entity_info>& items) {
            if (m->failed) return;
            for (auto& i : items) m->rows.push_back(std::move(i));
            if (--m->left == 0) finish();
          },
          [m, remote, finish, respond](caf::error&) {
            if (m->failed) return;
            if (remote) {  // a node that went away meanwhile: listed without it
              if (--m->left == 0) finish();
              return;
            }
            respond(unavailable("a shard did not answer"));
            m->failed = true;
          });
    }
  }
}

/// A wallet's balances beside the sums of its ledger entries in
/// PostgreSQL, read once the journal has committed what it holds (the
/// wallet's rows up to the state just read, unless it changed since).
void check_ledger(caf::event_based_actor* self, api_context_ptr ctx, json doc,
                  respond_fn respond) {
  auto& state = doc["state"];
  if (!state.is_object() || !state.contains("id") || !state["id"].is_string()) {
    respond(json_response(200, doc.dump()));
    return;
  }
  auto wallet = state["id"].get<std::string>();
  auto balance = state.value("balance", int64_t{0});
  auto escrow = state.value("escrow_balance", int64_t{0});
  auto read = [self, ctx, doc, wallet, balance, escrow, respond]() mutable {
    with_pool(self, *ctx, respond,
              [doc, wallet, balance, escrow, respond](std::shared_ptr<pg::pool> pool) mutable {
                bool queued = pool->submit([doc, wallet, balance, escrow,
                                            respond](pg::connection& c) mutable {
                  auto r = c.exec(
                    "SELECT coalesce(sum(delta) FILTER (WHERE account = $1), 0), "
                    "coalesce(sum(delta) FILTER (WHERE account = 'escrow:' || $1), 0), count(*) "
                    "FROM ledger_entries WHERE wallet_id = $1::uuid",
                    {wallet});
                  if (!r.ok()) {
                    doc["ledger"] = {{"error", "the database is unavailable"}};
                  } else {
                    auto entries = std::stoll(r.value(0, 0, "0"));
                    auto entries_escrow = std::stoll(r.value(0, 1, "0"));
                    doc["ledger"] = {{"balance", balance},
                                     {"escrow_balance", escrow},
                                     {"entries_balance", entries},
                                     {"entries_escrow", entries_escrow},
                                     {"entries", std::stoll(r.value(0, 2, "0"))},
                                     {"agrees", entries == balance && entries_escrow == escrow}};
                  }
                  respond(json_response(200, doc.dump(-1, ' ', false,
                                                      json::error_handler_t::replace)));
                });
                if (!queued) respond(unavailable("the database queue is full"));
              });
  };
  after_journal_sync(self, respond, read);
}

void inspect_actor(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                   respond_fn respond) {
  caf::actor shard, endpoint;
  if (!with_owner(self, rq, respond, shard, endpoint)) return;
  ask_shard(self, endpoint, shard, rq.path_params.at("type"), ctx->request_timeout,
            actors::inspect_atom::value, lower_uuid(rq.path_params.at("id")))
    .then(
      [self, ctx, respond](actors::entity_info& i) {
        auto doc = info_json(i, true);
        if (i.type == "wallet") {
          check_ledger(self, ctx, std::move(doc), respond);
        } else {
          respond(json_response(200, doc.dump()));
        }
      },
      [respond](caf::error& e) {
        respond(e == caf::sec::invalid_argument ? no_entity()
                                                : unavailable("the actor did not answer"));
      });
}

/// Records an operator's action on a live actor (admin_audit), publishes it
/// as `audit.recorded`, then answers with `answer` (its body says whether
/// the record was written: the action happened either way).
void audit(caf::event_based_actor* self, api_context_ptr ctx, const request& rq,
           const char* action, const std::string& result, response answer, respond_fn respond) {
  auto via = rq.header("X-Gigmesh-Client");
  if (via != "console" && via != "cli") via = "api";
  auto type = rq.path_params.at("type");
  auto id = rq.path_params.at("id");
  json rec = {{"id", new_uuid()},    {"at", now_rfc3339()}, {"user_id", rq.user_id},
              {"action", action},    {"target", type + ":" + id}, {"via", via},
              {"result", result},    {"node", ctx->node_id}};
  pg::params p{rec["id"].get<std::string>(), rec["at"].get<std::string>(), rq.user_id,
               std::string{action}, type, id, via, result, ctx->node_id};
  auto* sys = &self->system();
  with_pool(self, *ctx, respond, [sys, rec, p, answer, respond](std::shared_ptr<pg::pool> pool) {
    bool queued = pool->submit([sys, rec, p, answer, respond](pg::connection& c) mutable {
      auto r = c.exec("INSERT INTO admin_audit (id, at, user_id, action, target_type, target_id, "
                      "via, result, node_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                      p);
      if (!r.ok()) {
        gm::log::get("admin")->error("{} of {} by {} was not audited: {}",
                                     rec["action"].get<std::string>(),
                                     rec["target"].get<std::string>(),
                                     rec["user_id"].get<std::string>(), r.error);
      } else {
        publish_inspect(*sys, "audit.recorded", rec.dump());
      }
      if (answer.status == 202) {
        answer.body =
          json{{"status", "accepted"}, {"audited", r.ok()}, {"audit_id", rec["id"]}}.dump();
      }
      respond(std::move(answer));
    });
    if (!queued) respond(answer);
  });
}

template <class Atom>
actor_handler control(api_context_ptr ctx, const char* action) {
  return [ctx, action](caf::event_based_actor* self, request& rq, respond_fn respond) {
    caf::actor shard, endpoint;
    if (!with_owner(self, rq, respond, shard, endpoint)) return;
    auto rqp = std::make_shared<request>(rq);
    ask_shard(self, endpoint, shard, rq.path_params.at("type"), ctx->request_timeout, Atom::value,
              lower_uuid(rq.path_params.at("id")))
      .then(
        [self, ctx, action, rqp, respond](bool live) {
          if (!live) {
            audit(self, ctx, *rqp, action, "not_live", no_entity(), respond);
            return;
          }
          response r;
          r.status = 202;
          r.body = R"({"status":"accepted"})";
          audit(self, ctx, *rqp, action, "accepted", std::move(r), respond);
        },
        [self, ctx, action, rqp, respond](caf::error&) {
          audit(self, ctx, *rqp, action, "failed", unavailable("the shard did not answer"),
                respond);
        });
  };
}

void list_audit(caf::event_based_actor* self, api_context_ptr ctx, request& rq,
                respond_fn respond) {
  auto pg_page = page_of(rq, respond);
  if (!pg_page) return;
  auto limit = pg_page->limit;
  auto offset = pg_page->cursor.value_or("0");
  with_pool(self, *ctx, respond, [limit, offset, respond](std::shared_ptr<pg::pool> pool) {
    bool queued = pool->submit([limit, offset, respond](pg::connection& c) {
      auto r = c.exec(
        "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), user_id, "
        "action, target_type || ':' || target_id, via, result, node_id, detail "
        "FROM admin_audit ORDER BY at DESC, id LIMIT $1 OFFSET $2",
        {std::to_string(limit + 1), offset});
      if (!r.ok()) {
        respond(unavailable("the database is unavailable, retry shortly"));
        return;
      }
      json items = json::array();
      size_t n = std::min(r.rows.size(), static_cast<size_t>(limit));
      for (size_t i = 0; i < n; ++i) {
        json item = {{"id", r.value(i, 0)},     {"at", r.value(i, 1)},
                     {"user_id", r.value(i, 2)}, {"action", r.value(i, 3)},
                     {"target", r.value(i, 4)},  {"via", r.value(i, 5)},
                     {"result", r.value(i, 6)},  {"node", r.value(i, 7)}};
        if (r.rows[i][8]) item["detail"] = *r.rows[i][8];
        items.push_back(std::move(item));
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
        // Status as membership keeps it (cluster/membership.cpp); a node
        // that runs alone is declared down by nobody, so a silent one
        // shows as down here. Live actors of the other nodes come with
        // their heartbeats (at most a heartbeat old).
        auto r = c.exec(
          "SELECT node_id, address, CASE WHEN last_heartbeat > now() - interval '15 seconds' "
          "THEN status ELSE 'down' END, incarnation, "
          "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
          "to_char(last_heartbeat AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
          "cluster_address, live::text, "
          "to_char(down_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
          "FROM nodes ORDER BY node_id");
        if (!r.ok()) {
          respond(unavailable("the database is unavailable, retry shortly"));
          return;
        }
        auto me = cluster::current_status();
        json nodes = json::array();
        for (size_t i = 0; i < r.rows.size(); ++i) {
          auto id = r.value(i, 0);
          auto by_type = json::parse(r.value(i, 7, "{}"), nullptr, false);
          if (by_type.is_discarded() || !by_type.is_object()) by_type = json::object();
          int64_t sum = 0;
          for (auto& [k, v] : by_type.items()) {
            (void)k;
            if (v.is_number_integer()) sum += v.get<int64_t>();
          }
          bool up = r.value(i, 2) == "up";
          json actors = id == ctx->node_id ? json(live) : up ? json(sum) : json(nullptr);
          nodes.push_back({{"id", id},
                           {"address", r.value(i, 1)},
                           {"status", r.value(i, 2)},
                           {"incarnation", std::stoll(r.value(i, 3, "0"))},
                           {"started_at", r.value(i, 4)},
                           {"last_heartbeat", r.value(i, 5)},
                           {"cluster_address", r.value(i, 6)},
                           {"down_at", r.rows[i][8] ? json(r.value(i, 8)) : json(nullptr)},
                           {"actors", actors},
                           {"actors_by_type", up ? by_type : json::object()},
                           {"self", id == ctx->node_id}});
        }
        respond(json_response(200, json{{"nodes", std::move(nodes)},
                                        {"clustered", me.clustered},
                                        {"epoch", me.epoch},
                                        {"members", me.members}}
                                     .dump()));
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
  table.add(api_route("GET", "/api/v1/admin/actors",
                      "Live actors (?type=, ?node=, ?sort=mailbox|messages|restarts|idle, "
                      "highest first; ?limit=, ?cursor=)",
                      "admin", {{200, "{counts_by_type, total, items, next_cursor}"}}, admin,
                      bind(list_actors)));
  table.add(api_route("GET", "/api/v1/admin/actors/{type}/{id}", "One live actor's state",
                      "admin", {{200, "{type, id, node, state, version, mailbox, restarts}"},
                                {404, "not live"}},
                      admin, bind(inspect_actor)));
  table.add(api_route("POST", "/api/v1/admin/actors/{type}/{id}/passivate",
                      "Passivate a live actor (flush, then stop)", "admin",
                      {{202, "accepted (audited)"}, {404, "not live"}}, admin,
                      control<actors::passivate_atom>(ctx, "passivate")));
  table.add(api_route("POST", "/api/v1/admin/actors/{type}/{id}/kill",
                      "Crash a live actor on purpose; its shard restarts it", "admin",
                      {{202, "accepted (audited)"}, {404, "not live"}}, admin,
                      control<actors::kill_atom>(ctx, "kill")));
  table.add(api_route("GET", "/api/v1/admin/supervisors",
                      "The supervision tree: strategies, children, restart counts", "admin",
                      {{200, "{name, strategy, intensity, period_ms, restarts, children}"}}, admin,
                      bind(supervisors)));
  table.add(api_route("GET", "/api/v1/admin/audit",
                      "What operators did to live actors (passivate, kill): who, what, when, "
                      "through what, with what result; newest first (?limit=, ?cursor=)",
                      "admin", {{200, "{items: [{id, at, user_id, action, target, via, result}], "
                                      "next_cursor}"}},
                      admin, bind(list_audit)));
  table.add(api_route("GET", "/api/v1/admin/journal", "The write-behind journal's figures",
                      "admin", {{200, "{pending, in_flight, last_batch_rows, ...}"}}, admin,
                      bind(journal_stats)));
}

} // namespace gm::gateway
