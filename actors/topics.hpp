// Live events: entities publish what changed to the topic store, which keeps
// each topic's latest seq, a short history and its subscribers; the topic hub
// (gateway/) manages the subscriptions and fans events out to subscribers.
// Topics name entities ("wallet:{id}"); `seq` is assigned where the event is
// raised (for an entity: its version), so subscribers can order events and
// resume after a gap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/meta/type_name.hpp>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

namespace gm::topics {

/// Publisher → hub, only for a topic that has subscribers:
/// `(deliver_atom, topic, event, seq, data_json, std::vector<caf::actor>)`,
/// the subscribers the store held when the event was recorded.
using deliver_atom = caf::atom_constant<caf::atom("t_deliver")>;
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

/// Each topic's latest seq, its last events and its subscribers, shared by
/// the entities that publish and the hub that manages subscriptions. One per
/// node; it outlives hub restarts. Publishing is a call, not a message to
/// the hub: every change of every entity publishes, almost always to a topic
/// nobody watches, and a message per event meant a mailbox and a resume of
/// the hub for nothing (docs/departures.md). The topics are split over
/// stripes, each behind its own mutex, held only for the map and history
/// work, never while sending.
class store {
public:
  struct options {
    size_t history_per_topic = 64;  // events kept per topic for since_seq
    size_t max_topics = 100000;     // topics with history; the idle ones go first
  };

  explicit store(options opts);
  store() : store(options{}) {}
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// Records an event unless it repeats or comes out of order (`seq` not
  /// above the topic's); returns whether it was recorded, and fills `to`
  /// with the topic's subscribers then (empty almost always). Moves `data`
  /// into the history if `to` is empty, copies it (leaving it to the caller,
  /// for the subscribers) if not.
  bool record(const std::string& topic, const std::string& event, int64_t seq,
              std::string& data, std::vector<caf::actor>& to);

  /// Raises `topic`'s current seq to `seq` without an event: an entity
  /// whose events are kept elsewhere (a room's messages) says where its
  /// topic stands when it activates, so that a subscriber learns the
  /// current seq, and that older events must come from that store.
  void advance(const std::string& topic, int64_t seq);

  /// Adds `who` to `topic`'s subscribers; returns the topic's current seq
  /// and fills `missed` with the events after `since` still held (none if
  /// `since` < 0).
  int64_t subscribe(const std::string& topic, const caf::actor& who, int64_t since,
                    std::vector<event>& missed);

  /// Removes the subscriber at `who` from `topic`.
  void unsubscribe(const std::string& topic, const caf::actor_addr& who);

  /// Returns every subscriber with its topics (for a restarted hub, which
  /// must watch them again).
  std::vector<std::pair<caf::actor, std::vector<std::string>>> subscribers() const;

  /// Returns the number of topics held.
  size_t topic_count() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Publishes an event: records it in `s` and, if the topic has subscribers,
/// hands it to the node's hub to send them (through the hub, so that a
/// subscriber gets its subscription's answer before the events after it).
/// A no-op if `s` is null (events are live notifications; the state itself
/// is in PostgreSQL).
void publish(caf::actor_system& sys, store* s, const std::string& topic, const char* event,
             int64_t seq, std::string data);

/// In a cluster, hands every event recorded on this node to the other
/// nodes, once per node (cluster/ installs it; without it events stay on
/// this node).
using forward_fn = void (*)(const std::string& topic, const std::string& event, int64_t seq,
                            const std::string& data);
void set_forwarder(forward_fn f);

/// Records and delivers an event that another node raised: like publish(),
/// without forwarding it again.
void publish_from_peer(caf::actor_system& sys, store* s, const std::string& topic,
                       std::string event, int64_t seq, std::string data);

/// Publishes `notification.new` with `data` on `user:{user_id}`. Any entity
/// may notify any user, so the seq is not one entity's version: it is the
/// node's wall clock in microseconds, kept rising (one notification per
/// microsecond at most per node).
void notify(caf::actor_system& sys, store* s, const std::string& user_id, std::string data);

/// Returns the next seq for a topic that several entities publish on
/// (`user:{id}`, and `task:{id}`, which carries its rider's locations too):
/// the node's wall clock in microseconds, kept rising.
int64_t clock_seq();

} // namespace gm::topics

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(gm::topics::frame_ptr)
