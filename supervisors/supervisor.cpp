// Implements the supervisor actor.
//
//   running ──child down──▶ restart per strategy ──▶ running
//      │  (a stop phase stops children one by one in reverse order and waits
//      │   for each down_msg, killing a child past its shutdown_timeout)
//      ├──intensity exceeded──▶ stop all ──▶ quit(reached_max_restart_intensity)
//      └──exit_msg (parent)───▶ stop all ──▶ quit(reason)
#include "supervisors/supervisor.hpp"

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>

#include <caf/all.hpp>

#include "common/log.hpp"
#include "common/registry.hpp"

namespace gm::sup {
namespace {

using stop_timeout_atom = caf::atom_constant<caf::atom("sup_stopto")>;
using start_failed_atom = caf::atom_constant<caf::atom("sup_stfail")>;

struct slot {
  child_spec spec;
  caf::actor handle;
  bool running = false;
  uint64_t restarts = 0;
  std::string last_reason;
};

/// A stop phase: stop `pending` front to back, then run `then`.
struct stop_phase {
  std::deque<size_t> pending;
  std::optional<size_t> current;
  uint64_t generation = 0;
  std::function<void()> then;
};

struct state {
  options opts;
  std::vector<slot> children;
  std::deque<std::chrono::steady_clock::time_point> restart_times;
  uint64_t total_restarts = 0;
  std::optional<stop_phase> phase;
  uint64_t phase_generation = 0;
  std::deque<std::pair<size_t, caf::error>> deferred_failures;
  bool shutting_down = false;
  // Our stop killed a child past its timeout, or a child supervisor's stop did.
  bool unclean_stop = false;
  // Shared with the cleanup functor so children never outlive a dead supervisor.
  std::shared_ptr<std::vector<caf::actor>> live = std::make_shared<std::vector<caf::actor>>();
  static inline const char* name = "gm.supervisor";
};

using self_ptr = caf::stateful_actor<state>*;

std::string render(self_ptr self, const caf::error& e) {
  if (!e) {
    return "normal";
  }
  return self->system().render(e);
}

void refresh_live(self_ptr self) {
  self->state.live->clear();
  for (auto& c : self->state.children) {
    if (c.running) {
      self->state.live->push_back(c.handle);
    }
  }
}

void handle_failure(self_ptr self, size_t idx, const caf::error& reason);

void start_child(self_ptr self, size_t idx) {
  auto& c = self->state.children[idx];
  auto log = gm::log::get("supervisor");
  caf::actor h;
  std::string why;
  try {
    h = c.spec.start(self);
  } catch (const std::exception& e) {
    why = e.what();
  }
  if (!h) {
    c.running = false;
    c.last_reason = "start failed: " + (why.empty() ? std::string{"no actor"} : why);
    log->error("{}: child {} failed to start: {}", self->state.opts.name, c.spec.name, c.last_reason);
    // Handled as a message so a child that never starts cannot recurse.
    self->send(self, start_failed_atom::value, static_cast<uint64_t>(idx));
    return;
  }
  c.handle = h;
  c.running = true;
  self->monitor(h);
  refresh_live(self);
  log->debug("{}: started {}", self->state.opts.name, c.spec.name);
}

void run_phase(self_ptr self);

void finish_current_stop(self_ptr self) {
  auto& ph = *self->state.phase;
  if (ph.current) {
    auto& c = self->state.children[*ph.current];
    c.running = false;
    c.handle = nullptr;
    refresh_live(self);
  }
  ph.current.reset();
  run_phase(self);
}

void run_phase(self_ptr self) {
  auto& st = self->state;
  auto& ph = *st.phase;
  while (!ph.current && !ph.pending.empty()) {
    auto idx = ph.pending.front();
    ph.pending.pop_front();
    auto& c = st.children[idx];
    if (!c.running) {
      continue;
    }
    ph.current = idx;
    ph.generation = ++st.phase_generation;
    self->send_exit(c.handle, caf::exit_reason::user_shutdown);
    self->delayed_send(self, c.spec.shutdown_timeout, stop_timeout_atom::value, ph.generation);
    return;
  }
  if (!ph.current) {
    auto then = std::move(ph.then);
    st.phase.reset();
    then();
    // Failures that arrived during the phase are handled now, in order.
    while (!st.phase && !st.deferred_failures.empty() && !st.shutting_down) {
      auto [idx, reason] = st.deferred_failures.front();
      st.deferred_failures.pop_front();
      handle_failure(self, idx, reason);
    }
  }
}

/// Stops `indices` in the given order, then runs `then`.
void begin_phase(self_ptr self, std::deque<size_t> indices, std::function<void()> then) {
  self->state.phase = stop_phase{std::move(indices), std::nullopt, 0, std::move(then)};
  run_phase(self);
}

std::deque<size_t> reverse_range(size_t from, size_t to_exclusive) {
  std::deque<size_t> out;
  for (size_t i = to_exclusive; i > from; --i) {
    out.push_back(i - 1);
  }
  return out;
}

void shutdown(self_ptr self, caf::error reason) {
  auto& st = self->state;
  if (st.shutting_down) {
    return;
  }
  st.shutting_down = true;
  st.deferred_failures.clear();
  auto all = reverse_range(0, st.children.size());
  auto go = [self, all, reason] {
    begin_phase(self, all, [self, reason] {
      // A requested stop that had to kill says so, up to main's exit code.
      bool requested = !reason || reason == caf::exit_reason::user_shutdown;
      self->quit(requested && self->state.unclean_stop ? make_error(errc::stopped_uncleanly)
                                                       : reason);
    });
  };
  if (st.phase) {
    // Let the running phase finish its current child, then stop everything.
    st.phase->pending.clear();
    st.phase->then = go;
  } else {
    go();
  }
}

bool within_intensity(self_ptr self) {
  auto& st = self->state;
  auto now = std::chrono::steady_clock::now();
  st.restart_times.push_back(now);
  while (!st.restart_times.empty() && now - st.restart_times.front() > st.opts.period) {
    st.restart_times.pop_front();
  }
  return static_cast<int>(st.restart_times.size()) <= st.opts.intensity;
}

void restart_range(self_ptr self, size_t from, size_t to_exclusive, size_t failed) {
  for (size_t i = from; i < to_exclusive; ++i) {
    auto& c = self->state.children[i];
    bool dead_by_choice = (i == failed && c.spec.policy == restart::temporary);
    if (c.running || dead_by_choice) {
      continue;
    }
    ++c.restarts;
    ++self->state.total_restarts;
    start_child(self, i);
  }
}

void handle_failure(self_ptr self, size_t idx, const caf::error& reason) {
  auto& st = self->state;
  auto& c = st.children[idx];
  auto log = gm::log::get("supervisor");
  c.running = false;
  c.handle = nullptr;
  refresh_live(self);
  bool abnormal = reason && reason != caf::exit_reason::user_shutdown;
  if (abnormal) {
    c.last_reason = render(self, reason);
  }
  if (c.spec.policy == restart::temporary ||
      (c.spec.policy == restart::transient && !abnormal)) {
    log->info("{}: child {} exited ({}), not restarted", st.opts.name, c.spec.name,
              render(self, reason));
    return;
  }
  if (abnormal && c.spec.significant) {
    log->error("{}: significant child {} failed ({}): giving up", st.opts.name, c.spec.name,
               render(self, reason));
    shutdown(self, make_error(errc::significant_child_failed));
    return;
  }
  if (!within_intensity(self)) {
    log->error("{}: child {} failed ({}); more than {} restarts in {} ms, giving up",
               st.opts.name, c.spec.name, render(self, reason), st.opts.intensity,
               st.opts.period.count());
    shutdown(self, make_error(errc::reached_max_restart_intensity));
    return;
  }
  log->warn("{}: child {} failed ({}), restarting ({})", st.opts.name, c.spec.name,
            render(self, reason), to_string(st.opts.strat));
  auto n = st.children.size();
  switch (st.opts.strat) {
    case strategy::one_for_one:
      restart_range(self, idx, idx + 1, idx);
      break;
    case strategy::one_for_all: {
      std::deque<size_t> others;
      for (auto i : reverse_range(0, n)) {
        if (i != idx) others.push_back(i);
      }
      begin_phase(self, others, [self, n, idx] { restart_range(self, 0, n, idx); });
      break;
    }
    case strategy::rest_for_one:
      begin_phase(self, reverse_range(idx + 1, n),
                  [self, n, idx] { restart_range(self, idx, n, idx); });
      break;
  }
}

std::optional<size_t> find_child(self_ptr self, const caf::actor_addr& who) {
  auto& ch = self->state.children;
  for (size_t i = 0; i < ch.size(); ++i) {
    if (ch[i].running && ch[i].handle && ch[i].handle.address() == who) {
      return i;
    }
  }
  return std::nullopt;
}

} // namespace

caf::atom_value registry_name(const std::string& name) {
  return caf::atom_from_string("sup_" + name);
}

namespace {

caf::behavior supervisor_impl(self_ptr self, options opts, std::vector<child_spec> specs) {
  auto& st = self->state;
  st.opts = std::move(opts);
  // Named, so the console can walk the tree: "sup_" + name (atoms hold 10
  // characters; longer names are not registered).
  if (st.opts.name.size() <= 6) register_as(self, registry_name(st.opts.name));
  for (auto& s : specs) {
    st.children.push_back(slot{std::move(s), nullptr, false, 0, {}});
  }
  auto live = st.live;
  self->attach_functor([live](const caf::error&) {
    for (auto& h : *live) {
      caf::anon_send_exit(h, caf::exit_reason::kill);
    }
  });
  self->set_down_handler([self](caf::down_msg& dm) {
    auto idx = find_child(self, dm.source);
    if (!idx) {
      return; // an old incarnation, or not ours
    }
    auto& st = self->state;
    if (st.phase && st.phase->current == idx) {
      if (st.shutting_down && dm.reason == make_error(errc::stopped_uncleanly)) {
        st.unclean_stop = true;
      }
      finish_current_stop(self);
      return;
    }
    if (st.shutting_down) {
      // A child died on its own while we stop: nothing to restart.
      st.children[*idx].running = false;
      st.children[*idx].handle = nullptr;
      refresh_live(self);
      return;
    }
    if (st.phase) {
      auto& pend = st.phase->pending;
      auto it = std::find(pend.begin(), pend.end(), *idx);
      if (it != pend.end()) {
        // It was about to be stopped anyway; the phase's restart covers it.
        pend.erase(it);
        st.children[*idx].running = false;
        st.children[*idx].handle = nullptr;
        st.children[*idx].last_reason = render(self, dm.reason);
        refresh_live(self);
        return;
      }
      st.children[*idx].running = false;
      st.children[*idx].handle = nullptr;
      refresh_live(self);
      st.deferred_failures.emplace_back(*idx, dm.reason);
      return;
    }
    handle_failure(self, *idx, dm.reason);
  });
  self->set_exit_handler([self](caf::exit_msg& em) {
    // Children are monitored, not linked: an exit is our parent stopping us.
    gm::log::get("supervisor")->info("{}: stopping ({})", self->state.opts.name,
                                    render(self, em.reason));
    shutdown(self, em.reason);
  });
  for (size_t i = 0; i < st.children.size(); ++i) {
    start_child(self, i);
  }
  return {
    [self](stop_timeout_atom, uint64_t generation) {
      auto& ph = self->state.phase;
      if (ph && ph->current && ph->generation == generation) {
        auto& c = self->state.children[*ph->current];
        gm::log::get("supervisor")->warn("{}: child {} did not stop in {} ms, killing it",
                                        self->state.opts.name, c.spec.name,
                                        c.spec.shutdown_timeout.count());
        // Only a stop of the supervisor itself reports it (a restart phase
        // that kills goes on to restart: its reason is the child's failure).
        if (self->state.shutting_down) self->state.unclean_stop = true;
        self->send_exit(c.handle, caf::exit_reason::kill);
      }
    },
    [self](start_failed_atom, uint64_t idx) {
      if (!self->state.shutting_down && idx < self->state.children.size() &&
          !self->state.children[idx].running) {
        handle_failure(self, idx, make_error(errc::child_start_failed));
      }
    },
    [self](report_atom) {
      auto& st = self->state;
      supervisor_report r;
      r.name = st.opts.name;
      r.strategy = to_string(st.opts.strat);
      r.intensity = st.opts.intensity;
      r.period_ms = st.opts.period.count();
      r.restarts = st.total_restarts;
      for (auto& c : st.children) {
        r.children.push_back(child_report{c.spec.name, c.running, c.restarts, c.last_reason});
      }
      return r;
    },
  };
}

} // namespace

const char* to_string(strategy s) {
  switch (s) {
    case strategy::one_for_one: return "one_for_one";
    case strategy::one_for_all: return "one_for_all";
    case strategy::rest_for_one: return "rest_for_one";
  }
  return "unknown";
}

caf::error make_error(errc x) {
  return caf::error{static_cast<uint8_t>(x), caf::atom("gm_sup")};
}

caf::actor spawn_supervisor(caf::actor_system& sys, options opts,
                            std::vector<child_spec> children) {
  return sys.spawn(supervisor_impl, std::move(opts), std::move(children));
}

child_spec supervisor_child(options opts, std::vector<child_spec> children) {
  child_spec spec;
  spec.name = opts.name;
  spec.shutdown_timeout = std::chrono::milliseconds{60000};
  spec.start = [opts, children](caf::local_actor* parent) {
    return parent->spawn(supervisor_impl, opts, children);
  };
  return spec;
}

} // namespace gm::sup
