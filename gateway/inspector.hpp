// The inspector: publishes the node's life on the admin topic
// `system:inspect` for the console (gateway/console/) and any admin socket.
// Once a second it publishes `node.stats` (live actors and messages per
// second by kind, the journal, WebSockets, HTTP requests and errors per
// second) and what the runtime noted since (common/inspect_feed.hpp:
// actors activated, passivated, crashed, restarted, killed; journal
// errors): each event on its own, or, past 20 in a second, one
// `actor.summary` with counts (crashes, restarts and kills still each on
// their own, up to 20), so a busy node sends the console a bounded stream.
// `node.up` when it starts.
#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "cluster/node_info.hpp"

namespace gm::topics {
class store;
}

namespace gm::gateway {

/// The topic the inspector publishes on.
inline constexpr const char* inspect_topic = "system:inspect";

/// Publishes `event` with JSON `data` on system:inspect (audit records,
/// from the admin routes).
void publish_inspect(caf::actor_system& sys, const std::string& event, std::string data);

/// Spawns the inspector of this node, publishing into `events`.
caf::actor spawn_inspector(caf::local_actor* parent, std::shared_ptr<topics::store> events,
                           cluster::node_info node);

} // namespace gm::gateway
