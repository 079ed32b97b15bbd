// What every entity actor does the same way, whatever its kind: hand rows to
// the journal and learn when they committed, run database work off the CAF
// workers and continue inside the actor, answer the shard's inspection and
// passivation requests (finishing outstanding work first). Entities embed an
// `entity_core` in their state as `core`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message_handler.hpp>

#include "actors/entity.hpp"
#include "persistence/journal.hpp"

namespace gm::pg {
class connection;
}

namespace gm::actors {

struct entity_core {
  std::string id;
  int64_t version = 0;
  /// Outstanding work (journal writes, running sagas): passivation waits
  /// until it is done.
  uint32_t busy = 0;
  bool passivate_asked = false;
  const char* status = "activating";
};

/// A closure to run inside the actor that posted it. Local only.
using continuation = std::shared_ptr<std::function<void()>>;

using run_atom = caf::atom_constant<caf::atom("e_run")>;

/// Quits if passivation was asked and nothing is outstanding.
void finish_if_idle(caf::event_based_actor* self, entity_core& core);

/// Hands `rows` to the journal; runs `done(true)` inside the actor once they
/// committed (durable) or were accepted (buffered), `done(false)` if the
/// journal failed them. `core.busy` counts the write meanwhile.
void persist(caf::event_based_actor* self, entity_core& core, std::vector<journal::row> rows,
             bool durable, std::function<void(bool)> done);

/// Returns true if the journal can take more rows: check before changing
/// state, answer `unavailable` if not.
bool journal_accepting(const journal::gate& g);

/// Runs `job` on a PostgreSQL pool thread; the continuation it returns runs
/// inside `self`. If no pool is available, `failed(reason)` runs inside
/// `self` instead.
void on_pool(caf::event_based_actor* self,
             std::function<std::function<void()>(pg::connection&)> job,
             std::function<void(const std::string&)> failed);

/// Returns the handlers every entity has in every state: passivation,
/// inspection (`state_json` renders the entity's state), continuations.
template <class Self>
caf::message_handler entity_handlers(Self* self, std::function<std::string()> state_json) {
  return {
    [self](passivate_atom) {
      auto& core = self->state.core;
      core.passivate_asked = true;
      finish_if_idle(self, core);
    },
    [self, state_json](inspect_atom) {
      auto& core = self->state.core;
      entity_info i;
      i.id = core.id;
      i.status = core.status;
      i.version = core.version;
      i.mailbox = static_cast<int64_t>(self->mailbox().size());
      i.state = state_json();
      return i;
    },
    [](run_atom, const continuation& fn) { (*fn)(); },
  };
}

} // namespace gm::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(gm::actors::continuation)
