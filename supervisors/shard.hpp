// Entity shards: one per entity kind. A shard activates an entity on its
// first message, passivates it after an idle time, restarts it when it
// crashes (one_for_one, transient, with its own intensity), holds messages
// that arrive while an entity stops, and keeps the directory of live
// entities the console reads.
#pragma once

#include <chrono>
#include <string>

#include <caf/fwd.hpp>

#include "actors/entity.hpp"

namespace gm::shard {

struct options {
  std::string node_id;
  /// An entity idle this long is passivated (flushed, then stopped).
  std::chrono::milliseconds idle_timeout{120000};
  /// More than `intensity` crashes of one entity within `period` and the
  /// shard stops restarting it: it stays passive until its next message.
  int intensity = 3;
  std::chrono::milliseconds period{5000};
};

/// Returns the name the shard for `type` registers under ("shard:" + type; see
/// name_registry in common/registry.hpp: kinds may have long names).
std::string registry_name(const std::string& type);

/// Spawns the shard for `kind` from `parent` (its supervisor).
caf::actor spawn_shard(caf::local_actor* parent, actors::entity_kind kind, options opts);

} // namespace gm::shard
