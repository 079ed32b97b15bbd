// The service routes every node serves: health, readiness, metrics, OpenAPI.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "gateway/routes.hpp"

namespace gm::gateway {

struct service_context {
  std::string node_id;
  std::chrono::milliseconds request_timeout{5000};
  /// Returns where rate limits are counted ("redis" or "local").
  std::function<std::string()> limiter_mode;
  /// Filled once every route is registered; served by /api/openapi.json.
  std::shared_ptr<std::string> openapi = std::make_shared<std::string>();
};

/// Adds /healthz, /readyz, /metrics and /api/openapi.json to `table`.
void add_service_routes(route_table& table, const service_context& ctx);

} // namespace gm::gateway
