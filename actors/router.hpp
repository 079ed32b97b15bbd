// The router: the one way to reach an entity. Callers name the entity by
// entity_ref and get an entity_reply back; failures of the path (no shard,
// timeout, the entity died mid-request) come back as `unavailable` replies,
// so every caller has one path to handle. Today it routes to the local
// shard; cluster placement plugs in here.
#pragma once

#include <chrono>
#include <functional>

#include <caf/fwd.hpp>
#include <caf/message.hpp>

#include "actors/entity.hpp"

namespace gm::actors {

using reply_fn = std::function<void(entity_reply&)>;

/// Sends `cmd` to the entity `ref` and runs `done` on `self` with its reply
/// (or an `unavailable` reply if the path failed within `timeout`).
void ask(caf::event_based_actor* self, const entity_ref& ref, caf::message cmd,
         std::chrono::milliseconds timeout, reply_fn done);

/// Returns the shard that owns entities of `type` on this node, or an
/// invalid handle (admin requests go to it directly).
caf::actor shard_of(caf::actor_system& sys, const std::string& type);

} // namespace gm::actors
