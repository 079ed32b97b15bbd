// The entity runtime's vocabulary: how an entity is named (entity_ref), what
// every entity answers (entity_reply with a domain error code), and the
// messages between router, shards and entities. Light on purpose: CAF atoms
// and types only, no actor code.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

namespace gm::actors {

/// Names one entity: its kind ("wallet") and its id. Callers address
/// entities by ref through the router and never keep an actor handle.
struct entity_ref {
  std::string type;
  std::string id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, entity_ref& x) {
  return f(caf::meta::type_name("gm_entity_ref"), x.type, x.id);
}

/// What went wrong, in domain terms; the gateway maps these to HTTP. The
/// values are stored (idempotency_keys.error_code): never renumber them.
enum class errc : int32_t {
  ok = 0,
  not_found = 1,           // no such entity
  invalid = 2,             // breaks a rule (e.g. transfer to oneself, overflow)
  insufficient_funds = 3,  // the balance does not cover it
  conflict = 4,            // state conflict
  in_progress = 5,         // the same idempotency key is still being handled
  key_reused = 6,          // the same idempotency key with a different body
  unavailable = 7,         // nothing happened: try again shortly (journal full, database down)
  outcome_unknown = 8,     // the change may still take effect: retry with the same key
  forbidden = 9,           // the caller may not do this (a role or ownership rule)
};

const char* to_string(errc x);

/// The answer of every entity command. `body` is a JSON document (the
/// entity's view of the result); `version` the entity's version after it.
struct entity_reply {
  int32_t code = 0;  // errc
  std::string detail;
  std::string body;
  int64_t version = 0;
  int32_t status_hint = 0;  // for replayed idempotent answers: the first status

  errc error() const noexcept { return static_cast<errc>(code); }
  bool ok() const noexcept { return code == 0; }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, entity_reply& x) {
  return f(caf::meta::type_name("gm_entity_reply"), x.code, x.detail, x.body, x.version,
           x.status_hint);
}

/// Returns a reply with `code` and `detail`.
entity_reply fail(errc code, std::string detail);

/// Returns a successful reply with `body` (JSON) at `version`.
entity_reply success(std::string body, int64_t version);

/// What the console sees of one live entity.
struct entity_info {
  std::string type;
  std::string id;
  std::string node;
  std::string status;  // activating | active | passivating | failed
  int64_t version = 0;
  int64_t mailbox = 0;
  int64_t restarts = 0;
  int64_t idle_ms = 0;
  int64_t messages = 0;  // commands handled since activation
  std::string state;  // JSON, filled for single-entity inspection
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, entity_info& x) {
  return f(caf::meta::type_name("gm_entity_info"), x.type, x.id, x.node, x.status, x.version,
           x.mailbox, x.restarts, x.idle_ms, x.messages, x.state);
}

// Router → shard: `(fwd_atom, id, message)`, answered by the entity.
using fwd_atom = caf::atom_constant<caf::atom("e_fwd")>;
// Shard → entity: stop after what is queued (flush first). Admin → shard:
// `(passivate_atom, id)` → bool (was it live).
using passivate_atom = caf::atom_constant<caf::atom("e_passiv")>;
// Entity → shard: `(gone_atom, id)`: passivate me now (not found, or my
// load failed), answering what is queued first.
using gone_atom = caf::atom_constant<caf::atom("e_gone")>;
// Admin → shard: `(kill_atom, id)` → bool: crash it on purpose.
using kill_atom = caf::atom_constant<caf::atom("e_kill")>;
// Admin → shard: `(list_atom, limit)` → std::vector<entity_info>;
// `(inspect_atom, id)` → entity_info; shard → entity: `(inspect_atom)` →
// entity_info (status, version, mailbox, state).
using list_atom = caf::atom_constant<caf::atom("e_list")>;
using inspect_atom = caf::atom_constant<caf::atom("e_inspect")>;
// Shard → entity: `(stats_atom)` → entity_info without its state (status,
// version, mailbox, messages): cheap enough to ask every live entity when
// the console sorts them by mailbox. Served by every kind's command table.
using stats_atom = caf::atom_constant<caf::atom("e_stats")>;
// Admin → shard: `(count_atom)` → int64 live entities.
using count_atom = caf::atom_constant<caf::atom("e_count")>;
// Anyone → entity, through the router: `(exists_atom)` → ok with an empty
// body if the entity exists, not_found if it does not. Once an entity has
// told its shard that it loaded (`loaded_atom`), the shard answers this
// itself, without a hop to the entity.
using exists_atom = caf::atom_constant<caf::atom("e_exists")>;
// Entity → shard: `(loaded_atom, id)`: my state is loaded, so I exist.
// The shard forgets it when the entity exits (crash or passivation), so a
// kind whose entities can be deleted must passivate one when it is.
using loaded_atom = caf::atom_constant<caf::atom("e_loaded")>;
// Entity → shard: `(deleted_atom, id)`: I no longer exist (a closed room,
// an ended contract): stop answering `exists_atom` for me at once, before
// I passivate. For kinds whose entities end.
using deleted_atom = caf::atom_constant<caf::atom("e_deleted")>;
// Entity → shard: `(touch_atom, id)`: I am serving commands (that reach me
// straight from routers, which the shard does not see); restart my idle
// clock. Sent at most about once a second (see note_command).
using touch_atom = caf::atom_constant<caf::atom("e_touch")>;

/// An entity kind: its name and how to start one. The shard for the kind
/// activates, passivates and restarts entities through this; nothing in the
/// runtime knows what a wallet is.
struct entity_kind {
  std::string type;
  /// Spawns entity `id` from the shard (the shard links and monitors it).
  /// The entity loads its state, serves commands, and answers `inspect_atom`
  /// and `passivate_atom`.
  std::function<caf::actor(caf::local_actor* shard, const std::string& id)> spawn;
  /// Runs once when the shard starts (e.g. resume work a crash left pending).
  std::function<void(caf::local_actor* shard)> on_start;
  /// Optional: lets the shard pass on what it knows of an entity's peers of
  /// the same kind. Called with each command the shard is about to deliver
  /// and a predicate `loaded(id)` (true if that entity has told the shard it
  /// loaded, so it exists); may rewrite the command in place, e.g. to spare
  /// the entity an `exists_atom` round trip to the shard.
  std::function<void(caf::message& cmd, const std::function<bool(const std::string&)>& loaded)>
    annotate;
  /// Whether routers may send commands straight to a live entity of this
  /// kind, skipping the shard (see router.hpp). Such a kind's entities call
  /// note_command() (entity_core.hpp) first for every command.
  bool direct = false;
};

} // namespace gm::actors
