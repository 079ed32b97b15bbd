// Implements the persistence service actor.
//
// Every health_interval it runs one probe per server, never more than one in
// flight: on PostgreSQL, the migrations until they have succeeded, then a
// SELECT 1 (this node's row in `nodes` is cluster/membership's); on Redis,
// PING. Probe results come back as messages from the pool's
// threads, so the actor itself never blocks on a server.
#include "persistence/service.hpp"

#include <chrono>
#include <memory>

#include <malloc.h>

#include <caf/all.hpp>

#include "cluster/node_info.hpp"
#include "common/log.hpp"
#include "common/registry.hpp"
#include "common/metrics.hpp"
#include "config/config.hpp"
#include "persistence/migrations.hpp"
#include "persistence/pg.hpp"
#include "persistence/redis.hpp"

namespace gm::persistence {
namespace {

using tick_atom = caf::atom_constant<caf::atom("p_tick")>;
using pg_probe_atom = caf::atom_constant<caf::atom("p_pgprobe")>;
using redis_probe_atom = caf::atom_constant<caf::atom("p_rdprobe")>;

using clock = std::chrono::steady_clock;

struct state {
  std::shared_ptr<pg::pool> pool;
  std::unique_ptr<redis::client> redis;
  cluster::node_info node;
  std::chrono::milliseconds interval{1000};
  bool pg_probe_in_flight = false;
  bool redis_probe_in_flight = false;
  health h;
  clock::time_point pg_checked{};
  clock::time_point redis_checked{};
  std::chrono::steady_clock::time_point last_trim{};
  static inline const char* name = "gm.persistence";

