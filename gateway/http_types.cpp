// Implements the gateway's request/response helpers.
#include "gateway/http_types.hpp"

#include <strings.h>

#include <nlohmann/json.hpp>

namespace gm::gateway {

std::string request::header(std::string_view name) const {
  for (auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) {
      return v;
    }
  }
  return {};
}

response problem(int status, std::string_view type, std::string_view title,
                 std::string_view detail) {
  nlohmann::json doc = {
    {"type", "/problems/" + std::string{type}},
    {"title", std::string{title}},
    {"status", status},
    {"detail", std::string{detail}},
  };
  response r;
  r.status = status;
  r.content_type = "application/problem+json";
  // Replace invalid UTF-8 (e.g. echoed from a bad request) instead of throwing.
  r.body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

response json_response(int status, std::string json_body) {
  response r;
  r.status = status;
  r.body = std::move(json_body);
  return r;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

} // namespace gm::gateway
