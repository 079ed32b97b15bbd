// Implements the topic hub.
#include "gateway/topic_hub.hpp"

#include <unordered_map>
#include <unordered_set>

#include <caf/all.hpp>

#include "actors/topics.hpp"
#include "common/metrics.hpp"
#include "common/registry.hpp"

namespace gm::gateway {
namespace {

struct state {
  std::shared_ptr<topics::store> events;
  // subscriber → its topics, to clean up when it goes down
  std::unordered_map<caf::actor_addr, std::unordered_set<std::string>> by_subscriber;
  metrics::counter* delivered = nullptr;
  static inline const char* name = "gm.topic_hub";
};

using hub_actor = caf::stateful_actor<state>;

void watch(hub_actor* self, const caf::actor& who, const std::string& topic) {
  auto& mine = self->state.by_subscriber[who.address()];
  if (mine.empty()) self->monitor(who);
  mine.insert(topic);
}

caf::behavior hub_impl(hub_actor* self, std::shared_ptr<topics::store> events) {
  auto& st = self->state;
  st.events = std::move(events);
  st.delivered = &metrics::global().get_counter("gigmesh_events_delivered_total",
                                                "events sent to subscribers");
  // A hub restarted after a crash: its subscribers are still in the store.
  for (auto& [who, names] : st.events->subscribers()) {
    for (auto& name : names) watch(self, who, name);
  }
  register_as(self, topics::registry_name());
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto it = st.by_subscriber.find(dm.source);
    if (it == st.by_subscriber.end()) return;
    for (auto& name : it->second) st.events->unsubscribe(name, dm.source);
    st.by_subscriber.erase(it);
  });
  return {
    [self](topics::deliver_atom, const std::string& name, const std::string& ev, int64_t seq,
           const std::string& data, const std::vector<caf::actor>& to) {
      auto frame = std::make_shared<const std::string>(topics::event_frame(name, ev, seq, data));
      auto msg = caf::make_message(topics::event_atom::value, name, seq, std::move(frame));
      for (auto& s : to) self->send(s, msg);
      self->state.delivered->inc(to.size());
    },
    [self](topics::subscribe_atom, const std::string& name, const caf::actor& who,
           int64_t since) -> caf::result<int64_t, std::vector<topics::event>> {
      std::vector<topics::event> missed;
      auto seq = self->state.events->subscribe(name, who, since, missed);
      watch(self, who, name);
      return {seq, std::move(missed)};
    },
    [self](topics::unsubscribe_atom, const std::string& name, const caf::actor& who) {
      auto& st = self->state;
      st.events->unsubscribe(name, who.address());
      auto s = st.by_subscriber.find(who.address());
      if (s != st.by_subscriber.end()) s->second.erase(name);
    },
  };
}

} // namespace

caf::actor spawn_topic_hub(caf::local_actor* parent, std::shared_ptr<topics::store> events) {
  return parent->spawn(hub_impl, std::move(events));
}

} // namespace gm::gateway
