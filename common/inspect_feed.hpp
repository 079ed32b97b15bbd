// The feed of runtime events the console watches (`system:inspect`): shards
// note what happens to their entities (activated, passivated, crashed,
// restarted, killed) and the journal its errors; the inspector
// (gateway/inspector.cpp) drains the feed once a second and publishes it,
// coalesced when busy. Any thread may note; noting is cheap and bounded
// (past `max_kept` events a second only counts grow).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gm::inspect {

struct event {
  std::string name;  // actor.activated, actor.passivated, actor.crashed, actor.restarted, actor.killed, journal.error
  std::string type;  // the entity's kind (empty for journal.error)
  std::string id;
  int64_t restarts = 0;
  std::string reason;  // crashes, kills, errors
  int64_t at_ms = 0;
};

/// Events kept between two drains; beyond them only the counts grow.
inline constexpr size_t max_kept = 1000;

/// Notes `e` (at_ms is stamped if 0).
void note(event e);

struct drained {
  std::vector<event> events;  // at most max_kept, oldest first
  // name → type → how many (every event noted, kept or not).
  std::map<std::string, std::map<std::string, int64_t>> counts;
  int64_t total = 0;
};

/// Returns what was noted since the last drain, and starts anew.
drained drain();

} // namespace gm::inspect
