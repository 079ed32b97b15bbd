// Live events: entities publish what changed to the topic hub (gateway/),
// which fans them out to subscribers. Topics name entities ("wallet:{id}");
// `seq` is assigned where the event is raised (for an entity: its version),
// so subscribers can order events and resume after a gap.
#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

namespace gm::topics {

/// Entity → hub: `(publish_atom, topic, event, seq, data_json)`.
using publish_atom = caf::atom_constant<caf::atom("t_pub")>;
/// Subscriber → hub: `(subscribe_atom, topic, caf::actor who, since_seq)` →
/// int64 current seq; events after `since_seq` still in the hub's history
/// are sent at once (since_seq < 0: none).
using subscribe_atom = caf::atom_constant<caf::atom("t_sub")>;
/// Subscriber → hub: `(unsubscribe_atom, topic, caf::actor who)`.
using unsubscribe_atom = caf::atom_constant<caf::atom("t_unsub")>;
/// Hub → subscriber: `(event_atom, topic, event, seq, data_json)`.
using event_atom = caf::atom_constant<caf::atom("t_event")>;

/// Returns the registry name of the hub.
caf::atom_value registry_name();

/// Publishes an event to this node's hub; a no-op if the hub is not running
/// (events are live notifications; the state itself is in PostgreSQL).
void publish(caf::actor_system& sys, std::string topic, std::string event, int64_t seq,
             std::string data);

} // namespace gm::topics
