// The CAF scheduler the node runs its actors on: CAF's work-stealing policy
// (its queues, polling and stealing, as configured under `work-stealing.*`),
// driven by a worker loop of our own. CAF 0.17's worker loop looks up the
// resumed actor's id for its logger on every resume, through a dynamic_cast
// across the actor's class hierarchy, even with logging compiled out: about
// 1,300 instructions per resume, 6% of the node's instructions in a
// transfer (docs/bench.md). This loop resumes the same jobs the same way
// without it.
#pragma once

#include <caf/fwd.hpp>

namespace gm::actors {

/// Makes an actor system built from `cfg` run on the scheduler above
/// (`scheduler.max-threads` and `scheduler.max-throughput` still apply).
void use_lean_scheduler(caf::actor_system_config& cfg);

} // namespace gm::actors
