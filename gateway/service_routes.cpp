// Implements the service routes. /readyz asks the persistence actor through
// the actor bridge; the others are cheap and answer on the io thread.
#include "gateway/service_routes.hpp"

#include <chrono>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "cluster/membership.hpp"
#include "common/metrics.hpp"
#include "gateway/console_assets.hpp"
#include "persistence/journal.hpp"
#include "persistence/service.hpp"

namespace gm::gateway {
namespace {

nlohmann::json checks_json(const persistence::health& h) {
  return {
    {"postgres", {{"ok", h.pg_ok}, {"error", h.pg_error}, {"checked_ms_ago", h.pg_checked_ms_ago}}},
    {"migrations",
     {{"ok", h.migrations_ok}, {"schema_version", h.schema_version}, {"error", h.migration_error}}},
    {"redis",
     {{"ok", h.redis_ok}, {"error", h.redis_error}, {"checked_ms_ago", h.redis_checked_ms_ago}}},
  };
}

response not_ready(const std::string& node_id, const std::string& detail,
                   nlohmann::json checks) {
  auto r = problem(503, "not-ready", "Service Unavailable", detail);
  auto doc = nlohmann::json::parse(r.body);
  doc["node"] = node_id;
  doc["checks"] = std::move(checks);
  r.body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

/// How long the journal may fail to write its batch while PostgreSQL
/// answers probes before the node stops calling itself ready: a batch that
/// PostgreSQL keeps refusing holds every durable write behind it.
constexpr int64_t journal_failing_limit_ms = 5000;

/// Adds the journal's check to `checks` and answers: ready unless the
/// journal has been failing to write for journal_failing_limit_ms.
void with_journal(caf::event_based_actor* self, const service_context& ctx,
                  const std::string& node_id, nlohmann::json checks, respond_fn respond) {
  auto j = journal::find(self->system());
  if (!j) {
    checks["journal"] = {{"ok", false}, {"error", "the journal is restarting"}};
    respond(not_ready(node_id, "the journal is restarting", checks));
    return;
  }
  self->request(j, ctx.request_timeout, journal::stats_atom::value)
    .then(
      [node_id, respond, checks](journal::stats& s) mutable {
        // Journal writes wait until the node joined (they are fenced by
        // its row); its failing time then says nothing of PostgreSQL.
        auto c = cluster::current_status();
        bool joined = c.joined && (!c.clustered || c.members > 0);
        checks["cluster"] = {{"ok", joined},
                             {"joined", joined},
                             {"clustered", c.clustered},
                             {"members", c.members},
                             {"epoch", c.epoch},
                             {"heartbeat_ms_ago", c.heartbeat_ms_ago}};
        if (!joined) {
          respond(not_ready(node_id, "the node has not joined the cluster yet", checks));
          return;
        }
        bool ok = s.failing_ms < journal_failing_limit_ms;
        checks["journal"] = {{"ok", ok},
                             {"pending", s.pending},
                             {"in_flight", s.in_flight},
                             {"failing_ms", s.failing_ms},
                             {"error", s.last_error},
                             // Rows refused for good fail only their entity:
                             // shown, but the node stays ready.
                             {"refused_rows", s.refused_rows},
                             {"last_refused", s.last_refused},
                             {"stale_rows", s.stale_rows}};
        if (ok) {
          nlohmann::json doc = {{"status", "ready"}, {"node", node_id}, {"checks", checks}};
          respond(json_response(200, doc.dump(-1, ' ', false,
                                              nlohmann::json::error_handler_t::replace)));
          return;
        }
        respond(not_ready(node_id,
                          "the journal has failed to write for " +
                            std::to_string(s.failing_ms) + " ms: " + s.last_error,
                          checks));
      },
      [node_id, respond, checks](caf::error&) mutable {
        checks["journal"] = {{"ok", false}, {"error", "the journal did not answer"}};
        respond(not_ready(node_id, "the journal did not answer", checks));
      });
}

void readyz(const service_context& ctx, caf::event_based_actor* self, request&,
            respond_fn respond) {
  auto persist = persistence::find(self->system());
  if (!persist) {
    respond(not_ready(ctx.node_id, "persistence is not running", nlohmann::json::object()));
    return;
  }
  auto node_id = ctx.node_id;
  self->request(persist, ctx.request_timeout, persistence::health_atom::value)
    .then(
      [self, respond, node_id, ctx](const persistence::health& h) {
        auto checks = checks_json(h);
        if (ctx.limiter_mode) {
          checks["rate_limiter"] = {{"mode", ctx.limiter_mode()}};
        }
        if (!h.ready()) {
          std::string why = !h.pg_ok ? "PostgreSQL unreachable: " + h.pg_error
                                     : "migrations not applied: " + h.migration_error;
          respond(not_ready(node_id, why, checks));
          return;
        }
        with_journal(self, ctx, node_id, std::move(checks), respond);
      },
      [respond, node_id, self](const caf::error& e) {
        respond(not_ready(node_id, "persistence did not answer: " + self->system().render(e),
                          nlohmann::json::object()));
      });
}

} // namespace

void add_service_routes(route_table& table, const service_context& ctx) {
  table.add(io_route("GET", "/healthz", "Liveness: the node's process is serving", "service",
                     {{200, "alive"}}, [](request&, respond_fn respond) {
                       respond(json_response(200, R"({"status":"ok"})"));
                     }));
  table.add(actor_route(
    "GET", "/readyz", "Readiness: PostgreSQL reachable, migrations applied, the journal writing (details per check)",
    "service", {{200, "ready"}, {503, "not ready"}},
    [ctx](caf::event_based_actor* self, request& rq, respond_fn respond) {
      readyz(ctx, self, rq, std::move(respond));
    }));
  table.add(io_route("GET", "/metrics", "Prometheus metrics in text format 0.0.4", "service",
                     {{200, "metrics"}}, [](request&, respond_fn respond) {
                       response r;
                       r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                       r.body = metrics::global().render();
                       respond(std::move(r));
                     }));
  // The inspection console: one page and its script and style, as they are
  // in console/. It signs in through the API; nothing here needs a token.
  for (auto& a : console_assets()) {
    std::string path = std::string{"/console"} +
                       (std::string{a.name} == "index.html" ? "" : std::string{"/"} + a.name);
    table.add(io_route("GET", path,
                       std::string{"The inspection console: "} + a.name + " (admins sign in on it)",
                       "service", {{200, a.name}}, [a](request&, respond_fn respond) {
                         response r;
                         r.content_type = a.content_type;
                         r.body = a.body;
                         r.headers.emplace_back("Cache-Control", "no-cache");
                         r.headers.emplace_back(
                           "Content-Security-Policy",
                           "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
                           "frame-ancestors 'none'");
                         r.headers.emplace_back("X-Content-Type-Options", "nosniff");
                         respond(std::move(r));
                       }));
  }
  auto doc = ctx.openapi;
  table.add(io_route("GET", "/api/openapi.json", "This OpenAPI document", "service",
                     {{200, "OpenAPI 3 document"}},
                     [doc](request&, respond_fn respond) { respond(json_response(200, *doc)); }));
}

} // namespace gm::gateway