  ~state() {
    // (This node's row in `nodes` is cluster/membership's.)
    // Joins the pool's and client's threads; this actor is detached.
    if (pool) pool->stop();
    if (redis) redis->stop();
    if (pool || redis) gm::log::get("persistence")->info("stopped");
  }
};

int64_t ms_since(clock::time_point t) {
  if (t == clock::time_point{}) {
    return -1;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t).count();
}

struct probe_metrics {
  metrics::gauge& pg_up = metrics::global().get_gauge(
    "gigmesh_postgres_up", "1 if the last PostgreSQL probe succeeded");
  metrics::gauge& redis_up = metrics::global().get_gauge(
    "gigmesh_redis_up", "1 if the last Redis probe succeeded");
  metrics::gauge& schema = metrics::global().get_gauge(
    "gigmesh_schema_version", "highest migration applied by this node");
};

probe_metrics& gauges() {
  static probe_metrics m;
  return m;
}

void probe_pg(caf::stateful_actor<state>* self) {
  auto& st = self->state;
  if (st.pg_probe_in_flight) {
    return;
  }
  st.pg_probe_in_flight = true;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  bool migrated = st.h.migrations_ok;
  auto accepted = st.pool->submit([me, migrated](pg::connection& c) {
    int version = 0;
    std::string migration_error;
    bool now_migrated = migrated;
    if (!migrated) {
      auto out = pg::migrate(c, pg::builtin_migrations());
      now_migrated = out.ok;
      version = out.schema_version;
      migration_error = out.error;
    }
    std::string error;
    if (now_migrated) {
      auto r = c.exec("SELECT 1");
      error = r.error;
    } else {
      error = c.connected() ? std::string{} : migration_error;
    }
    caf::anon_send(me, pg_probe_atom::value, error.empty(), error, now_migrated, version,
                   migration_error);
  });
  if (!accepted) {
    st.pg_probe_in_flight = false;
  }
}

void probe_redis(caf::stateful_actor<state>* self) {
  auto& st = self->state;
  if (st.redis_probe_in_flight) {
    return;
  }
  st.redis_probe_in_flight = true;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto accepted = st.redis->command({"PING"}, [me](redis::reply r) {
    caf::anon_send(me, redis_probe_atom::value, r.ok(), r.ok() ? std::string{} : r.str);
  });
  if (!accepted) {
    st.redis_probe_in_flight = false;
  }
}

/// Every few seconds, hands memory that glibc's malloc holds but nobody uses
/// back to the operating system (passivated entities, finished requests), so
/// the node's resident size follows what it really holds. (Release builds
/// allocate with jemalloc, which returns unused pages by itself; this is for
/// builds on glibc's malloc, such as the sanitizer builds.) This thread is ours
/// (a detached actor): the trim never runs on a CAF worker or io thread.
void return_free_memory(state& st) {
  auto now = std::chrono::steady_clock::now();
  if (now - st.last_trim < std::chrono::seconds{5}) return;
  st.last_trim = now;
  malloc_trim(0);
}

caf::behavior service_impl(caf::stateful_actor<state>* self, config::settings cfg,
                           cluster::node_info node) {
  auto& st = self->state;
  auto log = gm::log::get("persistence");
  st.node = std::move(node);
  st.interval = std::chrono::milliseconds{cfg.health_interval_ms};
  st.pool = std::make_shared<pg::pool>(cfg.pg_url, cfg.pg_pool_size,
                                       std::chrono::milliseconds{cfg.pg_connect_timeout_ms});
  redis::endpoint ep{cfg.redis.host, cfg.redis.port, cfg.redis.db, cfg.redis.password};
  st.redis = std::make_unique<redis::client>(ep, std::chrono::milliseconds{1000});
  st.pool->start();
  st.redis->start();
  register_as(self, registry_name());
  log->info("persistence started: pool of {} connections, redis {}:{}", cfg.pg_pool_size,
            cfg.redis.host, cfg.redis.port);
  probe_pg(self);
  probe_redis(self);
  self->delayed_send(self, st.interval, tick_atom::value);
  return {
    [self](tick_atom) {
      probe_pg(self);
      probe_redis(self);
      return_free_memory(self->state);
      self->delayed_send(self, self->state.interval, tick_atom::value);
    },
    [self, log](pg_probe_atom, bool ok, const std::string& error, bool migrated, int version,
                const std::string& migration_error) {
      auto& st = self->state;
      st.pg_probe_in_flight = false;
      st.pg_checked = clock::now();
      if (ok != st.h.pg_ok) {
        if (ok) log->info("PostgreSQL reachable");
        else log->warn("PostgreSQL unreachable: {}", error);
      }
      if (migrated && !st.h.migrations_ok) {
        log->info("migrations applied, schema version {}", version);
        st.h.schema_version = version;
        gauges().schema.set(version);
      }
      if (!migration_error.empty() && migration_error != st.h.migration_error) {
        log->error("migrations failed: {}", migration_error);
      }
      st.h.pg_ok = ok;
      st.h.pg_error = error;
      st.h.migrations_ok = migrated;
      st.h.migration_error = migration_error;
      gauges().pg_up.set(ok ? 1 : 0);
    },
    [self, log](redis_probe_atom, bool ok, const std::string& error) {
      auto& st = self->state;
      st.redis_probe_in_flight = false;
      st.redis_checked = clock::now();
      if (ok != st.h.redis_ok) {
        if (ok) log->info("Redis reachable");
        else log->warn("Redis unreachable: {}", error);
      }
      st.h.redis_ok = ok;
      st.h.redis_error = error;
      gauges().redis_up.set(ok ? 1 : 0);
    },
    [self](pool_atom) { return self->state.pool; },
    [self](health_atom) {
      auto& st = self->state;
      health h = st.h;
      h.pg_checked_ms_ago = ms_since(st.pg_checked);
      h.redis_checked_ms_ago = ms_since(st.redis_checked);
      // A probe that has not come back in time counts as a failure: a hung
      // server must not look healthy.
      auto stale = 3 * st.interval.count() + 5000;
      if (h.pg_checked_ms_ago < 0 || h.pg_checked_ms_ago > stale) {
        h.pg_ok = false;
        if (h.pg_error.empty()) h.pg_error = "no recent probe";
      }
      if (h.redis_checked_ms_ago < 0 || h.redis_checked_ms_ago > stale) {
        h.redis_ok = false;
        if (h.redis_error.empty()) h.redis_error = "no recent probe";
      }
      return h;
    },
  };
}

} // namespace

caf::atom_value registry_name() {
  return caf::atom("persist");
}

caf::actor find(caf::actor_system& sys) {
  return find_registered(sys, registry_name());
}

caf::actor spawn_service(caf::local_actor* parent, const config::settings& cfg,
                         const cluster::node_info& node) {
  return parent->spawn<caf::detached>(service_impl, cfg, node);
}

} // namespace gm::persistence
