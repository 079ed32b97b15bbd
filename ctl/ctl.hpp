// `gigmesh ctl`: the inspection console for terminals (top, inspect, tree,
// passivate, kill, audit), over a node's admin API.
#pragma once

#include <string>
#include <vector>

namespace gm::ctl {

/// Runs `gigmesh ctl` with its arguments (after "ctl"); returns the exit code.
int run(const std::vector<std::string>& args);

} // namespace gm::ctl
