// Implements route matching and the OpenAPI document.
#include "gateway/routes.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/validation.hpp"

namespace gm::gateway {
namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;  // paths start with '/'
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    if (slash == std::string::npos) {
      out.push_back(path.substr(start));
      break;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

bool is_param(const std::string& seg) {
  return seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
}

} // namespace

route io_route(std::string method, std::string pattern, std::string summary, std::string tag,
               std::vector<std::pair<int, std::string>> responses, inline_handler h) {
  route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.summary = std::move(summary);
  r.tag = std::move(tag);
  r.responses = std::move(responses);
  r.on_io = std::move(h);
  return r;
}

route actor_route(std::string method, std::string pattern, std::string summary,
                  std::string tag, std::vector<std::pair<int, std::string>> responses,
                  actor_handler h) {
  auto r = io_route(std::move(method), std::move(pattern), std::move(summary), std::move(tag),
                    std::move(responses), nullptr);
  r.on_actor = std::move(h);
  return r;
}

route api_route(std::string method, std::string pattern, std::string summary, std::string tag,
                std::vector<std::pair<int, std::string>> responses, api_options opts,
                actor_handler h) {
  auto r = actor_route(std::move(method), std::move(pattern), std::move(summary),
                       std::move(tag), std::move(responses), std::move(h));
  r.authenticated = opts.authenticated || !opts.roles.empty();
  r.roles = std::move(opts.roles);
  r.body = std::move(opts.body);
  r.rate_limited = true;
  if (r.authenticated) {
    r.responses.emplace_back(401, "missing, invalid or expired access token");
    if (!r.roles.empty()) r.responses.emplace_back(403, "the caller's role may not do this");
  }
  if (r.body) {
    r.responses.emplace_back(400, "malformed JSON or a wrong type");
    r.responses.emplace_back(415, "the body is not application/json");
    r.responses.emplace_back(422, "valid JSON that breaks a rule");
  }
  r.responses.emplace_back(429, "rate limited (Retry-After)");
  return r;
}

void route_table::add(route r) {
  r.segments = split_path(r.pattern);
  r.index = routes_.size();
  routes_.push_back(std::make_unique<route>(std::move(r)));
}

match_result route_table::match(const std::string& method, const std::string& path) const {
  match_result out;
  if (path.empty() || path[0] != '/') {
    return out;
  }
  // Split into views on the stack: matching allocates nothing unless a
  // route with parameters matches.
  constexpr size_t max_segments = 32;
  std::array<std::string_view, max_segments> segs;
  size_t n = 0;
  std::string_view rest{path};
  rest.remove_prefix(1);
  for (;;) {
    if (n == max_segments) {
      return out;  // longer than any route
    }
    auto slash = rest.find('/');
    segs[n++] = rest.substr(0, slash);
    if (slash == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(slash + 1);
  }
  auto matches = [&](const route& r) {
    if (r.segments.size() != n) {
      return false;
    }
    for (size_t i = 0; i < n; ++i) {
      const auto& p = r.segments[i];
      if (is_param(p) ? segs[i].empty() : p != segs[i]) {
        return false;
      }
    }
    return true;
  };
  for (auto& r : routes_) {
    if (!matches(*r)) {
      continue;
    }
    out.path_known = true;
    if (r->method == method) {
      out.found = r.get();
      for (size_t i = 0; i < n; ++i) {
        if (is_param(r->segments[i])) {
          const auto& p = r->segments[i];
          out.params.emplace(p.substr(1, p.size() - 2), std::string{segs[i]});
        }
      }
      return out;
    }
  }
  if (out.path_known) {
    for (auto& r : routes_) {
      // A path two patterns match (/users/me, /users/{id}) lists a method once.
      if (matches(*r) &&
          std::find(out.allowed.begin(), out.allowed.end(), r->method) == out.allowed.end()) {
        out.allowed.push_back(r->method);
      }
    }
  }
  return out;
}

std::string route_table::openapi(const std::string& version) const {
  using nlohmann::json;
  const json problem_content = {
    {"application/problem+json", {{"schema", {{"$ref", "#/components/schemas/Problem"}}}}}};
  json paths = json::object();
  for (auto& r : routes_) {
    json op;
    op["summary"] = r->summary;
    op["tags"] = json::array({r->tag});
    std::string op_id = r->method;
    std::transform(op_id.begin(), op_id.end(), op_id.begin(), ::tolower);
    for (auto& s : r->segments) {
      op_id += "_";
      op_id += is_param(s) ? "by_" + s.substr(1, s.size() - 2) : s;
    }
    op["operationId"] = op_id;
    json params = json::array();
    for (auto& s : r->segments) {
      if (is_param(s)) {
        params.push_back({{"name", s.substr(1, s.size() - 2)},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
      }
    }
    if (!params.empty()) {
      op["parameters"] = params;
    }
    json responses = json::object();
    for (auto& [status, desc] : r->responses) {
      json resp = {{"description", desc}};
      if (status >= 400) {
        resp["content"] = problem_content;
      }
      responses[std::to_string(status)] = resp;
    }
    // The server answers these for any request before it is routed
    // (server.cpp), so every operation can get them.
    responses["4XX"] = {{"description",
                         "Another client error, possible on every route: 400 malformed "
                         "HTTP request, 413 body over the size limit, 431 header block over "
                         "the size limit"},
                        {"content", problem_content}};
    op["responses"] = responses;
    if (r->authenticated) {
      op["security"] = json::array({{{"bearerAuth", json::array()}}});
      if (!r->roles.empty()) op["x-roles"] = r->roles;
    } else {
      op["security"] = json::array();  // explicitly public: no token needed
    }
    if (r->body) {
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/json", {{"schema", r->body->to_openapi()}}}}}};
    }
    std::string method = r->method;
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    paths[r->pattern][method] = op;
  }
  json doc = {
    {"openapi", "3.0.3"},
    {"info", {{"title", "gigmesh"}, {"version", version},
              {"description", "REST API of a gigmesh node (see API.md)."}}},
    // Relative: the paths are served from the root of the node's own port.
    {"servers", json::array({{{"url", "/"}, {"description", "this node"}}})},
    {"paths", paths},
    {"components",
     {{"securitySchemes",
       {{"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}}}},
      {"schemas",
       {{"Problem",
         {{"type", "object"},
          {"required", json::array({"type", "title", "status", "detail", "errors"})},
          {"properties",
           {{"type", {{"type", "string"}}},
            {"title", {{"type", "string"}}},
            {"status", {{"type", "integer"}}},
            {"detail", {{"type", "string"}}},
            {"errors", {{"type", "array"}, {"items", {{"type", "object"}}}}}}}}}}}}},
  };
  return doc.dump(2);
}

} // namespace gm::gateway
