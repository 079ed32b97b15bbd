// The activation sweep: for kinds whose entities must act on time while
// they are not active (a circle's due date, a contract's delivery
// deadline, a task's offer or pending dispatch), a child of the kind's
// shard asks PostgreSQL every interval which entities are due and
// activates them (`exists_atom`); each then acts at once as it loads.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

namespace gm::actors {

/// Spawns, linked to `shard`, the sweep of kind `type`: at start and every
/// `every` after, runs `sql` (with `params`; its first column the ids,
/// bounded by the query itself) and activates those entities.
void start_activation_sweep(caf::local_actor* shard, const char* type,
                            std::chrono::milliseconds every, std::string sql,
                            std::vector<std::string> params = {});

} // namespace gm::actors
