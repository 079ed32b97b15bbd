// Implements the topic store and publishing to it.
#include "actors/topics.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "common/metrics.hpp"
#include "common/registry.hpp"

namespace gm::topics {

caf::atom_value registry_name() {
  return caf::atom("topics");
}

std::string event_frame(const std::string& topic, const std::string& name, int64_t seq,
                        const std::string& data) {
  using nlohmann::json;
  auto quote = [](const std::string& s) {
    return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  };
  return "{\"event\":" + quote(name) + ",\"topic\":" + quote(topic) +
         ",\"seq\":" + std::to_string(seq) + ",\"data\":" + data + "}";
}

namespace {

struct topic {
  int64_t seq = 0;
  std::deque<event> history;
  std::vector<caf::actor> subscribers;  // few, if any
};

// Sixteen stripes: the two CAF workers that publish rarely want the same one.
constexpr size_t stripe_count = 16;

struct stripe {
  mutable std::mutex m;
  std::unordered_map<std::string, topic> topics;
};

} // namespace

struct store::impl {
  options opts;
  std::array<stripe, stripe_count> stripes;
  metrics::counter* published = nullptr;

  stripe& of(const std::string& name) {
    return stripes[std::hash<std::string>{}(name) % stripe_count];
  }

  /// Drops topics nobody watches once the stripe holds more than its share.
  void trim(stripe& s) {
    auto limit = std::max<size_t>(1, opts.max_topics / stripe_count);
    for (auto it = s.topics.begin(); it != s.topics.end() && s.topics.size() > limit;) {
      if (it->second.subscribers.empty()) {
        it = s.topics.erase(it);
      } else {
        ++it;
      }
    }
  }
};

store::store(options opts) : impl_(std::make_unique<impl>()) {
  impl_->opts = opts;
  impl_->published = &metrics::global().get_counter("gigmesh_events_published_total",
                                                     "events published to the hub");
}

store::~store() = default;

bool store::record(const std::string& name, const std::string& ev, int64_t seq,
                   std::string& data, std::vector<caf::actor>& to) {
  impl_->published->inc();
  auto& s = impl_->of(name);
  std::lock_guard<std::mutex> guard{s.m};
  auto& t = s.topics[name];
  if (seq <= t.seq && !t.history.empty()) return false;  // a repeat or out of order
  t.seq = seq;
  to = t.subscribers;
  if (to.empty()) {
    t.history.push_back({ev, seq, std::move(data)});
  } else {
    t.history.push_back({ev, seq, data});
  }
  if (t.history.size() > impl_->opts.history_per_topic) t.history.pop_front();
  if (s.topics.size() > impl_->opts.max_topics / stripe_count) impl_->trim(s);
  return true;
}

void store::advance(const std::string& name, int64_t seq) {
  auto& s = impl_->of(name);
  std::lock_guard<std::mutex> guard{s.m};
  auto& t = s.topics[name];
  if (seq > t.seq) t.seq = seq;
  if (s.topics.size() > impl_->opts.max_topics / stripe_count) impl_->trim(s);
}

int64_t store::subscribe(const std::string& name, const caf::actor& who, int64_t since,
                         std::vector<event>& missed) {
  auto& s = impl_->of(name);
  std::lock_guard<std::mutex> guard{s.m};
  auto& t = s.topics[name];
  if (std::find(t.subscribers.begin(), t.subscribers.end(), who) == t.subscribers.end()) {
    t.subscribers.push_back(who);
  }
  if (since >= 0) {
    for (auto& e : t.history) {
      if (e.seq > since) missed.push_back(e);
    }
  }
  return t.seq;
}

void store::unsubscribe(const std::string& name, const caf::actor_addr& who) {
  auto& s = impl_->of(name);
  std::lock_guard<std::mutex> guard{s.m};
  auto it = s.topics.find(name);
  if (it == s.topics.end()) return;
  auto& subs = it->second.subscribers;
  subs.erase(std::remove_if(subs.begin(), subs.end(),
                            [&who](const caf::actor& a) { return a.address() == who; }),
             subs.end());
}

std::vector<std::pair<caf::actor, std::vector<std::string>>> store::subscribers() const {
  std::map<caf::actor, std::vector<std::string>> by;
  for (auto& s : impl_->stripes) {
    std::lock_guard<std::mutex> guard{s.m};
    for (auto& kv : s.topics) {
      for (auto& a : kv.second.subscribers) by[a].push_back(kv.first);
    }
  }
  return {by.begin(), by.end()};
}

size_t store::topic_count() const {
  size_t n = 0;
  for (auto& s : impl_->stripes) {
    std::lock_guard<std::mutex> guard{s.m};
    n += s.topics.size();
  }
  return n;
}

namespace {

std::atomic<forward_fn> forwarder{nullptr};

/// Records the event and hands it to the hub for its subscribers here.
/// Returns false if it repeats or comes out of order.
bool record_and_deliver(caf::actor_system& sys, store* s, const std::string& topic,
                        std::string name, int64_t seq, std::string data);

} // namespace

void set_forwarder(forward_fn f) { forwarder.store(f, std::memory_order_release); }

void publish(caf::actor_system& sys, store* s, const std::string& topic, const char* event,
             int64_t seq, std::string data) {
  if (s == nullptr) return;
  if (auto f = forwarder.load(std::memory_order_acquire)) {
    std::string name{event};
    f(topic, name, seq, data);  // copies what it sends: `data` is recorded below
    record_and_deliver(sys, s, topic, std::move(name), seq, std::move(data));
    return;
  }
  record_and_deliver(sys, s, topic, event, seq, std::move(data));
}

void publish_from_peer(caf::actor_system& sys, store* s, const std::string& topic,
                       std::string event, int64_t seq, std::string data) {
  if (s == nullptr) return;
  record_and_deliver(sys, s, topic, std::move(event), seq, std::move(data));
}

namespace {

bool record_and_deliver(caf::actor_system& sys, store* s, const std::string& topic,
                        std::string name, int64_t seq, std::string data) {
  std::vector<caf::actor> to;
  if (!s->record(topic, name, seq, data, to)) return false;
  if (to.empty()) return true;
  auto hub = find_registered(sys, registry_name());
  if (!hub) return true;  // restarting: live notifications during it are missed
  caf::anon_send(hub, deliver_atom::value, topic, std::move(name), seq, std::move(data),
                 std::move(to));
  return true;
}

} // namespace

void notify(caf::actor_system& sys, store* s, const std::string& user_id, std::string data) {
  publish(sys, s, "user:" + user_id, "notification.new", clock_seq(), std::move(data));
}

int64_t clock_seq() {
  static std::atomic<int64_t> last{0};
  int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  int64_t prev = last.load();
  int64_t seq;
  do {
    seq = std::max(now, prev + 1);
  } while (!last.compare_exchange_weak(prev, seq));
  return seq;
}

} // namespace gm::topics
