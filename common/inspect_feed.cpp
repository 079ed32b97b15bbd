// Implements the inspection feed: one mutex, held for a push or a swap.
#include "common/inspect_feed.hpp"

#include <mutex>

#include "common/ids.hpp"

namespace gm::inspect {

namespace {

std::mutex mx;
drained pending;

} // namespace

void note(event e) {
  if (e.at_ms == 0) e.at_ms = now_unix_ms();
  std::lock_guard<std::mutex> lock{mx};
  ++pending.counts[e.name][e.type];
  ++pending.total;
  if (pending.events.size() < max_kept) pending.events.push_back(std::move(e));
}

drained drain() {
  drained out;
  std::lock_guard<std::mutex> lock{mx};
  std::swap(out, pending);
  return out;
}

} // namespace gm::inspect
