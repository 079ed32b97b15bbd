// Implements the gateway's request/response helpers.
#include "gateway/http_types.hpp"

#include <strings.h>

#include <algorithm>

#include <nlohmann/json.hpp>

namespace gm::gateway {

namespace {

bool same_name(const std::string& k, std::string_view name) {
  return k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0;
}

} // namespace

std::string request::header(std::string_view name) const {
  for (auto& [k, v] : headers) {
    if (same_name(k, name)) return v;
  }
  return {};
}

size_t request::header_count(std::string_view name) const {
  return static_cast<size_t>(std::count_if(headers.begin(), headers.end(),
                                           [name](const auto& h) { return same_name(h.first, name); }));
}

response problem(int status, std::string_view type, std::string_view title,
                 std::string_view detail) {
  nlohmann::json doc = {
    {"type", "/problems/" + std::string{type}},
    {"title", std::string{title}},
    {"status", status},
    {"detail", std::string{detail}},
    // API.md's shape always has `errors`: per-field items for 400 and 422
    // from body validation, empty otherwise.
    {"errors", nlohmann::json::array()},
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
    case 426: return "Upgrade Required";
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

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() &&
               hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

} // namespace

std::optional<std::string> request::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto part = q.substr(0, amp);
    auto eq = part.find('=');
    auto key = part.substr(0, eq);
    if (key == name) {
      return percent_decode(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

} // namespace gm::gateway
