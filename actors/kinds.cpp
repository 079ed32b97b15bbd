// The list of entity kinds. One line per kind: its registration comes from
// its own folder.
#include "actors/kinds.hpp"

#include "actors/circle/circle.hpp"
#include "actors/contract/contract.hpp"
#include "actors/dispatch/dispatcher.hpp"
#include "actors/money/moves.hpp"
#include "actors/rider/rider.hpp"
#include "actors/room/room.hpp"
#include "actors/task/task.hpp"
#include "actors/user/user.hpp"
#include "actors/wallet/wallet.hpp"

namespace gm::actors {

const std::vector<kind_registration>& kinds() {
  static const std::vector<kind_registration> all{
    user::registration(),
    wallet::registration(),
    circle::registration(),
    contract::registration(),
    room::registration(),
    rider::registration(),
    dispatch::registration(),
    task::registration(),
  };
  return all;
}

const kind_registration* kind_of_topic(const std::string& prefix) {
  for (auto& k : kinds()) {
    if (!k.topic.empty() && k.topic == prefix) return &k;
  }
  return nullptr;
}

void announce_commands(caf::actor_system_config& cfg) {
  money::announce(cfg);  // the money mechanism's steps, which every money kind serves
  for (auto& k : kinds()) {
    if (k.announce) k.announce(cfg);
  }
}

bool runs_kind(const std::string& type) {
  for (auto& k : kinds()) {
    if (k.type == type) return true;
  }
  return false;
}

} // namespace gm::actors
