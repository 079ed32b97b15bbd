// Erlang/OTP-style supervision for CAF 0.17, which has none built in:
// one_for_one, one_for_all and rest_for_one, at most `intensity` restarts in
// `period`, then the supervisor stops its children and escalates to its parent
// by terminating with `reached_max_restart_intensity`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

namespace gm::sup {

enum class strategy { one_for_one, one_for_all, rest_for_one };

/// When a child is restarted: always, only after an abnormal exit, or never.
enum class restart { permanent, transient, temporary };

/// Returns the name used in logs and reports for `s`.
const char* to_string(strategy s);

struct child_spec {
  std::string name;
  /// Spawns the child from the supervisor (e.g. `sup->spawn(fn, args...)`).
  /// The supervisor monitors what it returns; it must not be linked to it.
  std::function<caf::actor(caf::local_actor* sup)> start;
  restart policy = restart::permanent;
  /// A significant child is never restarted after an abnormal exit: the
  /// supervisor stops its other children and gives up at once, with
  /// `significant_child_failed` (escalation). For a child whose crash
  /// leaves the others in a state a restart of it alone cannot mend
  /// (OTP's significant children, ending in failure instead of a normal
  /// shutdown).
  bool significant = false;
  std::chrono::milliseconds shutdown_timeout{5000};
};

struct options {
  std::string name = "supervisor";
  strategy strat = strategy::one_for_one;
  int intensity = 3;
  std::chrono::milliseconds period{5000};
};

/// The reason a supervisor terminates with when it gives up.
/// `stopped_uncleanly`: a stop had to kill a child past its shutdown_timeout
/// (or a child supervisor stopped so): what that child held may be lost.
enum class errc : uint8_t {
  reached_max_restart_intensity = 1,
  child_start_failed,
  stopped_uncleanly,
  significant_child_failed,
};

/// Returns a CAF error for `x` in the `gm_sup` category.
caf::error make_error(errc x);

struct child_report {
  std::string name;
  bool running = false;
  uint64_t restarts = 0;
  std::string last_reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_report& x) {
  return f(caf::meta::type_name("gm_child_report"), x.name, x.running, x.restarts,
           x.last_reason);
}

struct supervisor_report {
  std::string name;
  std::string strategy;
  int intensity = 0;
  int64_t period_ms = 0;
  uint64_t restarts = 0;
  std::vector<child_report> children;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervisor_report& x) {
  return f(caf::meta::type_name("gm_supervisor_report"), x.name, x.strategy, x.intensity,
           x.period_ms, x.restarts, x.children);
}

/// Ask a supervisor for its report: `request(sup, t, report_atom::value)`.
using report_atom = caf::atom_constant<caf::atom("sup_report")>;

/// Returns the registry name of the supervisor called `name` ("sup_" +
/// name): supervisors whose name has at most 6 characters register under it.
caf::atom_value registry_name(const std::string& name);

/// Returns a running supervisor with `children`, started in order.
caf::actor spawn_supervisor(caf::actor_system& sys, options opts,
                            std::vector<child_spec> children);

/// Returns a child spec that runs a nested supervisor (escalation target:
/// the supervisor that starts it).
child_spec supervisor_child(options opts, std::vector<child_spec> children);

} // namespace gm::sup
