// The route table: one entry per route with the handler and the metadata the
// OpenAPI document is built from. Matching knows nothing of sockets.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "gateway/http_types.hpp"

namespace gm::gateway {

struct body_schema;

/// Runs on a Beast io thread: must be quick and must not block.
using inline_handler = std::function<void(request&, respond_fn)>;

/// Runs on a gateway actor, which may make CAF requests (with timeouts and
/// error handlers) and responds when they complete.
using actor_handler = std::function<void(caf::event_based_actor*, request&, respond_fn)>;

struct route {
  std::string method;   // "GET", "POST", ...
  std::string pattern;  // "/api/v1/users/{id}"
  std::string summary;
  std::string tag;
  std::vector<std::pair<int, std::string>> responses;  // status, description
  inline_handler on_io;   // exactly one of on_io / on_actor is set
  actor_handler on_actor;
  // Checked by the gateway before the handler runs (actor routes only):
  bool authenticated = false;        // a valid access token is required
  std::vector<std::string> roles;    // if not empty: the token's role must be one
  bool rate_limited = false;         // counted against the per-IP/per-user limits
  std::shared_ptr<const body_schema> body;  // the body must match it
  std::vector<std::string> segments;  // pattern split on '/'
  size_t index = 0;                   // position in the table (metrics)
};

/// Returns a route answered on the io thread.
route io_route(std::string method, std::string pattern, std::string summary, std::string tag,
               std::vector<std::pair<int, std::string>> responses, inline_handler h);

/// Returns a route answered by a gateway actor.
route actor_route(std::string method, std::string pattern, std::string summary,
                  std::string tag, std::vector<std::pair<int, std::string>> responses,
                  actor_handler h);

struct api_options {
  bool authenticated = false;
  std::vector<std::string> roles;
  std::shared_ptr<const body_schema> body;
};

/// Returns a rate-limited /api route answered by a gateway actor.
route api_route(std::string method, std::string pattern, std::string summary, std::string tag,
                std::vector<std::pair<int, std::string>> responses, api_options opts,
                actor_handler h);

struct match_result {
  const route* found = nullptr;
  bool path_known = false;             // some route has this path (405 if !found)
  std::vector<std::string> allowed;    // methods for the path, for Allow
  std::map<std::string, std::string> params;
};

class route_table {
public:
  /// Adds `r`; its pattern's `{name}` segments become path parameters.
  void add(route r);
  /// Returns the route for `method` and `path`, its parameters, or why not.
  match_result match(const std::string& method, const std::string& path) const;
  const std::vector<std::unique_ptr<route>>& all() const noexcept { return routes_; }
  /// Returns the OpenAPI 3 document describing every route, as JSON text.
  std::string openapi(const std::string& version) const;

private:
  std::vector<std::unique_ptr<route>> routes_;
};

} // namespace gm::gateway
