// The persistence service actor: owns the PostgreSQL pool and the Redis
// client, applies migrations at start (retrying until PostgreSQL is there),
// keeps this node's row in `nodes` fresh, and answers health questions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

namespace gm::config {
struct settings;
}
namespace gm::cluster {
struct node_info;
}

namespace gm::pg {
class pool;
}

namespace gm::persistence {

struct health {
  bool pg_ok = false;
  std::string pg_error;
  int64_t pg_checked_ms_ago = -1;
  bool migrations_ok = false;
  int schema_version = 0;
  std::string migration_error;
  bool redis_ok = false;
  std::string redis_error;
  int64_t redis_checked_ms_ago = -1;

  /// Returns true when the node can serve requests that need the database.
  bool ready() const noexcept { return pg_ok && migrations_ok; }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, health& x) {
  return f(caf::meta::type_name("gm_persistence_health"), x.pg_ok, x.pg_error,
           x.pg_checked_ms_ago, x.migrations_ok, x.schema_version, x.migration_error,
           x.redis_ok, x.redis_error, x.redis_checked_ms_ago);
}

/// `request(persistence, t, health_atom::value)` → health.
using health_atom = caf::atom_constant<caf::atom("p_health")>;

/// `request(persistence, t, pool_atom::value)` → std::shared_ptr<pg::pool>,
/// the pool of this incarnation of the service (stopped when it stops).
using pool_atom = caf::atom_constant<caf::atom("p_pool")>;

/// Returns the registry name the service runs under.
caf::atom_value registry_name();

/// Returns the running persistence service, or an invalid handle while it
/// is (re)starting. Callers look it up per use and never keep the handle.
caf::actor find(caf::actor_system& sys);

/// Spawns the service (detached: it owns blocking threads) from `parent`.
caf::actor spawn_service(caf::local_actor* parent, const config::settings& cfg,
                         const cluster::node_info& node);

} // namespace gm::persistence

// Local only: a pool never crosses nodes.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<gm::pg::pool>)
