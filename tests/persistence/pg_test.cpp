// The PostgreSQL pool and migrations against the real server that
// scripts/test starts (GIGMESH_TEST_PG_URL).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "persistence/migrations.hpp"
#include "persistence/pg.hpp"

using namespace std::chrono_literals;
using namespace gm::pg;

namespace {

std::string pg_url() {
  const char* url = std::getenv("GIGMESH_TEST_PG_URL");
  REQUIRE_MESSAGE(url != nullptr, "GIGMESH_TEST_PG_URL is not set (run scripts/test)");
  return url;
}

result run(pool& p, std::string sql, params args = {}) {
  std::promise<result> done;
  auto fut = done.get_future();
  REQUIRE(p.query(std::move(sql), std::move(args),
                  [&done](result r) { done.set_value(std::move(r)); }));
  REQUIRE(fut.wait_for(10s) == std::future_status::ready);
  return fut.get();
}

/// Returns the URL of a new, empty database on the test server.
std::string fresh_database(pool& admin) {
  std::random_device rd;
  auto name = "gm_test_" + std::to_string(rd());
  auto r = run(admin, "CREATE DATABASE " + name);
  REQUIRE_MESSAGE(r.ok(), r.error);
  auto url = pg_url();
  auto slash = url.rfind('/');
  return url.substr(0, slash + 1) + name;
}

} // namespace

TEST_CASE("a query returns rows, columns and NULLs; parameters are bound") {
  pool p{pg_url(), 2, 2000ms};
  p.start();
  auto r = run(p, "SELECT $1::int + 1 AS n, NULL::text AS missing, 'x' AS s", {"41"});
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.columns == std::vector<std::string>{"n", "missing", "s"});
  CHECK(r.value(0, 0) == "42");
  CHECK_FALSE(r.rows[0][1].has_value());
  CHECK(r.value(0, 1, "fallback") == "fallback");
}

TEST_CASE("a server-side error is a result with its SQLSTATE, not an exception") {
  pool p{pg_url(), 1, 2000ms};
  p.start();
  auto r = run(p, "SELEC 1");
  CHECK_FALSE(r.ok());
  CHECK(r.sqlstate == "42601");
  // The connection stays usable after the error.
  CHECK(run(p, "SELECT 1").ok());
}

TEST_CASE("a transaction runs its statements in one go, all or nothing") {
  connection c{pg_url(), 2000ms};
  auto table = "gm_tx_" + std::to_string(std::random_device{}());
  REQUIRE(c.exec("CREATE TABLE " + table + " (k int PRIMARY KEY, v text NOT NULL)").ok());
  std::string insert = "INSERT INTO " + table + " SELECT * FROM unnest($1::int[], $2::text[])";
  std::string update = "UPDATE " + table + " SET v = $1 WHERE k = $2::int";
  params rows{std::string{"{1,2}"}, std::string{"{a,b}"}};
  params change{std::string{"c"}, std::string{"2"}};
  size_t failed = 99;
  auto r = c.transaction({{&insert, &rows}, {&update, &change}}, &failed);
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(c.exec("SELECT string_agg(v, ',' ORDER BY k) FROM " + table).value(0, 0) == "a,c");
  // The second statement fails (a NULL into NOT NULL): the first, which
  // alone would succeed, is not committed either.
  params more{std::string{"{3}"}, std::string{"{d}"}};
  params bad{std::nullopt, std::string{"1"}};
  r = c.transaction({{&insert, &more}, {&update, &bad}}, &failed);
  CHECK_FALSE(r.ok());
  CHECK(r.sqlstate == "23502");
  CHECK(failed == 1);
  CHECK(c.exec("SELECT count(*) FROM " + table).value(0, 0) == "2");
  // A statement the server cannot even prepare fails in its place, and
  // the statements before it are not committed either.
  std::string broken = "UPDATE " + table + " SET v = $1 WHERE nonsense = $2::int";
  r = c.transaction({{&insert, &more}, {&broken, &change}}, &failed);
  CHECK_FALSE(r.ok());
  CHECK(failed == 1);
  CHECK(c.exec("SELECT count(*) FROM " + table).value(0, 0) == "2");
  // The connection is usable after, in and out of transactions.
  r = c.transaction({{&insert, &more}}, &failed);
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(c.exec("SELECT count(*) FROM " + table).value(0, 0) == "3");
  CHECK(c.exec("DROP TABLE " + table).ok());
}

TEST_CASE("an unreachable server is an error result within the connect timeout") {
  pool p{"postgresql://postgres@127.0.0.1:1/none", 1, 2000ms};
  p.start();
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(p, "SELECT 1");
  CHECK_FALSE(r.ok());
  CHECK(r.error.find("connect") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("the pool refuses work beyond its queue bound and after stop") {
  pool p{pg_url(), 1, 2000ms, 2};
  // Not started: nothing drains the queue, so the bound is reached at once.
  std::atomic<int> ran{0};
  CHECK(p.submit([&](connection&) { ++ran; }));
  CHECK(p.submit([&](connection&) { ++ran; }));
  CHECK_FALSE(p.submit([&](connection&) { ++ran; }));
  CHECK(p.stats().rejected == 1);
  p.stop();
  CHECK(ran == 2);  // queued work is not dropped at stop
  CHECK_FALSE(p.submit([&](connection&) { ++ran; }));
}

TEST_CASE("nodes migrating one database at once apply each migration exactly once") {
  pool admin{pg_url(), 1, 2000ms};
  admin.start();
  auto url = fresh_database(admin);
  constexpr int nodes = 4;
  std::vector<std::thread> threads;
  std::vector<migrate_outcome> outcomes(nodes);
  for (int i = 0; i < nodes; ++i) {
    threads.emplace_back([&, i] {
      connection c{url, 2000ms};
      outcomes[i] = migrate(c, builtin_migrations());
    });
  }
  for (auto& t : threads) t.join();
  int applied = 0;
  for (auto& o : outcomes) {
    CHECK_MESSAGE(o.ok, o.error);
    applied += o.applied_now;
  }
  // Expect: one node applied everything, the others found it done.
  CHECK(applied == static_cast<int>(builtin_migrations().size()));
  pool check{url, 1, 2000ms};
  check.start();
  auto r = run(check, "SELECT count(*), count(DISTINCT version) FROM schema_migrations");
  CHECK(r.value(0, 0) == std::to_string(builtin_migrations().size()));
  CHECK(r.value(0, 1) == r.value(0, 0));
  // Running again changes nothing.
  connection c{url, 2000ms};
  auto again = migrate(c, builtin_migrations());
  CHECK(again.ok);
  CHECK(again.applied_now == 0);
  c.reset();
  check.stop();
  auto db = url.substr(url.rfind('/') + 1);
  CHECK(run(admin, "DROP DATABASE " + db).ok());
}

TEST_CASE("a migration that fails leaves nothing applied") {
  pool admin{pg_url(), 1, 2000ms};
  admin.start();
  auto url = fresh_database(admin);
  std::vector<migration> broken = builtin_migrations();
  broken.push_back({static_cast<int>(broken.size()) + 1, "broken", "CREATE TABLE nodes (x int)"});
  connection c{url, 2000ms};
  auto out = migrate(c, broken);
  CHECK_FALSE(out.ok);
  CHECK(out.error.find("already exists") != std::string::npos);
  auto r = c.exec("SELECT to_regclass('schema_migrations') IS NULL");
  CHECK(r.value(0, 0) == "t");  // the whole transaction rolled back
  c.reset();
  auto db = url.substr(url.rfind('/') + 1);
  CHECK(run(admin, "DROP DATABASE " + db).ok());
}
