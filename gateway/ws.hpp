// The gateway's WebSocket endpoint (`GET /ws`): how the server decides an
// upgrade (the access token, from Authorization or ?token=) and what serves
// an accepted socket (one actor per socket).
#pragma once

#include <caf/fwd.hpp>

#include "gateway/api_context.hpp"
#include "gateway/server.hpp"

namespace gm::gateway {

/// Returns the hooks the server calls for `GET /ws`.
ws_hooks make_ws_hooks(caf::actor_system& sys, api_context_ptr ctx);

} // namespace gm::gateway
