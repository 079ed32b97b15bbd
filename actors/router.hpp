// The router: the one way to reach an entity. Callers name the entity by
// entity_ref and get an entity_reply back; failures of the path (no shard,
// timeout, the entity died mid-request) come back as `unavailable` replies,
// so every caller has one path to handle. In a cluster it asks placement
// (installed by cluster/) which node owns the entity, and sends commands
// for entities of other nodes to that node's cluster endpoint:
// `(fwd_atom, type, id, hops, message)`, answered by the entity there.
//
// Direct routes: for kinds that allow it (entity_kind::direct), a command
// goes straight to the entity if the router has seen it answer (the
// entity's address, remembered weakly per worker thread), skipping the
// shard's two hops. An entity that has quit, or began to passivate, refuses
// such a command undelivered (sec::request_receiver_down), and the router
// sends it through the shard instead, which activates the entity or holds
// the command meanwhile. Callers still hold no handle: the router does.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/message.hpp>

#include "actors/entity.hpp"

namespace gm::actors {

using reply_fn = std::function<void(entity_reply&)>;

/// Sends `cmd` to the entity `ref` and runs `done` on `self` with its reply
/// (or an `unavailable` reply if the path failed within `timeout`).
///
/// Each such timeout is a CAF timer: CAF 0.17 sets and cancels it through
/// its one clock thread (a lock and a wake-up each). Asks on hot paths use
/// one of the two forms below instead.
void ask(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
         std::chrono::milliseconds timeout, reply_fn done);

/// Like ask() without a deadline of its own: for callers whose wait is
/// bounded otherwise (the HTTP server answers a gateway request that is not
/// answered within `request_timeout` itself). `done` still learns if the
/// path fails (no shard, the entity stopped with the request queued).
void ask(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
         reply_fn done);

/// The open asks of one actor, with their deadlines, checked by one
/// `ask_tick_atom` message that is scheduled only while asks are open:
/// about one timer per timeout period instead of two clock events per ask.
/// The actor keeps it (a shared_ptr: replies hold it too) and hands every
/// `ask_tick_atom` to on_ask_tick().
struct ask_book {
  struct open_ask {
    std::chrono::steady_clock::time_point due;
    reply_fn done;
    std::string type;
  };
  std::unordered_map<uint64_t, open_ask> open;
  uint64_t next = 0;
  bool tick_pending = false;
};

using ask_tick_atom = caf::atom_constant<caf::atom("e_asktick")>;

/// Like the first ask(), with the deadline kept in `book` (created if null).
void ask(caf::event_based_actor* self, std::shared_ptr<ask_book>& book, const entity_ref& ref,
         caf::message cmd, std::chrono::milliseconds timeout, reply_fn done);

/// Fails the asks in `book` whose deadline passed (`unavailable`) and
/// schedules the next tick if any are left.
void on_ask_tick(caf::event_based_actor* self, ask_book& book);

/// Sends `cmd` to entity `ref` without waiting for an answer, from any
/// thread: for news whose fate the sender need not know (a notification).
void tell(caf::actor_system& sys, const entity_ref& ref, caf::message cmd);

/// Returns the shard that owns entities of `type` on this node, or an
/// invalid handle (admin requests go to it directly).
caf::actor shard_of(caf::actor_system& sys, const std::string& type);

/// Lets routers send commands for entities of `type` straight to them
/// (the shard calls this for a kind with entity_kind::direct).
void allow_direct(const std::string& type);

/// Returns true if entity `id` of `type` is live and has answered a
/// command routed from this thread with success, so it loaded (it
/// exists). A hint: false says nothing.
bool known_live(caf::actor_system& sys, const std::string& type, const std::string& id);

/// Cluster placement, installed by cluster/ when the node runs in a
/// cluster: returns true if another node owns `type:id`, with that node's
/// endpoint in `endpoint` (invalid if the node is not reachable now).
using placement_fn = bool (*)(const std::string& type, const std::string& id,
                              caf::actor& endpoint);
void set_placement(placement_fn f);

/// Returns true if this node owns `type:id` (always without a cluster).
bool owned_here(const std::string& type, const std::string& id);

/// Returns true if another node owns `type:id`, with its endpoint in
/// `endpoint` (invalid if that node is not reachable now).
bool owned_elsewhere(const std::string& type, const std::string& id, caf::actor& endpoint);

/// How long an entity that activates here must wait first, while the node
/// that owned it before (still up: the cluster changed) passivates it.
using handoff_fn = std::chrono::milliseconds (*)(const std::string& type, const std::string& id);
void set_handoff(handoff_fn f);
std::chrono::milliseconds handoff_wait(const std::string& type, const std::string& id);

/// Membership → shard: passivate the live entities this node no longer owns.
using rebalance_atom = caf::atom_constant<caf::atom("e_rebal")>;

/// Sends `msg` for entity `type:id` to this node's shard of `type` on
/// behalf of another node (the cluster endpoint), answering `rp`.
void deliver_here(caf::event_based_actor* self, const std::string& type, const std::string& id,
                  caf::message msg, caf::response_promise rp);

} // namespace gm::actors
