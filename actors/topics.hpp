// Live events: entities publish what changed to the topic hub (gateway/),
// which fans them out to subscribers. Topics name entities ("wallet:{id}");
// `seq` is assigned where the event is raised (for an entity: its version),
// so subscribers can order events and resume after a gap.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

namespace gm::topics {

/// Entity → hub: `(publish_atom, topic, event, seq, data_json)`.
using publish_atom = caf::atom_constant<caf::atom("t_pub")>;
/// One event as the hub keeps it.
struct event {
  std::string name;
  int64_t seq = 0;
  std::string data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return f(caf::meta::type_name("gm_topic_event"), x.name, x.seq, x.data);
}

/// Subscriber → hub: `(subscribe_atom, topic, caf::actor who, since_seq)` →
/// (int64 current seq, std::vector<event> missed): the events after
/// `since_seq` still in the hub's history (none if since_seq < 0). Live
/// events follow as event_atom messages, after this answer.
using subscribe_atom = caf::atom_constant<caf::atom("t_sub")>;
/// Subscriber → hub: `(unsubscribe_atom, topic, caf::actor who)`.
using unsubscribe_atom = caf::atom_constant<caf::atom("t_unsub")>;
/// One event as a WebSocket sends it, built once by the hub and shared by
/// every subscriber (never copied per subscriber).
using frame_ptr = std::shared_ptr<const std::string>;
/// Hub → subscriber: `(event_atom, topic, seq, frame_ptr)`.
using event_atom = caf::atom_constant<caf::atom("t_event")>;

/// Returns the frame API.md gives an event:
/// `{"event":name,"topic":topic,"seq":seq,"data":data}` (data is JSON).
std::string event_frame(const std::string& topic, const std::string& name, int64_t seq,
                        const std::string& data);

/// Returns the registry name of the hub.
caf::atom_value registry_name();

/// Publishes an event to this node's hub; a no-op if the hub is not running
/// (events are live notifications; the state itself is in PostgreSQL).
void publish(caf::actor_system& sys, std::string topic, std::string event, int64_t seq,
             std::string data);

} // namespace gm::topics

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(gm::topics::frame_ptr)
