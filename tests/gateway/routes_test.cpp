// Route matching, 404/405 decisions, problem documents and the OpenAPI text.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gateway/http_types.hpp"
#include "gateway/routes.hpp"

using namespace gm::gateway;

namespace {

route make(const std::string& method, const std::string& pattern) {
  route r;
  r.method = method;
  r.pattern = pattern;
  r.summary = method + " " + pattern;
  r.tag = "test";
  r.responses = {{200, "ok"}, {404, "unknown"}};
  r.on_io = [](request&, respond_fn) {};
  return r;
}

} // namespace

TEST_CASE("a path with parameters matches and yields them by name") {
  route_table t;
  t.add(make("GET", "/api/v1/users/{id}"));
  t.add(make("GET", "/api/v1/users/me"));
  auto m = t.match("GET", "/api/v1/users/u-42");
  REQUIRE(m.found != nullptr);
  CHECK(m.found->pattern == "/api/v1/users/{id}");
  CHECK(m.params.at("id") == "u-42");
}

TEST_CASE("a known path with another method is a 405 with the allowed methods") {
  route_table t;
  t.add(make("GET", "/healthz"));
  t.add(make("POST", "/healthz"));
  auto m = t.match("DELETE", "/healthz");
  CHECK(m.found == nullptr);
  CHECK(m.path_known);
  CHECK(m.allowed == std::vector<std::string>{"GET", "POST"});
}

TEST_CASE("unknown paths, empty parameters and trailing slashes do not match") {
  route_table t;
  t.add(make("GET", "/api/v1/users/{id}"));
  CHECK_FALSE(t.match("GET", "/api/v1/users/").path_known);
  CHECK_FALSE(t.match("GET", "/api/v1/users/x/").path_known);
  CHECK_FALSE(t.match("GET", "/nope").path_known);
  CHECK_FALSE(t.match("GET", "").path_known);
  CHECK_FALSE(t.match("GET", "*").path_known);
}

TEST_CASE("a problem document carries type, title, status and detail") {
  auto r = problem(422, "invalid", "Unprocessable Entity", "amount must be positive");
  CHECK(r.status == 422);
  CHECK(r.content_type == "application/problem+json");
  auto doc = nlohmann::json::parse(r.body);
  CHECK(doc["status"] == 422);
  CHECK(doc["type"] == "/problems/invalid");
  CHECK(doc["detail"] == "amount must be positive");
  // API.md's error shape always has `errors`; empty unless validation filled it.
  CHECK(doc["errors"] == nlohmann::json::array());
}

TEST_CASE("a problem document survives invalid UTF-8 in its detail") {
  auto r = problem(404, "not-found", "Not Found", std::string{"no route for /\xff\xfe"});
  CHECK(nlohmann::json::accept(r.body));
}

TEST_CASE("the OpenAPI document lists every route with its parameters") {
  route_table t;
  t.add(make("GET", "/healthz"));
  t.add(make("GET", "/api/v1/users/{id}"));
  auto doc = nlohmann::json::parse(t.openapi("1.2.3"));
  CHECK(doc["openapi"] == "3.0.3");
  CHECK(doc["info"]["version"] == "1.2.3");
  CHECK(doc["paths"].contains("/healthz"));
  auto op = doc["paths"]["/api/v1/users/{id}"]["get"];
  CHECK(op["parameters"][0]["name"] == "id");
  CHECK(op["responses"]["404"]["content"].contains("application/problem+json"));
}

TEST_CASE("headers are found case-insensitively") {
  request rq;
  rq.headers = {{"X-Request-Id", "abc"}, {"content-type", "application/json"}};
  CHECK(rq.header("x-request-id") == "abc");
  CHECK(rq.header("Content-Type") == "application/json");
  CHECK(rq.header("missing").empty());
}
