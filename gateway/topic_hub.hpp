// The topic hub: manages the subscriptions of the actors that watch topics
// (WebSocket sessions, the console) in the node's topic store, and sends them
// the events published to their topics. Entities record events in the store
// themselves (actors/topics.hpp); only an event whose topic has subscribers
// comes through the hub.
#pragma once

#include <memory>

#include <caf/fwd.hpp>

namespace gm::topics {
class store;
}

namespace gm::gateway {

/// Spawns the hub (registered as topics::registry_name()) over `events`,
/// which outlives it: a restarted hub watches the subscribers it finds there.
caf::actor spawn_topic_hub(caf::local_actor* parent, std::shared_ptr<topics::store> events);

} // namespace gm::gateway
