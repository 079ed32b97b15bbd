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
#include <caf/make_message.hpp>
#include <caf/scheduled_actor.hpp>

#include "actors/entity.hpp"
#include "persistence/journal.hpp"

namespace gm::pg {
class connection;
}
namespace gm::metrics {
class histogram;
}

namespace gm::actors {

struct entity_core {
  std::string id;
  /// The entity's kind (a static string: entity_kind::type's storage).
  const char* type = "";
  /// "type:id", made on the first write: what the journal tags its rows
  /// with, so a refusal fails this entity only.
  std::shared_ptr<const std::string> owner;
  int64_t version = 0;
  /// Outstanding work (journal writes, running sagas): passivation waits
  /// until it is done.
  uint32_t busy = 0;
  bool passivate_asked = false;
  /// Passivation was asked while the entity was serving: every command it
  /// gets from then on came straight from a router (the shard holds what
  /// it gets once it passivates), and is refused (note_command).
  bool refuse_commands = false;
  /// When this entity last told its shard it serves commands, in steps of
  /// 256 ms of the steady clock (wraps; see note_command).
  uint16_t touched = 0;
  const char* status = "activating";
  /// Commands handled since activation (the console's "messages").
  uint64_t handled = 0;
  /// gigmesh_entity_mailbox_depth{type}, found on the first command.
  metrics::histogram* mailbox_depth = nullptr;
};

/// Counts a command served (entity_core::handled) and observes the depth
/// of the mailbox behind it in /metrics' mailbox-depth histogram.
void note_handled(caf::event_based_actor* self, entity_core& core);

/// A closure to run inside the actor that posted it. Local only.
using continuation = std::shared_ptr<std::function<void()>>;

using run_atom = caf::atom_constant<caf::atom("e_run")>;

/// Quits if passivation was asked and nothing is outstanding.
void finish_if_idle(caf::event_based_actor* self, entity_core& core);

/// Hands `rows` to the journal, tagged with `core`'s owner; runs
/// `done(true)` inside the actor once they committed (durable) or were
/// accepted (buffered), `done(false)` if the journal failed them (it
/// stopped, or PostgreSQL refused them for good: then the entity should
/// fail_entity()). `core.busy` counts the write meanwhile.
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

/// Activation: waits until the journal has committed every row handed to it
/// (so PostgreSQL holds everything an earlier activation acknowledged), then
/// runs `job` on a pool thread and the continuation it returns inside
/// `self`. `failed(reason)` runs inside `self` if either step fails. Until
/// then the entity should skip commands (`set_default_handler(caf::skip)`).
void load_after_sync(caf::event_based_actor* self,
                     std::function<std::function<void()>(pg::connection&)> job,
                     std::function<void(const std::string&)> failed);

/// An entity's activation load through load_after_sync: `load(c, id)` runs
/// on a pool thread, `done(self, loaded)` inside the entity; a failure
/// arrives as a `Loaded` whose `error` says why.
template <class Self, class Loaded>
void load_entity(Self* self, Loaded (*load)(pg::connection&, const std::string&),
                 void (*done)(Self*, Loaded&)) {
  auto id = self->state.core.id;
  load_after_sync(
    self,
    [self, id, load, done](pg::connection& c) -> std::function<void()> {
      auto l = load(c, id);
      return [self, l, done]() mutable { done(self, l); };
    },
    [self, done](const std::string& why) {
      Loaded l;
      l.error = why;
      done(self, l);
    });
}

/// Asks the shard of `type` to passivate this entity: used when activation
/// found no row (or failed), after the default handler answers what waits.
void ask_to_passivate(caf::event_based_actor* self, const std::string& type,
                      const std::string& id);

/// Tells the shard of `type` that this entity loaded its state: from then
/// on the shard answers `exists_atom` for it without a hop.
void announce_loaded(caf::event_based_actor* self, const std::string& type,
                     const std::string& id);

/// Tells the shard of `type` that this entity no longer exists (it was
/// deleted or ended for good): the shard stops answering `exists_atom`
/// for it. The entity should then answer not_found and passivate.
void announce_deleted(caf::event_based_actor* self, const std::string& type,
                      const std::string& id);

/// For kinds whose entities take commands straight from routers
/// (entity_kind::direct): call first for every command. Returns true if
/// the command must be refused with refused_command(): passivation began
/// while this entity was serving, so the command came straight from a
/// router, which sends it again through the shard (which holds it for the
/// next activation). Otherwise tells the shard of `type`, at most about
/// once a second, that this entity serves commands: the shard does not
/// see those that skip it, and would take the entity for idle.
bool note_command(caf::event_based_actor* self, const char* type, entity_core& core);

/// The refusal note_command() asks for: what CAF answers for an actor that
/// has quit, which routers take as "not delivered, try the shard".
caf::error refused_command();

/// Marks passivation as asked; quits now if nothing is outstanding.
void on_passivate(caf::event_based_actor* self, entity_core& core);

/// Returns what the shard's inspection shows of this entity.
entity_info describe(caf::event_based_actor* self, const entity_core& core, std::string state);

/// Returns the handlers every entity has in every state: passivation,
/// inspection (`state_json` renders the entity's state), continuations.
/// Long-lived behaviors list the same three cases inline instead (one
/// handler object per actor is smaller than two joined with or_else).
template <class Self>
caf::message_handler entity_handlers(Self* self, std::string (*state_json)(Self*)) {
  return {
    [self](passivate_atom) { on_passivate(self, self->state.core); },
    [self, state_json](inspect_atom) {
      return describe(self, self->state.core, state_json(self));
    },
    [](run_atom, const continuation& fn) { (*fn)(); },
  };
}

/// Makes the entity answer every command with `code` and `detail` from now
/// on (it has no row, or could not load it), and asks its shard to
/// passivate it; `status` is what the console shows meanwhile.
template <class Self>
void give_up(Self* self, const std::string& type, errc code, std::string detail,
             const char* status, std::string (*state_json)(Self*)) {
  self->state.core.status = status;
  auto reply = caf::make_message(fail(code, std::move(detail)));
  self->set_default_handler(
    [reply](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
      return reply;
    });
  self->become(entity_handlers(self, state_json));
  ask_to_passivate(self, type, self->state.core.id);
}

/// Logs and counts that entity `type:id` failed (the journal refused or
/// lost its rows), and asks its shard to passivate it after a short hold,
/// during which it shows as failed.
void note_failed(caf::event_based_actor* self, const std::string& type, const std::string& id);

/// The journal refused or lost this entity's rows: its state may be ahead
/// of PostgreSQL. From now on it answers every command `unavailable` and
/// shows as failed (admin API, metrics, /readyz details through the
/// journal's refusals); after a short hold its shard passivates it, and its
/// next activation loads what PostgreSQL holds. Other entities go on.
template <class Self>
void fail_entity(Self* self, const std::string& type, std::string (*state_json)(Self*)) {
  note_failed(self, type, self->state.core.id);
  self->state.core.status = "failed";
  auto reply = caf::make_message(
    fail(errc::unavailable, "this " + type + " could not store a change; it reloads shortly"));
  self->set_default_handler(
    [reply](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
      return reply;
    });
  self->become(entity_handlers(self, state_json));
}

} // namespace gm::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(gm::actors::continuation)
