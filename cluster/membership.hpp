// Cluster membership (docs/architecture.md, Cluster): this node's row in
// PostgreSQL's `nodes` table (joined, heartbeat, declared down), the other
// nodes that are up, the connections to them through CAF's middleman, and
// the view placement hashes over. Also the node's cluster endpoint, the one
// actor other nodes talk to: commands for entities this node owns, events
// for this node's subscribers, the member list for nodes that join through
// a seed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

namespace gm::topics {
class store;
}

namespace gm::cluster {

struct options {
  std::string node_id;
  int64_t incarnation = 0;
  std::string http_address;  // host:port of the HTTP listener
  std::string pg_url;
  std::chrono::milliseconds connect_timeout{2000};
  /// The middleman's listener; port 0 with no seeds: the node runs alone
  /// (it still keeps its row, and its writes are fenced by it).
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  bool clustered = false;
  std::vector<std::string> seeds;  // host:port of other nodes' middlemen
  std::chrono::milliseconds heartbeat{500};
  std::chrono::milliseconds down_after{3000};
  std::chrono::milliseconds handoff{1500};
  /// Set to the incarnation once the node joined (the journal's fence).
  std::shared_ptr<std::atomic<int64_t>> joined_incarnation;
  std::shared_ptr<topics::store> events;
};

/// Announces the types that cross nodes beside the kinds' commands (entity
/// replies), before the actor system starts.
void announce(caf::actor_system_config& cfg);

/// Spawns the membership actor (its own thread: it talks to PostgreSQL and
/// connects to peers, both blocking) from `parent`.
caf::actor spawn_membership(caf::local_actor* parent, options opts);

/// What /readyz and /admin/cluster tell of this node's membership.
struct status {
  bool clustered = false;
  bool joined = false;
  int64_t epoch = 0;
  int64_t members = 0;           // nodes up in this node's view
  int64_t heartbeat_ms_ago = -1;  // since the last heartbeat PostgreSQL took
};
status current_status();

/// Admin → another node's endpoint: `(admin_atom, type, message)`, answered
/// by that node's shard of `type` as it answers `message` (count, list,
/// inspect, passivate, kill): the console and the admin API see every node.
using admin_atom = caf::atom_constant<caf::atom("c_admin")>;

/// A node the admin API can ask: its endpoint, invalid for this node.
struct node_handle {
  std::string id;
  caf::actor endpoint;
};

/// This node and every other node up that it is connected to, by id.
std::vector<node_handle> admin_nodes(const std::string& self_id);

/// Stops the process at once: the cluster declared this node down, and no
/// write under this incarnation may reach PostgreSQL (docs/architecture.md).
[[noreturn]] void exit_fenced(const std::string& why);

} // namespace gm::cluster
