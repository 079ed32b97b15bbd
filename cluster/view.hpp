// Where entities live in a cluster: the nodes that are up, as this node
// knows them (its view), and rendezvous hashing of `type:id` over them.
// Membership (membership.cpp) installs a new view on every change; routers
// read it on every command, through a per-thread copy refreshed when the
// view's epoch moves (one atomic load in steady state).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>

namespace gm::cluster {

struct member {
  std::string id;
  int64_t incarnation = 0;
  std::string cluster_address;  // host:port of its middleman
  std::string http_address;
  caf::actor endpoint;          // its cluster endpoint; invalid for this node or while unreachable
};

struct view {
  /// cluster_epoch in PostgreSQL when this view was read: rises with every
  /// change of who is up, so two nodes can tell whose view is newer.
  int64_t epoch = 0;
  std::string self;
  std::vector<member> up;  // sorted by id; this node included once it joined
  /// Who was up before each recent change (ids), and when the change came:
  /// an entity whose owner in any of them is another node that is still up
  /// waits until `handoff` after that change before it activates here,
  /// while the old owner passivates it. Changes older than `handoff` are
  /// dropped; keeping all the recent ones means a second change soon after
  /// the first does not cut the first one's wait short.
  struct change {
    std::vector<std::string> before;
    std::chrono::steady_clock::time_point at{};
  };
  std::vector<change> recent;
  std::chrono::milliseconds handoff{0};
};

/// The score of `node` for `key` in rendezvous hashing: the node with the
/// highest score owns the key. The same on every node and every build.
uint64_t score(const std::string& node, const std::string& key);

/// Returns the id of the owner of `type:id` among `nodes`, or an empty
/// string if `nodes` is empty.
std::string owner_among(const std::vector<std::string>& nodes, const std::string& type,
                        const std::string& id);

/// Returns the member of `v` that owns `type:id`, or nullptr if `v` has no
/// members.
const member* owner(const view& v, const std::string& type, const std::string& id);

/// Installs `v` as this node's view.
void install(std::shared_ptr<const view> v);

/// Returns this node's view (never null; empty until the first install).
std::shared_ptr<const view> current();

/// Returns this thread's copy of the current view, refreshed if the view
/// changed since: for the hot paths.
const view& current_here();

} // namespace gm::cluster
