// This node's identity in the cluster: a stable id (configured or generated),
// an incarnation that grows with every start, and the address peers use.
#pragma once

#include <cstdint>
#include <string>

namespace gm::cluster {

struct node_info {
  std::string id;
  int64_t incarnation = 0;  // start time in ms since the epoch
  std::string address;      // host:port of the HTTP listener
};

/// Returns the identity of this process: `configured_id` if set, else a
/// generated one (host name plus random suffix).
node_info make_node_info(const std::string& configured_id, const std::string& address);

} // namespace gm::cluster
