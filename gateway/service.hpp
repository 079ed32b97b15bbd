// The gateway service actor: owns the HTTP server and the gateway actors that
// bridge requests from Beast's io threads into CAF. On exit it stops
// accepting, lets in-flight requests finish, then closes every connection.
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace gm::config {
struct settings;
}
namespace gm::cluster {
struct node_info;
}

namespace gm::gateway {

/// Spawns the gateway (detached: its stop blocks while draining) from `parent`.
caf::actor spawn_service(caf::local_actor* parent, const config::settings& cfg,
                         const cluster::node_info& node);

} // namespace gm::gateway
