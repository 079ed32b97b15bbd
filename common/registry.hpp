// Registering a long-lived service actor under a name in CAF's registry, so
// that others can find it per use instead of keeping its handle.
#pragma once

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_registry.hpp>
#include <caf/atom.hpp>
#include <caf/local_actor.hpp>

#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace gm {

/// Puts `self` in the registry under `name` until it terminates. The registry
/// holds a strong reference, so the entry must go when the actor does (or the
/// actor system waits for it forever); only our own entry is erased, never
/// that of a successor that already registered.
inline void register_as(caf::local_actor* self, caf::atom_value name) {
  auto& sys = self->system();
  sys.registry().put(name, caf::actor_cast<caf::strong_actor_ptr>(self));
  self->attach_functor([sys = &sys, me = self->address(), name](const caf::error&) {
    auto current = sys->registry().get(name);
    if (current && current->address() == me) {
      sys->registry().erase(name);
    }
  });
}

/// Returns the actor registered under `name`, or an invalid handle.
inline caf::actor find_registered(caf::actor_system& sys, caf::atom_value name) {
  return caf::actor_cast<caf::actor>(sys.registry().get(name));
}

/// Names of any length (CAF 0.17's registry keys are atoms: at most 10
/// characters, and atom_from_string returns the empty atom for longer
/// names, so `shard:savings_circle` and `shard:gig_contract` would collide).
/// The entries hold the actor weakly: a lookup of one that has exited
/// finds nothing.
class name_registry {
public:
  static name_registry& instance() {
    static name_registry r;
    return r;
  }
  void put(const caf::actor_system* sys, const std::string& name, caf::actor_addr who) {
    std::lock_guard<std::mutex> lock{m_};
    names_[{sys, name}] = std::move(who);
  }
  caf::actor get(const caf::actor_system* sys, const std::string& name) {
    std::lock_guard<std::mutex> lock{m_};
    auto it = names_.find({sys, name});
    return it == names_.end() ? caf::actor{} : caf::actor_cast<caf::actor>(it->second);
  }
  /// Erases `name` if `who` still holds it (not a successor).
  void erase(const caf::actor_system* sys, const std::string& name, const caf::actor_addr& who) {
    std::lock_guard<std::mutex> lock{m_};
    auto it = names_.find({sys, name});
    if (it != names_.end() && it->second == who) names_.erase(it);
  }

private:
  std::mutex m_;
  std::map<std::pair<const caf::actor_system*, std::string>, caf::actor_addr> names_;
};

/// Puts `self` under `name` (any length) until it terminates.
inline void register_as(caf::local_actor* self, const std::string& name) {
  auto* sys = &self->system();
  name_registry::instance().put(sys, name, self->address());
  self->attach_functor([sys, me = self->address(), name](const caf::error&) {
    name_registry::instance().erase(sys, name, me);
  });
}

/// Returns the actor registered under `name` with register_as(self,
/// std::string), or an invalid handle.
inline caf::actor find_registered(caf::actor_system& sys, const std::string& name) {
  return name_registry::instance().get(&sys, name);
}

} // namespace gm
