// What the tests against scripts/test's PostgreSQL share: its URL, a
// statement that must succeed, and a fresh database of the test's own.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>

#include "persistence/pg.hpp"

namespace gm::test {

/// Returns the URL of the test server's database (GIGMESH_TEST_PG_URL).
inline std::string base_url() {
  const char* url = std::getenv("GIGMESH_TEST_PG_URL");
  REQUIRE_MESSAGE(url != nullptr, "GIGMESH_TEST_PG_URL is not set (run scripts/test)");
  return url;
}

/// Runs `sql`, which must succeed, and returns its result.
inline pg::result run(pg::connection& c, const std::string& sql, pg::params p = {}) {
  auto r = c.exec(sql, p);
  REQUIRE_MESSAGE(r.ok(), r.error);
  return r;
}

/// Creates a database named `prefix` plus a random number through `admin`;
/// returns its URL.
inline std::string fresh_database(pg::connection& admin, const std::string& prefix) {
  std::random_device rd;
  auto name = prefix + std::to_string(rd());
  run(admin, "CREATE DATABASE " + name);
  return base_url().substr(0, base_url().rfind('/') + 1) + name;
}

} // namespace gm::test
