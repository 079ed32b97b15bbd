// Implements the gateway service actor and its bridge workers.
#include "gateway/service.hpp"

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <memory>
#include <unordered_map>

#include <strings.h>

#include <algorithm>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "cluster/node_info.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "config/config.hpp"
#include "gateway/accounts.hpp"
#include "gateway/api_context.hpp"
#include "gateway/blocking_pool.hpp"
#include "gateway/crypto.hpp"
#include "gateway/password.hpp"
#include "gateway/rate_limit.hpp"
#include "gateway/server.hpp"
#include "gateway/service_routes.hpp"
#include "gateway/validation.hpp"
#include "gateway/ws.hpp"
#include "persistence/pg.hpp"
#include "persistence/service.hpp"

namespace gm::gateway {
namespace {

/// One request travelling from an io thread to a gateway actor. Carries a
/// callback, so it never leaves this node.
struct call {
  const route* r = nullptr;
  request rq;
  respond_fn respond;
  std::string auth_error;  // why the token was refused, if it was
};
using call_ptr = std::shared_ptr<call>;

} // namespace
} // namespace gm::gateway

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(gm::gateway::call_ptr)

namespace gm::gateway {
namespace {

using call_atom = caf::atom_constant<caf::atom("gw_call")>;
using seed_atom = caf::atom_constant<caf::atom("gw_seed")>;
using seeded_atom = caf::atom_constant<caf::atom("gw_seeded")>;

/// Tokens this gateway actor has verified, with their claims: a client sends
/// the same token with every request for 15 minutes, and checking its
/// signature and parsing its JSON each time cost more than many handlers.
/// Only valid tokens are kept; expiry is checked on every use. Bounded: when
/// full it starts over.
struct token_cache {
  static constexpr size_t limit = 4096;
  std::unordered_map<std::string, jwt::claims> valid;
};

/// Sets the caller from a Bearer token, or records why there is none.
void authenticate(const api_context& ctx, call& c, token_cache& cache) {
  auto header = c.rq.header("Authorization");
  if (header.empty()) {
    c.auth_error = "missing access token";
    return;
  }
  // Two credentials: which one the client meant is anyone's guess.
  if (c.rq.header_count("Authorization") > 1) {
    c.auth_error = "send one Authorization header, not several";
    return;
  }
  if (header.size() < 7 || strncasecmp(header.c_str(), "Bearer ", 7) != 0) {
    c.auth_error = "the Authorization header must be 'Bearer <token>'";
    return;
  }
  auto token = header.substr(7);
  auto now = unix_seconds();
  auto hit = cache.valid.find(token);
  if (hit != cache.valid.end()) {
    if (now < hit->second.exp) {
      c.rq.user_id = hit->second.sub;
      c.rq.role = hit->second.role;
      return;
    }
    cache.valid.erase(hit);  // expired since: verify says why
  }
  jwt::errc why{};
  auto claims = ctx.tokens.verify(token, now, &why);
  if (!claims) {
    c.auth_error = std::string{"invalid access token: "} + jwt::to_string(why);
    return;
  }
  c.rq.user_id = claims->sub;
  c.rq.role = claims->role;
  if (cache.valid.size() >= token_cache::limit) cache.valid.clear();
  cache.valid.emplace(std::move(token), std::move(*claims));
}

bool is_json_content(const std::string& content_type) {
  auto semi = content_type.find(';');
  auto base = content_type.substr(0, semi);
  while (!base.empty() && base.back() == ' ') base.pop_back();
  return strcasecmp(base.c_str(), "application/json") == 0;
}

/// Checks what the route declares (token, role, body), then runs it.
void admit(caf::event_based_actor* self, call& c) {
  const auto& r = *c.r;
  if (r.authenticated && c.rq.user_id.empty()) {
    auto p = problem(401, "unauthorized", "Unauthorized", c.auth_error);
    p.headers.emplace_back("WWW-Authenticate", "Bearer");
    c.respond(std::move(p));
    return;
  }
  if (!r.roles.empty() &&
      std::find(r.roles.begin(), r.roles.end(), c.rq.role) == r.roles.end()) {
    c.respond(problem(403, "forbidden", "Forbidden",
                      "role " + c.rq.role + " may not " + r.method + " " + r.pattern));
    return;
  }
  // A body whose every field is optional may be left out (no body, no
  // Content-Type): the handler sees an empty object (a delivery without a
  // note).
  bool omitted = r.body && c.rq.body.empty() && c.rq.header("Content-Type").empty() &&
                 std::none_of(r.body->fields.begin(), r.body->fields.end(),
                              [](const field_rule& f) { return f.required; });
  if (omitted) {
    c.rq.json = std::make_shared<nlohmann::json>(nlohmann::json::object());
  } else if (r.body) {
    if (!is_json_content(c.rq.header("Content-Type"))) {
      c.respond(problem(415, "unsupported-media-type", "Unsupported Media Type",
                        "the body must be application/json"));
      return;
    }
    response bad;
    auto doc = validate_body(c.rq, *r.body, bad);
    if (!doc) {
      c.respond(std::move(bad));
      return;
    }
    c.rq.json = std::make_shared<nlohmann::json>(std::move(*doc));
  }
  try {
    r.on_actor(self, c.rq, c.respond);
  } catch (const std::exception& e) {
    gm::log::get("gateway")->error("handler for {} threw: {}", r.pattern, e.what());
    c.respond(problem(500, "internal", "Internal Server Error", "the request failed"));
  }
}

caf::behavior worker_impl(caf::stateful_actor<token_cache>* self, api_context_ptr ctx) {
  return {
    [self, ctx](call_atom, const call_ptr& c) {
      gm::log::request_scope scope{c->rq.request_id};
      authenticate(*ctx, *c, self->state);
      if (!c->r->rate_limited) {
        admit(self, *c);
        return;
      }
      auto d = ctx->limiter->check(c->rq.remote_ip, c->rq.user_id);
      if (!d.allowed) {
        auto p = problem(429, "rate-limited", "Too Many Requests",
                         "rate limit reached; retry in " + std::to_string(d.retry_after_s) + " s");
        p.headers.emplace_back("Retry-After", std::to_string(d.retry_after_s));
        c->respond(std::move(p));
        return;
      }
      admit(self, *c);
    },
  };
}

/// Returns the token codec the configuration asks for.
jwt::codec make_codec(const config::settings& cfg) {
  auto read = [](const std::string& path) {
    std::ifstream in{path};
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
  };
  if (cfg.jwt_algorithm == "RS256") {
    return jwt::codec::rs256(read(cfg.jwt_private_key_file), read(cfg.jwt_public_key_file));
  }
  if (cfg.jwt_secret.empty()) {
    gm::log::get("gateway")->warn(
      "no jwt_secret (dev mode): using a random one; tokens do not survive a restart");
    return jwt::codec::hs256(crypto::random_bytes(32));
  }
  return jwt::codec::hs256(cfg.jwt_secret);
}

struct state {
  std::shared_ptr<api_context> api;
  route_table routes;
  std::vector<caf::actor> workers;
  std::unique_ptr<server> srv;
  std::chrono::milliseconds drain_timeout{10000};
  static inline const char* name = "gm.gateway";

