// Registering a long-lived service actor under a name in CAF's registry, so
// that others can find it per use instead of keeping its handle.
#pragma once

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_registry.hpp>
#include <caf/atom.hpp>
#include <caf/local_actor.hpp>

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

} // namespace gm
