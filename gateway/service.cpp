// Implements the gateway service actor and its bridge workers.
#include "gateway/service.hpp"

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>

#include <caf/all.hpp>

#include "cluster/node_info.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "config/config.hpp"
#include "gateway/server.hpp"
#include "gateway/service_routes.hpp"

namespace gm::gateway {
namespace {

/// One request travelling from an io thread to a gateway actor. Carries a
/// callback, so it never leaves this node.
struct call {
  const route* r = nullptr;
  request rq;
  respond_fn respond;
};
using call_ptr = std::shared_ptr<call>;

} // namespace
} // namespace gm::gateway

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(gm::gateway::call_ptr)

namespace gm::gateway {
namespace {

using call_atom = caf::atom_constant<caf::atom("gw_call")>;

caf::behavior worker_impl(caf::event_based_actor* self) {
  return {
    [self](call_atom, const call_ptr& c) {
      gm::log::request_scope scope{c->rq.request_id};
      try {
        c->r->on_actor(self, c->rq, c->respond);
      } catch (const std::exception& e) {
        gm::log::get("gateway")->error("handler for {} threw: {}", c->r->pattern, e.what());
        c->respond(problem(500, "internal", "Internal Server Error", "the request failed"));
      }
    },
  };
}

struct state {
  route_table routes;
  std::vector<caf::actor> workers;
  std::unique_ptr<server> srv;
  std::chrono::milliseconds drain_timeout{10000};
  static inline const char* name = "gm.gateway";

  ~state() {
    if (srv) srv->stop();  // detached actor: joining io threads is fine here
  }
};

void write_port_file(const std::string& path, uint16_t port) {
  auto tmp = path + ".tmp";
  {
    std::ofstream out{tmp};
    out << port << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

caf::behavior service_impl(caf::stateful_actor<state>* self, config::settings cfg,
                           cluster::node_info node) {
  auto& st = self->state;
  auto log = gm::log::get("gateway");
  st.drain_timeout = std::chrono::milliseconds{cfg.http_drain_timeout_ms};

  service_context ctx;
  ctx.node_id = node.id;
  ctx.request_timeout = std::chrono::milliseconds{cfg.request_timeout_ms};
  add_service_routes(st.routes, ctx);
  *ctx.openapi = st.routes.openapi(GIGMESH_VERSION);

  for (int i = 0; i < cfg.gateway_workers; ++i) {
    st.workers.push_back(self->spawn<caf::linked>(worker_impl));
  }
  auto workers = st.workers;
  auto next = std::make_shared<std::atomic<size_t>>(0);
  actor_dispatch dispatch = [workers, next](const route& r, request rq, respond_fn respond) {
    auto i = next->fetch_add(1, std::memory_order_relaxed) % workers.size();
    auto c = std::make_shared<call>(call{&r, std::move(rq), std::move(respond)});
    caf::anon_send(workers[i], call_atom::value, std::move(c));
  };

  server_options opts;
  opts.host = cfg.http_host;
  opts.port = cfg.http_port;
  opts.threads = cfg.http_threads;
  opts.body_limit = static_cast<uint64_t>(cfg.http_body_limit);
  opts.header_limit = static_cast<uint32_t>(cfg.http_header_limit);
  opts.read_timeout = std::chrono::milliseconds{cfg.http_read_timeout_ms};
  opts.max_pipeline = static_cast<size_t>(cfg.http_max_pipeline);
  st.srv = std::make_unique<server>(opts, st.routes, dispatch);
  uint16_t port = 0;
  try {
    port = st.srv->start();
  } catch (const std::exception& e) {
    log->error("{}", e.what());
    throw;  // the supervisor sees a failed start and applies its strategy
  }
  if (!cfg.port_file.empty()) {
    write_port_file(cfg.port_file, port);
  }
  log->info("listening on {}:{} ({} io threads, {} gateway actors)", cfg.http_host, port,
            cfg.http_threads, cfg.gateway_workers);

  self->set_exit_handler([self, log](caf::exit_msg& em) {
    auto& st = self->state;
    log->info("stopping: no new connections, draining {} in-flight requests",
              st.srv->inflight());
    st.srv->stop_accepting();
    if (!st.srv->drain(st.drain_timeout)) {
      log->warn("drain timed out with {} requests in flight", st.srv->inflight());
    }
    st.srv->stop();
    log->info("stopped");
    self->quit(em.reason);
  });
  return {
    // Returns the bound port and the requests in flight (for inspection).
    [self, port](caf::get_atom) {
      return caf::make_message(port, self->state.srv->inflight());
    },
  };
}

} // namespace

caf::actor spawn_service(caf::local_actor* parent, const config::settings& cfg,
                         const cluster::node_info& node) {
  return parent->spawn<caf::detached>(service_impl, cfg, node);
}

} // namespace gm::gateway
