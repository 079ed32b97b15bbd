// The topic hub: fans events that entities publish out to the actors that
// subscribed to their topics (WebSocket sessions, the console), and keeps a
// short history per topic so a subscriber can resume after a gap.
#pragma once

#include <cstddef>

#include <caf/fwd.hpp>

namespace gm::gateway {

struct hub_options {
  size_t history_per_topic = 64;  // events kept per topic for since_seq
  size_t max_topics = 100000;     // topics with history; the idle ones go first
};

/// Spawns the hub (registered as topics::registry_name()).
caf::actor spawn_topic_hub(caf::local_actor* parent, hub_options opts);

} // namespace gm::gateway
