// The gateway's own request/response values: what handlers see, free of
// Beast and CAF so that handler code and its tests stay light to compile.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace gm::gateway {

struct request {
  std::string method;
  std::string target;  // as received: path and query
  std::string path;
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string request_id;
  std::string remote_ip;
  std::map<std::string, std::string> path_params;
  // Filled by the gateway before a handler runs:
  std::string user_id;  // the caller, if the route requires a token
  std::string role;
  std::shared_ptr<nlohmann::json> json;  // the validated body, if declared

  /// Returns the first header named `name` (case-insensitive), or "".
  std::string header(std::string_view name) const;

  /// Returns how many headers are named `name` (case-insensitive).
  size_t header_count(std::string_view name) const;

  /// Returns the query parameter `name`, percent-decoded, or nullopt.
  std::optional<std::string> query_param(std::string_view name) const;
};

struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Completes a request. Thread-safe; call exactly once.
using respond_fn = std::function<void(response)>;

/// Returns an application/problem+json response (RFC 7807) whose `status`
/// field equals the HTTP status. `type` is a short slug, e.g. "not-found".
response problem(int status, std::string_view type, std::string_view title,
                 std::string_view detail);

/// Returns a JSON response with `status` and the serialized `json_body`.
response json_response(int status, std::string json_body);

/// Returns the standard reason phrase for `status` ("Not Found").
const char* reason_phrase(int status);

} // namespace gm::gateway
