// What the /api handlers share: the token codec, the password-hashing pool,
// the rate limiter, and the deadlines. Built once by the gateway service.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <caf/fwd.hpp>

#include "gateway/http_types.hpp"
#include "gateway/jwt.hpp"

namespace gm::pg {
class pool;
class connection;
}

namespace gm::actors {
struct entity_reply;
}

namespace gm::gateway {

class blocking_pool;
class rate_limiter;
class route_table;

struct api_context {
  jwt::codec tokens;
  int64_t access_ttl_s = 900;
  int64_t refresh_ttl_s = 30 * 24 * 3600;
  std::shared_ptr<blocking_pool> kdf;
  std::shared_ptr<rate_limiter> limiter;
  std::chrono::milliseconds request_timeout{5000};
  std::string node_id;  // this node's id in the cluster
  /// A password hash of nothing anyone knows: unknown accounts are checked
  /// against it so that they take as long as wrong passwords.
  std::string dummy_hash;
  /// The persistence service's pool, remembered between requests; asked for
  /// again only when that pool has stopped (persistence restarted).
  mutable std::mutex pool_mtx;
  mutable std::shared_ptr<pg::pool> pool;
};

using api_context_ptr = std::shared_ptr<const api_context>;

/// Returns a 503 problem with Retry-After, for "try again shortly".
/// 503 `/problems/unavailable`: nothing happened; any request may be retried.
response unavailable(const std::string& detail);

/// 503 `/problems/outcome-unknown`: the change may still take effect (the
/// journal could not confirm it, or no answer came in time); retry with the
/// same Idempotency-Key, which answers with the outcome once it is known.
response outcome_unknown(const std::string& detail);

/// Asks the persistence service for its pool and runs `next` with it on this
/// actor; answers 503 if persistence does not answer in time.
void with_pool(caf::event_based_actor* self, const api_context& ctx, respond_fn respond,
               std::function<void(std::shared_ptr<pg::pool>)> next);

/// Adds the Auth and Users routes of API.md to `table`.
void add_account_routes(route_table& table, api_context_ptr ctx);

/// Adds the Wallet routes of API.md to `table`.
void add_wallet_routes(route_table& table, api_context_ptr ctx);

/// Adds the Savings circles routes of API.md to `table`.
void add_circle_routes(route_table& table, api_context_ptr ctx);

/// Adds the Gigs, proposals, contracts routes of API.md to `table`.
void add_gig_routes(route_table& table, api_context_ptr ctx);

/// Adds the rider routes of API.md ("Riders and delivery tasks").
void add_rider_routes(route_table& table, api_context_ptr ctx);

/// Adds the delivery task routes of API.md ("Riders and delivery tasks"),
/// and the dispatchers' list and manual assignment (docs/api-additions.md).
void add_task_routes(route_table& table, api_context_ptr ctx, int64_t max_fee);

/// Adds the Chat rooms routes of API.md to `table`; messages hold at most
/// `max_text` characters (config chat_max_text).
void add_room_routes(route_table& table, api_context_ptr ctx, size_t max_text);

/// Adds the Admin and inspection routes of API.md to `table`.
void add_admin_routes(route_table& table, api_context_ptr ctx);

} // namespace gm::gateway
