// Implements node identity.
#include "cluster/node_info.hpp"

#include <chrono>
#include <cstdio>
#include <random>

#include <unistd.h>

namespace gm::cluster {

node_info make_node_info(const std::string& configured_id, const std::string& address) {
  node_info n;
  n.incarnation = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  n.address = address;
  if (!configured_id.empty()) {
    n.id = configured_id;
    return n;
  }
  char host[128] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "node");
  }
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "%06x", static_cast<unsigned>(rd() & 0xffffff));
  n.id = std::string{host} + "-" + suffix;
  return n;
}

} // namespace gm::cluster
