// Implements the topic hub.
#include "gateway/topic_hub.hpp"

#include <deque>
#include <unordered_map>
#include <unordered_set>

#include <caf/all.hpp>

#include "actors/topics.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/registry.hpp"

namespace gm::gateway {
namespace {

using topics::event;

struct topic {
  int64_t seq = 0;
  std::deque<event> history;
  std::unordered_set<caf::actor> subscribers;
};

struct state {
  hub_options opts;
  std::unordered_map<std::string, topic> topics;
  // subscriber → its topics, to clean up when it goes down
  std::unordered_map<caf::actor_addr, std::unordered_set<std::string>> by_subscriber;
  metrics::counter* published = nullptr;
  metrics::counter* delivered = nullptr;
  static inline const char* name = "gm.topic_hub";
};

using hub_actor = caf::stateful_actor<state>;

void trim(hub_actor* self) {
  auto& st = self->state;
  if (st.topics.size() <= st.opts.max_topics) return;
  for (auto it = st.topics.begin(); it != st.topics.end() && st.topics.size() > st.opts.max_topics;) {
    if (it->second.subscribers.empty()) {
      it = st.topics.erase(it);
    } else {
      ++it;
    }
  }
}

caf::behavior hub_impl(hub_actor* self, hub_options opts) {
  auto& st = self->state;
  st.opts = opts;
  auto& reg = metrics::global();
  st.published = &reg.get_counter("gigmesh_events_published_total", "events published to the hub");
  st.delivered = &reg.get_counter("gigmesh_events_delivered_total", "events sent to subscribers");
  register_as(self, topics::registry_name());
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto it = st.by_subscriber.find(dm.source);
    if (it == st.by_subscriber.end()) return;
    for (auto& name : it->second) {
      auto t = st.topics.find(name);
      if (t == st.topics.end()) continue;
      for (auto s = t->second.subscribers.begin(); s != t->second.subscribers.end(); ++s) {
        if (s->address() == dm.source) {
          t->second.subscribers.erase(s);
          break;
        }
      }
    }
    st.by_subscriber.erase(it);
  });
  return {
    [self](topics::publish_atom, std::string& name, std::string& ev, int64_t seq,
           std::string& data) {
      auto& st = self->state;
      st.published->inc();
      auto& t = st.topics[name];
      if (seq <= t.seq && !t.history.empty()) return;  // a repeat or out of order: drop
      t.seq = seq;
      if (!t.subscribers.empty()) {
        auto frame = std::make_shared<const std::string>(topics::event_frame(name, ev, seq, data));
        auto msg = caf::make_message(topics::event_atom::value, name, seq, std::move(frame));
        for (auto& s : t.subscribers) self->send(s, msg);
        st.delivered->inc(t.subscribers.size());
      }
      // Moved, not copied: every change of every entity passes here.
      t.history.push_back({std::move(ev), seq, std::move(data)});
      if (t.history.size() > st.opts.history_per_topic) t.history.pop_front();
      trim(self);
    },
    [self](topics::subscribe_atom, const std::string& name, const caf::actor& who,
           int64_t since) -> caf::result<int64_t, std::vector<event>> {
      auto& st = self->state;
      auto& t = st.topics[name];
      if (t.subscribers.insert(who).second) {
        auto& mine = st.by_subscriber[who.address()];
        if (mine.empty()) self->monitor(who);
        mine.insert(name);
      }
      std::vector<event> missed;
      if (since >= 0) {
        for (auto& e : t.history) {
          if (e.seq > since) missed.push_back(e);
        }
      }
      return {t.seq, std::move(missed)};
    },
    [self](topics::unsubscribe_atom, const std::string& name, const caf::actor& who) {
      auto& st = self->state;
      auto t = st.topics.find(name);
      if (t != st.topics.end()) t->second.subscribers.erase(who);
      auto s = st.by_subscriber.find(who.address());
      if (s != st.by_subscriber.end()) s->second.erase(name);
    },
  };
}

} // namespace

caf::actor spawn_topic_hub(caf::local_actor* parent, hub_options opts) {
  return parent->spawn(hub_impl, opts);
}

} // namespace gm::gateway
