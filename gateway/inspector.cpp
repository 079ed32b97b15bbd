// Implements the inspector (inspector.hpp).
#include "gateway/inspector.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/topics.hpp"
#include "common/ids.hpp"
#include "common/inspect_feed.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/registry.hpp"
#include "persistence/journal.hpp"

namespace gm::gateway {

namespace {

using nlohmann::json;
using tick_atom = caf::atom_constant<caf::atom("in_tick")>;

/// Events published one by one within a second; past it, a summary.
constexpr size_t max_events_per_tick = 20;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::shared_ptr<topics::store>& store_slot() {
  static std::shared_ptr<topics::store> s;
  return s;
}

struct state {
  std::shared_ptr<topics::store> events;
  cluster::node_info node;
  int64_t started_ms = 0;
  // The counters of the previous tick, for rates.
  std::chrono::steady_clock::time_point last;
  std::map<std::string, double> messages, activations;
  double requests = 0, errors = 0;
  static inline const char* name = "gm.inspector";
};

using inspector_actor = caf::stateful_actor<state>;

void publish(inspector_actor* self, const std::string& event, json data) {
  topics::publish(self->system(), self->state.events.get(), inspect_topic, event.c_str(),
                  topics::clock_seq(), dump(data));
}

json node_json(const state& st) {
  return {{"id", st.node.id},
          {"address", st.node.address},
          {"status", "up"},
          {"incarnation", st.node.incarnation},
          {"started_at", rfc3339_of_ms(st.started_ms)},
          {"uptime_s", (now_unix_ms() - st.started_ms) / 1000}};
}

json event_json(const state& st, const inspect::event& e) {
  json j = {{"node", st.node.id}, {"at", rfc3339_of_ms(e.at_ms)}};
  if (!e.type.empty()) j["type"] = e.type;
  if (!e.id.empty()) j["id"] = e.id;
  if (e.name.rfind("actor.", 0) == 0) j["restarts"] = e.restarts;
  if (e.name == "node.up") {
    j["address"] = e.reason;  // membership notes a node that came up with its address
  } else if (!e.reason.empty()) {
    j[e.name.rfind("journal.", 0) == 0 ? "error" : "reason"] = e.reason;
  }
  return j;
}

/// What the runtime noted since the last tick.
void publish_feed(inspector_actor* self) {
  auto& st = self->state;
  auto d = inspect::drain();
  if (d.total == 0) return;
  if (d.events.size() <= max_events_per_tick && d.total == static_cast<int64_t>(d.events.size())) {
    for (auto& e : d.events) publish(self, e.name, event_json(st, e));
    return;
  }
  // Busy: counts, and the events that matter one by one (crashes, restarts,
  // kills, journal errors), at most max_events_per_tick of them.
  json counts = json::object();
  for (auto& [name, by_type] : d.counts) {
    json t = json::object();
    for (auto& [type, n] : by_type) t[type.empty() ? "node" : type] = n;
    counts[name] = std::move(t);
  }
  publish(self, "actor.summary",
          {{"node", st.node.id}, {"window_ms", 1000}, {"counts", counts}, {"events", d.total},
           {"at", now_rfc3339()}});
  size_t sent = 0;
  for (auto& e : d.events) {
    if (e.name == "actor.activated" || e.name == "actor.passivated") continue;
    if (sent++ >= max_events_per_tick) break;
    publish(self, e.name, event_json(st, e));
  }
}

/// Per-second rates of counter family `name` by label `key` since `prev`.
json rates(const std::map<std::string, double>& now, std::map<std::string, double>& prev,
           double secs, double& total) {
  json out = json::object();
  total = 0;
  for (auto& [k, v] : now) {
    auto it = prev.find(k);
    double r = secs > 0 ? (v - (it == prev.end() ? 0 : it->second)) / secs : 0;
    if (r < 0) r = 0;
    out[k] = std::round(r * 10) / 10;
    total += r;
  }
  prev = now;
  return out;
}

void publish_stats(inspector_actor* self, json journal) {
  auto& st = self->state;
  auto& reg = metrics::global();
  auto now = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(now - st.last).count();
  st.last = now;
  json actors = json::object();
  int64_t actors_total = 0;
  for (auto& [type, n] : reg.sum_by("gigmesh_entities", "type")) {
    actors[type] = static_cast<int64_t>(n);
    actors_total += static_cast<int64_t>(n);
  }
  json restarts = json::object();
  for (auto& [type, n] : reg.sum_by("gigmesh_entity_restarts_total", "type")) {
    restarts[type] = static_cast<int64_t>(n);
  }
  double messages_total = 0, activations_total = 0;
  auto messages = rates(reg.sum_by("gigmesh_entity_messages_total", "type"), st.messages, secs,
                        messages_total);
  rates(reg.sum_by("gigmesh_entity_activations_total", "type"), st.activations, secs,
        activations_total);
  double requests = 0, errors = 0;
  for (auto& [status, n] : reg.sum_by("gigmesh_http_requests_total", "status")) {
    requests += n;
    if (status.size() == 3 && status[0] == '5') errors += n;
  }
  auto per_s = [secs](double now_v, double& prev) {
    double r = secs > 0 ? std::max(0.0, (now_v - prev) / secs) : 0;
    prev = now_v;
    return std::round(r * 10) / 10;
  };
  double requests_per_s = per_s(requests, st.requests);
  double errors_per_s = per_s(errors, st.errors);
  auto gauge = [&reg](const char* name) {
    auto m = reg.sum_by(name, "");
    return static_cast<int64_t>(m.empty() ? 0 : m.begin()->second);
  };
  publish(self, "node.stats",
          {{"node", node_json(st)},
           {"at", now_rfc3339()},
           {"actors_by_type", actors},
           {"actors_total", actors_total},
           {"messages_per_s_by_type", messages},
           {"messages_per_s", std::round(messages_total * 10) / 10},
           {"activations_per_s", std::round(activations_total * 10) / 10},
           {"restarts_by_type", restarts},
           {"journal", std::move(journal)},
           {"ws", {{"sessions", gauge("gigmesh_ws_sessions")},
                   {"subscriptions", gauge("gigmesh_ws_subscriptions")}}},
           {"http", {{"requests_per_s", requests_per_s}, {"errors_per_s", errors_per_s}}}});
}

caf::behavior inspector_impl(inspector_actor* self, std::shared_ptr<topics::store> events,
                             cluster::node_info node) {
  auto& st = self->state;
  st.events = std::move(events);
  st.node = std::move(node);
  st.started_ms = st.node.incarnation != 0 ? st.node.incarnation : now_unix_ms();
  st.last = std::chrono::steady_clock::now();
  std::atomic_store(&store_slot(), st.events);
  // The counters as they are now: the first rates are of the first second.
  double ignored = 0;
  auto& reg = metrics::global();
  rates(reg.sum_by("gigmesh_entity_messages_total", "type"), st.messages, 0, ignored);
  rates(reg.sum_by("gigmesh_entity_activations_total", "type"), st.activations, 0, ignored);
  for (auto& [status, n] : reg.sum_by("gigmesh_http_requests_total", "status")) {
    st.requests += n;
    if (status.size() == 3 && status[0] == '5') st.errors += n;
  }
  publish(self, "node.up", {{"id", st.node.id}, {"address", st.node.address}, {"at", now_rfc3339()}});
  self->delayed_send(self, std::chrono::seconds{1}, tick_atom::value);
  return {
    [self](tick_atom) {
      self->delayed_send(self, std::chrono::seconds{1}, tick_atom::value);
      publish_feed(self);
      auto j = journal::find(self->system());
      if (!j) {
        publish_stats(self, nullptr);
        return;
      }
      self->request(j, std::chrono::milliseconds{800}, journal::stats_atom::value)
        .then(
          [self](journal::stats& s) {
            publish_stats(self, {{"pending", s.pending},
                                 {"in_flight", s.in_flight},
                                 {"last_batch_rows", s.last_batch_rows},
                                 {"flush_latency_ms_p50", s.flush_latency_ms_p50},
                                 {"flush_latency_ms_p99", s.flush_latency_ms_p99},
                                 {"failures", s.failures},
                                 {"last_error", s.last_error.empty() ? json(nullptr)
                                                                     : json(s.last_error)}});
          },
          [self](caf::error&) { publish_stats(self, nullptr); });
    },
  };
}

} // namespace

void publish_inspect(caf::actor_system& sys, const std::string& event, std::string data) {
  auto s = std::atomic_load(&store_slot());
  topics::publish(sys, s.get(), inspect_topic, event.c_str(), topics::clock_seq(), std::move(data));
}

caf::actor spawn_inspector(caf::local_actor* parent, std::shared_ptr<topics::store> events,
                           cluster::node_info node) {
  return parent->spawn(inspector_impl, std::move(events), std::move(node));
}

} // namespace gm::gateway