  ~state() {
    if (srv) srv->stop();  // detached actor: joining io threads is fine here
    if (api && api->kdf) api->kdf->stop();
    if (api && api->limiter) api->limiter->stop();
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

  auto api = std::make_shared<api_context>();
  api->tokens = make_codec(cfg);
  api->access_ttl_s = cfg.access_token_ttl_s;
  api->refresh_ttl_s = cfg.refresh_token_ttl_s;
  api->request_timeout = std::chrono::milliseconds{cfg.request_timeout_ms};
  api->node_id = node.id;
  api->kdf = std::make_shared<blocking_pool>("kdf", cfg.kdf_threads, cfg.kdf_queue_limit, 10);
  redis::endpoint ep{cfg.redis.host, cfg.redis.port, cfg.redis.db, cfg.redis.password};
  api->limiter = std::make_shared<rate_limiter>(ep, cfg.rate_limit_ip_per_min,
                                                cfg.rate_limit_user_per_min);
  api->dummy_hash = password::hash(crypto::base64url_encode(crypto::random_bytes(24)));
  st.api = api;

  service_context ctx;
  ctx.node_id = node.id;
  ctx.request_timeout = std::chrono::milliseconds{cfg.request_timeout_ms};
  auto limiter = api->limiter;
  ctx.limiter_mode = [limiter] { return std::string{limiter->mode()}; };
  add_service_routes(st.routes, ctx);
  add_account_routes(st.routes, api);
  add_wallet_routes(st.routes, api);
  add_circle_routes(st.routes, api);
  add_gig_routes(st.routes, api);
  add_room_routes(st.routes, api, static_cast<size_t>(cfg.chat_max_text));
  add_rider_routes(st.routes, api);
  add_task_routes(st.routes, api, cfg.max_balance);
  add_admin_routes(st.routes, api);
  *ctx.openapi = st.routes.openapi(GIGMESH_VERSION);

  for (int i = 0; i < cfg.gateway_workers; ++i) {
    st.workers.push_back(self->spawn<caf::linked>(worker_impl, api_context_ptr{api}));
  }
  auto workers = st.workers;
  auto next = std::make_shared<std::atomic<size_t>>(0);
  actor_dispatch dispatch = [workers, next](const route& r, request rq, respond_fn respond) {
    auto i = next->fetch_add(1, std::memory_order_relaxed) % workers.size();
    auto c = std::make_shared<call>(call{&r, std::move(rq), std::move(respond), {}});
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
  opts.ws_send_queue = static_cast<size_t>(cfg.ws_send_queue);
  opts.ws_idle_timeout = std::chrono::milliseconds{cfg.ws_idle_timeout_ms};
  opts.ws_message_max = static_cast<size_t>(cfg.ws_message_max);
  opts.answer_timeout = std::chrono::milliseconds{cfg.request_timeout_ms};
  st.srv = std::make_unique<server>(opts, st.routes, dispatch,
                                    make_ws_hooks(self->system(), api));
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
  if (!cfg.admin_phone.empty()) {
    if (!is_e164(cfg.admin_phone)) {
      log->error("admin_phone is not an E.164 number: no admin account is created");
    } else {
      self->send(self, seed_atom::value);
    }
  }
  auto admin_phone = cfg.admin_phone;
  auto admin_password = cfg.admin_password;
  return {
    // Creates the configured admin account once PostgreSQL is there.
    [self, admin_phone, admin_password](seed_atom) {
      auto retry = [self] {
        self->delayed_send(self, std::chrono::seconds{1}, seed_atom::value);
      };
      auto persist = persistence::find(self->system());
      if (!persist) {
        retry();
        return;
      }
      self->request(persist, std::chrono::seconds{5}, persistence::pool_atom::value)
        .then(
          [self, admin_phone, admin_password](const std::shared_ptr<pg::pool>& pool) {
            caf::actor me = caf::actor_cast<caf::actor>(self);
            auto ok = pool->submit([me, admin_phone, admin_password](pg::connection& c) {
              std::string error;
              bool created = accounts::ensure_admin(c, admin_phone,
                                                    password::hash(admin_password), error);
              caf::anon_send(me, seeded_atom::value, created, error);
            });
            if (!ok) {
              self->delayed_send(self, std::chrono::seconds{1}, seed_atom::value);
            }
          },
          [retry](const caf::error&) { retry(); });
    },
    [self](seeded_atom, bool created, const std::string& error) {
      auto log = gm::log::get("gateway");
      if (!error.empty()) {
        // Usually: migrations not applied yet. Try again shortly.
        log->debug("admin account not created yet: {}", error);
        self->delayed_send(self, std::chrono::seconds{1}, seed_atom::value);
      } else if (created) {
        log->info("admin account created from configuration");
      }
    },
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
