// The one list of entity kinds this node runs. main starts a shard for each,
// the admin routes list and inspect them, and WebSocket topic authorization
// asks a kind's own rule. Adding a kind is its folder plus one line in
// kinds.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/entity.hpp"

namespace gm::journal {
class gate;
}

namespace gm::topics {
class store;
struct event;
}

namespace gm::actors {

/// What kinds are built from: the node's shared services and settings.
struct kind_context {
  std::shared_ptr<journal::gate> gate;
  std::shared_ptr<topics::store> events;
  std::string currency = "KES";
  // Money (config: max_balance, saga_step_timeout_ms, saga_sweep_interval_ms).
  int64_t max_balance = INT64_MAX;
  std::chrono::milliseconds saga_step_timeout{10000};
  std::chrono::milliseconds saga_sweep_interval{10000};
  // Savings circles (config circle_day_ms): the length of a day for due dates.
  int64_t circle_day_ms = 86400000;
  // Chat rooms (config chat_max_text): the longest message, in characters.
  size_t chat_max_text = 4000;
  // Gig contracts (config contract_auto_release_ms): how long after
  // delivery the escrow is released if the client does not answer.
  int64_t contract_auto_release_ms = 14LL * 86400000;
  // Delivery tasks (config dispatch_*): how long an offer waits for its
  // rider, offers before a task is unassigned, the search radius.
  int64_t dispatch_offer_timeout_ms = 30000;
  int32_t dispatch_max_offers = 5;
  double dispatch_radius_m = 5000;
};

/// Who subscribes to a topic.
struct topic_caller {
  std::string user_id;
  std::string role;
};

/// Decides, on the asking actor `self`, whether `who` may see the topic of
/// entity `id`: `done(0, "")` yes, else `done(status, why)` (403, 404, 503).
using topic_rule = std::function<void(caf::event_based_actor* self, const topic_caller& who,
                                      const std::string& id,
                                      std::function<void(int, std::string)> done)>;

/// For topics whose events are kept in PostgreSQL (chat messages): reads,
/// on the asking actor `self`, the events of entity `id`'s topic with
/// `after` < seq <= `upto`, oldest first, at most `limit`; then runs
/// `done(events, "")`, or `done({}, why)` if it could not. A subscriber
/// that resumes with a since_seq older than the topic store's memory
/// gets the rest from here (gateway/ws.cpp).
using history_fn = std::function<void(
  caf::event_based_actor* self, const std::string& id, int64_t after, int64_t upto, int64_t limit,
  std::function<void(std::vector<topics::event>&, const std::string&)> done)>;

/// One kind: how to build it for its shard, and its topic.
struct kind_registration {
  std::string type;   // entity_kind::type, the admin API's `{type}`
  std::string topic;  // its topics' prefix ("wallet" for `wallet:{id}`); empty: none
  topic_rule may_see;
  history_fn history;  // optional
  std::function<entity_kind(const kind_context&)> make;
  /// Announces the kind's command types to the actor system (before it
  /// starts), so that commands can cross nodes (CAF needs each type by name).
  std::function<void(caf::actor_system_config&)> announce;
};

/// Announces every kind's command types to `cfg`.
void announce_commands(caf::actor_system_config& cfg);

/// Returns every kind this node runs, in start order.
const std::vector<kind_registration>& kinds();

/// Returns the kind whose topics are `prefix:…`, or nullptr.
const kind_registration* kind_of_topic(const std::string& prefix);

/// Returns true if this node runs entities of `type`.
bool runs_kind(const std::string& type);

} // namespace gm::actors
