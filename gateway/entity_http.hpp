// What every route that talks to an entity shares, whatever the kind: the
// entity's reply as HTTP, the Idempotency-Key header and the digest of the
// request it guards, list paging, and the one ask from a handler to an
// entity. Kinds' route files use these instead of their own copies.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <caf/fwd.hpp>

#include "gateway/http_types.hpp"

namespace gm::actors {
struct entity_ref;
struct entity_reply;
}

namespace gm::gateway {

/// Returns the HTTP answer for an entity's reply: `ok_status` (or the
/// status of a replayed idempotent answer) with its body, or the problem
/// document its error code maps to (404, 409, 422, or one of the two 503s).
response entity_response(const actors::entity_reply& r, int ok_status);

/// Returns the caller's Idempotency-Key ("" if none), or answers 400 and
/// returns nullopt if it is malformed (empty, over 255 characters, not
/// printable ASCII, or sent twice).
std::optional<std::string> idempotency_key(const request& rq, const respond_fn& respond);

/// Returns the digest that tells a repeat of a keyed request from another
/// request under the same key (method, path and body), or "" without a key.
std::string request_hash_if_keyed(const request& rq, const std::string& key);

/// A list's paging (API.md: ?limit= 1..200, default 50; ?cursor= as this
/// API returned it, digits here).
struct page {
  int64_t limit = 50;
  std::optional<std::string> cursor;
};

/// Returns the page the query asks for, or answers 400 and returns nullopt.
std::optional<page> page_of(const request& rq, const respond_fn& respond);

/// Runs `read` once the journal has committed every row handed to it (so a
/// read of PostgreSQL sees the caller's own writes), or at once if there
/// is no journal; answers 503 if the journal fails the sync. No CAF
/// timeout: the HTTP server answers 503 after request_timeout.
void after_journal_sync(caf::event_based_actor* self, const respond_fn& respond,
                        std::function<void()> read);

/// Sends `cmd` to entity `ref` and answers with its reply (entity_response).
/// No CAF timeout: the HTTP server answers 503 after request_timeout.
void ask_entity(caf::event_based_actor* self, const actors::entity_ref& ref, caf::message cmd,
                int ok_status, respond_fn respond);

} // namespace gm::gateway
