// Implements the cluster view and rendezvous placement.
#include "cluster/view.hpp"

#include <atomic>
#include <mutex>

namespace gm::cluster {
namespace {

uint64_t fnv1a(uint64_t h, const std::string& s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t mix(uint64_t x) {  // splitmix64's finalizer: spreads FNV's low-entropy bits
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

std::mutex view_mx;
std::shared_ptr<const view> the_view = std::make_shared<const view>();
std::atomic<uint64_t> installs{0};

} // namespace

uint64_t score(const std::string& node, const std::string& key) {
  uint64_t h = fnv1a(14695981039346656037ULL, node);
  h = fnv1a(h ^ 0x1f, key);
  return mix(h);
}

namespace {
template <class Nodes, class IdOf>
auto best(const Nodes& nodes, const std::string& type, const std::string& id, IdOf id_of)
  -> decltype(&nodes[0]) {
  if (nodes.empty()) return nullptr;
  std::string key;
  key.reserve(type.size() + 1 + id.size());
  key.append(type).push_back(':');
  key.append(id);
  decltype(&nodes[0]) top = nullptr;
  uint64_t top_score = 0;
  for (auto& n : nodes) {
    auto s = score(id_of(n), key);
    // Ties (never in practice) go to the lower id, the same everywhere.
    if (!top || s > top_score || (s == top_score && id_of(n) < id_of(*top))) {
      top = &n;
      top_score = s;
    }
  }
  return top;
}
} // namespace

std::string owner_among(const std::vector<std::string>& nodes, const std::string& type,
                        const std::string& id) {
  auto b = best(nodes, type, id, [](const std::string& n) -> const std::string& { return n; });
  return b ? *b : std::string{};
}

const member* owner(const view& v, const std::string& type, const std::string& id) {
  return best(v.up, type, id, [](const member& m) -> const std::string& { return m.id; });
}

void install(std::shared_ptr<const view> v) {
  std::lock_guard<std::mutex> lock{view_mx};
  the_view = std::move(v);
  installs.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const view> current() {
  std::lock_guard<std::mutex> lock{view_mx};
  return the_view;
}

const view& current_here() {
  thread_local uint64_t seen = UINT64_MAX;
  thread_local std::shared_ptr<const view> mine;
  auto n = installs.load(std::memory_order_acquire);
  if (n != seen || !mine) {
    mine = current();
    seen = n;
  }
  return *mine;
}

} // namespace gm::cluster
