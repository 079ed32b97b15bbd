// The journal against the real PostgreSQL that scripts/test starts: durable
// writes are answered after commit, versions never go back, many writes
// share a batch, and sync waits for what was handed over before it.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include <caf/all.hpp>

#include "persistence/journal.hpp"
#include "persistence/pg.hpp"
#include "tests/persistence/pg_fixture.hpp"

using namespace std::chrono_literals;
using namespace gm;

namespace {

using test::base_url;
using test::run;

const journal::table_spec& things() {
  static const journal::table_spec t{
    "things", {{"id", "text"}, {"n", "bigint"}, {"version", "bigint"}}, {0}, 2,
    journal::write_mode::upsert_versioned};
  return t;
}

journal::row thing(const std::string& id, int64_t version) {
  return {&things(), version, {id, std::to_string(version * 10), std::to_string(version)}};
}

struct fixture {
  std::string url;
  pg::connection admin{base_url(), 2000ms};
  std::unique_ptr<pg::connection> db;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  caf::actor j;
  std::shared_ptr<journal::gate> gate = std::make_shared<journal::gate>(100000);

  explicit fixture(std::function<void(journal::options&)> tune = {}) {
    url = test::fresh_database(admin, "gm_journal_");
    db = std::make_unique<pg::connection>(url, 2000ms);
    run(*db, "CREATE TABLE things (id text PRIMARY KEY, n bigint NOT NULL, version bigint NOT NULL)");
    journal::options o;
    o.conninfo = url;
    o.flush_interval = 20ms;
    if (tune) tune(o);
    j = journal::spawn_journal(self.ptr(), o, gate);
  }

  ~fixture() {
    self->send_exit(j, caf::exit_reason::user_shutdown);
    self->wait_for(j);
  }

  bool write(std::vector<journal::row> rows, bool durable) {
    bool ok = false;
    self->request(j, 10s, journal::write_atom::value, std::move(rows), durable)
      .receive([&](journal::ok_atom) { ok = true; }, [](caf::error&) {});
    return ok;
  }

  journal::stats stats() {
    journal::stats s;
    self->request(j, 5s, journal::stats_atom::value)
      .receive([&](journal::stats& x) { s = x; }, [](caf::error&) {});
    return s;
  }
};

} // namespace

TEST_CASE("a durable write is answered only once its row has committed") {
  fixture f;
  REQUIRE(f.write({thing("a", 1)}, true));
  auto r = run(*f.db, "SELECT n, version FROM things WHERE id = 'a'");
  REQUIRE(r.rows.size() == 1);
  CHECK(r.value(0, 0) == "10");
  CHECK(f.gate->rows() == 0);
}

TEST_CASE("every column type arrives as written: binary arrays and literals, NULLs, odd text") {
  fixture f;
  run(*f.db, "CREATE TABLE kinds (id uuid PRIMARY KEY, big bigint, small integer, "
             "words text, at timestamptz, version bigint NOT NULL)");
  static const journal::table_spec kinds{
    "kinds",
    {{"id", "uuid"}, {"big", "bigint"}, {"small", "integer"}, {"words", "text"},
     {"at", "timestamptz"}, {"version", "bigint"}},
    {0}, 5, journal::write_mode::upsert_versioned};
  using opt = std::optional<std::string>;
  std::vector<journal::row> rows{
    {&kinds, 1,
     {opt{"0A1B2C3D-4E5F-4a6b-8c7d-9e0f1a2b3c4d"}, opt{"-9223372036854775808"}, opt{"-2147483648"},
      opt{"say \"hi\", {braces}, \\ and caf\xc3\xa9"}, opt{"2026-11-22T07:11:02.123Z"},
      opt{"1"}}},
    {&kinds, 1,
     {opt{"00000000-0000-0000-0000-000000000001"}, opt{"9223372036854775807"}, opt{"2147483647"},
      opt{""}, opt{}, opt{"1"}}},
    {&kinds, 1, {opt{"ffffffff-ffff-ffff-ffff-ffffffffffff"}, opt{}, opt{}, opt{}, opt{}, opt{"1"}}},
    // Typed values, as entities hand them over.
    {&kinds, 1,
     {journal::value::uuid(gm::packed_uuid::parse("00000000-0000-0000-0000-0000000000ab")),
      journal::value::integer(INT64_MIN), journal::value::integer(INT32_MIN),
      journal::value::integer(-42), opt{}, journal::value::integer(1)}},
  };
  bool fresh = false;
  SUBCASE("in the checking statement's arrays") {}
  SUBCASE("fresh, in a binary COPY") { fresh = true; }
  for (auto& x : rows) x.fresh = fresh;
  REQUIRE(f.write(rows, true));
  CHECK(f.stats().failures == 0);
  auto r = run(*f.db, "SELECT id, big, small, words, "
                      "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), version "
                      "FROM kinds WHERE id <> '00000000-0000-0000-0000-0000000000ab' ORDER BY id");
  REQUIRE(r.rows.size() == 3);
  CHECK(r.value(0, 0) == "00000000-0000-0000-0000-000000000001");
  CHECK(r.value(0, 1) == "9223372036854775807");
  CHECK(r.value(0, 2) == "2147483647");
  CHECK(r.value(0, 3) == "");
  CHECK_FALSE(r.rows[0][4].has_value());
  CHECK(r.value(1, 0) == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  CHECK(r.value(1, 1) == "-9223372036854775808");
  CHECK(r.value(1, 2) == "-2147483648");
  CHECK(r.value(1, 3) == "say \"hi\", {braces}, \\ and caf\xc3\xa9");
  CHECK(r.value(1, 4) == "2026-11-22 07:11:02.123");
  CHECK(r.value(1, 5) == "1");
  CHECK(r.value(2, 0) == "ffffffff-ffff-ffff-ffff-ffffffffffff");
  CHECK_FALSE(r.rows[2][1].has_value());
  CHECK_FALSE(r.rows[2][2].has_value());
  CHECK_FALSE(r.rows[2][3].has_value());
  r = run(*f.db, "SELECT big, small, words, version FROM kinds "
                 "WHERE id = '00000000-0000-0000-0000-0000000000ab'");
  REQUIRE(r.rows.size() == 1);
  CHECK(r.value(0, 0) == "-9223372036854775808");
  CHECK(r.value(0, 1) == "-2147483648");
  CHECK(r.value(0, 2) == "-42");
  CHECK(r.value(0, 3) == "1");
  // A timestamp in another format goes as a literal; PostgreSQL reads it.
  REQUIRE(f.write({{&kinds, 2,
                    {opt{"00000000-0000-0000-0000-000000000001"}, opt{}, opt{}, opt{},
                     opt{"2024-02-29 23:59:59.999+00"}, opt{"2"}}}},
                  true));
  r = run(*f.db, "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') FROM kinds "
                 "WHERE id = '00000000-0000-0000-0000-000000000001'");
  CHECK(r.value(0, 0) == "2024-02-29 23:59:59.999");
  // So does a fresh row's: its part of the batch goes in a plain INSERT
  // with literals instead of a binary COPY.
  journal::row odd{&kinds, 1,
                   {opt{"00000000-0000-0000-0000-000000000002"}, opt{"5"}, opt{}, opt{},
                    opt{"2024-03-01 00:00:00+00"}, opt{"1"}}};
  journal::row plain{&kinds, 1,
                     {opt{"00000000-0000-0000-0000-000000000003"}, opt{"6"}, opt{}, opt{}, opt{},
                      opt{"1"}}};
  odd.fresh = plain.fresh = true;
  REQUIRE(f.write({odd}, false));
  REQUIRE(f.write({plain}, true));
  r = run(*f.db, "SELECT big, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM kinds "
                 "WHERE big IN (5, 6) ORDER BY big");
  REQUIRE(r.rows.size() == 2);
  CHECK(r.value(0, 1) == "2024-03-01");
  CHECK(r.value(1, 0) == "6");
  CHECK(f.stats().failures == 0);
}

TEST_CASE("an older image never overwrites a newer one, within a batch or across batches") {
  fixture f;
  REQUIRE(f.write({thing("a", 3), thing("a", 2)}, true));
  REQUIRE(f.write({thing("a", 1)}, true));
  CHECK(run(*f.db, "SELECT version FROM things WHERE id = 'a'").value(0, 0) == "3");
  REQUIRE(f.write({thing("a", 4)}, true));
  CHECK(run(*f.db, "SELECT version FROM things WHERE id = 'a'").value(0, 0) == "4");
}

TEST_CASE("fresh rows go in a plain insert; a row wrongly marked fresh costs one failed attempt") {
  fixture f{[](journal::options& o) { o.retry_min = 10ms; }};
  auto fresh = [](journal::row r) {
    r.fresh = true;
    return r;
  };
  // A first image and a later one in one batch: still one plain insert.
  REQUIRE(f.write({fresh(thing("a", 1)), thing("a", 2)}, true));
  CHECK(run(*f.db, "SELECT version FROM things WHERE id = 'a'").value(0, 0) == "2");
  CHECK(f.stats().failures == 0);
  // "a" is in the table: the plain insert fails, and the retry upserts
  // every row of the batch by the table's rules.
  REQUIRE(f.write({fresh(thing("b", 1)), fresh(thing("a", 3))}, true));
  CHECK(run(*f.db, "SELECT version FROM things WHERE id = 'a'").value(0, 0) == "3");
  CHECK(run(*f.db, "SELECT version FROM things WHERE id = 'b'").value(0, 0) == "1");
  CHECK(f.stats().failures == 1);
  // Still by the version rule: an older image wrongly marked fresh is ignored.
  REQUIRE(f.write({fresh(thing("a", 2))}, true));
  CHECK(run(*f.db, "SELECT version FROM things WHERE id = 'a'").value(0, 0) == "3");
}

TEST_CASE("many concurrent writes share batches and all commit") {
  fixture f;
  constexpr int writes = 2000;
  std::vector<caf::actor> writers;
  auto done = std::make_shared<std::atomic<int>>(0);
  for (int i = 0; i < writes; ++i) {
    f.sys.spawn([j = f.j, i, done](caf::event_based_actor* self) {
      self->request(j, 10s, journal::write_atom::value,
                    std::vector<journal::row>{thing("w" + std::to_string(i), 1)}, true)
        .then([done](journal::ok_atom) { ++*done; }, [](caf::error&) {});
    });
  }
  for (int i = 0; i < 200 && *done < writes; ++i) std::this_thread::sleep_for(50ms);
  CHECK(*done == writes);
  CHECK(run(*f.db, "SELECT count(*) FROM things").value(0, 0) == std::to_string(writes));
  auto s = f.stats();
  CHECK(s.rows_written == writes);
  CHECK(s.batches < writes / 10);  // group commit, not a transaction per write
  MESSAGE("2000 durable writes in " << s.batches << " batches");
}

TEST_CASE("in durable mode a durable write starts a batch at once; rows nobody waits for keep the interval") {
  auto second_write_took = [](bool durable_at_once) {
    fixture f{[durable_at_once](journal::options& o) {
      o.flush_interval = 1000ms;
      o.durable_at_once = durable_at_once;
    }};
    REQUIRE(f.write({thing("a", 1)}, true));  // a quiet journal writes at once
    auto start = std::chrono::steady_clock::now();
    REQUIRE(f.write({thing("b", 1)}, true));  // within the interval of the first
    auto took = std::chrono::steady_clock::now() - start;
    if (durable_at_once) {
      // A buffered row is answered at once and waits for the interval.
      REQUIRE(f.write({thing("c", 1)}, false));
      std::this_thread::sleep_for(200ms);
      CHECK(run(*f.db, "SELECT count(*) FROM things WHERE id = 'c'").value(0, 0) == "0");
      bool synced = false;
      f.self->request(f.j, 10s, journal::sync_atom::value)
        .receive([&](journal::ok_atom) { synced = true; }, [](caf::error&) {});
      CHECK(synced);
      CHECK(run(*f.db, "SELECT count(*) FROM things WHERE id = 'c'").value(0, 0) == "1");
    }
    return took;
  };
  CHECK(second_write_took(true) < 500ms);
  CHECK(second_write_took(false) >= 700ms);  // the interval mode waits for its cadence
}

TEST_CASE("sync is answered after everything handed over before it has committed") {
  fixture f;
  REQUIRE(f.write({thing("b", 1)}, false));  // buffered: answered at once
  bool synced = false;
  f.self->request(f.j, 10s, journal::sync_atom::value)
    .receive([&](journal::ok_atom) { synced = true; }, [](caf::error&) {});
  REQUIRE(synced);
  CHECK(run(*f.db, "SELECT count(*) FROM things WHERE id = 'b'").value(0, 0) == "1");
}

namespace {

/// A journal whose PostgreSQL never answers (nothing listens on port 1):
/// what it holds never commits, and a graceful stop would wait for it, so
/// these tests kill it.
void unreachable(journal::options& o, std::chrono::milliseconds sync_timeout) {
  o.conninfo = "postgresql://postgres@127.0.0.1:1/none";
  o.connect_timeout = 200ms;
  o.sync_timeout = sync_timeout;
}

} // namespace

TEST_CASE("a sync that cannot be answered in time gets an error at the journal's deadline") {
  // Entity activation asks with caf::infinite: the deadline is the
  // journal's own. (The 10 s here only bounds the test; its timeout would
  // also say request_timeout, but not before 10 s.)
  fixture f{[](journal::options& o) { unreachable(o, 400ms); }};
  REQUIRE(f.write({thing("c", 1)}, false));  // buffered: held, never committed
  auto started = std::chrono::steady_clock::now();
  bool synced = false;
  caf::error err;
  f.self->request(f.j, 10s, journal::sync_atom::value)
    .receive([&](journal::ok_atom) { synced = true; }, [&](caf::error& e) { err = e; });
  auto took = std::chrono::steady_clock::now() - started;
  CHECK_FALSE(synced);
  CHECK(err == caf::sec::request_timeout);
  CHECK(took >= 400ms);
  CHECK(took < 5s);
  CHECK(f.gate->rows() == 1);  // the row is still held
  f.self->send_exit(f.j, caf::exit_reason::kill);
}

TEST_CASE("a journal that stops answers the syncs still waiting with an error") {
  fixture f{[](journal::options& o) { unreachable(o, 60s); }};
  REQUIRE(f.write({thing("d", 1)}, false));
  auto answer = std::async(std::launch::async, [&f] {
    caf::scoped_actor waiter{f.sys};
    caf::error err;
    bool synced = false;
    // The 10 s only bounds the test (its timeout says request_timeout).
    waiter->request(f.j, 10s, journal::sync_atom::value)
      .receive([&](journal::ok_atom) { synced = true; }, [&](caf::error& e) { err = e; });
    return std::make_pair(synced, err);
  });
  std::this_thread::sleep_for(300ms);  // the sync waits in the journal by now
  f.self->send_exit(f.j, caf::exit_reason::kill);
  REQUIRE(answer.wait_for(15s) == std::future_status::ready);
  auto [synced, err] = answer.get();
  CHECK_FALSE(synced);
  CHECK(err == caf::sec::request_receiver_down);
}

TEST_CASE("a row handed over after another (by any actor) never commits before it") {
  // Batches commit in order: when the second row's write is answered, the
  // first (written durably, its answer not awaited) is in PostgreSQL.
  fixture f;
  constexpr int pairs = 200;
  std::mutex db_mtx;  // the test's one connection, shared by the checkers
  pg::connection check{f.url, 2000ms};
  auto done = std::make_shared<std::atomic<int>>(0);
  auto missing = std::make_shared<std::atomic<int>>(0);
  for (int i = 0; i < pairs; ++i) {
    auto second = f.sys.spawn([j = f.j, i, done, missing, &db_mtx,
                               &check](caf::event_based_actor* self) -> caf::behavior {
      return {[=, &db_mtx, &check](journal::ok_atom) {
        self->request(j, 10s, journal::write_atom::value,
                      std::vector<journal::row>{thing("second" + std::to_string(i), 1)}, true)
          .then(
            [=, &db_mtx, &check](journal::ok_atom) {
              std::lock_guard<std::mutex> guard{db_mtx};
              auto r = check.exec("SELECT count(*) FROM things WHERE id = $1",
                                  {"first" + std::to_string(i)});
              if (!r.ok() || r.value(0, 0) != "1") ++*missing;
              ++*done;
              self->quit();
            },
            [](caf::error&) {});
      }};
    });
    f.sys.spawn([j = f.j, i, second](caf::event_based_actor* self) {
      std::vector<journal::row> first{thing("first" + std::to_string(i), 1)};
      self->request(j, 10s, journal::write_atom::value, std::move(first), true)
        .then([](journal::ok_atom) {}, [](caf::error&) {});
      self->send(second, journal::ok_atom::value);  // without waiting for the commit
    });
  }
  for (int i = 0; i < 200 && *done < pairs; ++i) std::this_thread::sleep_for(50ms);
  CHECK(*done == pairs);
  CHECK(*missing == 0);
}

TEST_CASE("under a stream of writes each durable write is answered after its own row commits") {
  // The writer starts the next batch itself when one commits, and the
  // journal hears of that afterwards: an answer must still wait for the
  // batch that holds its row, not the one before it.
  fixture f{[](journal::options& o) { o.durable_at_once = true; }};
  constexpr int writes = 600;
  std::mutex db_mtx;
  pg::connection check{f.url, 2000ms};
  auto done = std::make_shared<std::atomic<int>>(0);
  auto early = std::make_shared<std::atomic<int>>(0);
  for (int i = 0; i < writes; ++i) {
    f.sys.spawn([j = f.j, i, done, early, &db_mtx, &check](caf::event_based_actor* self) {
      // Spread over time, so that rows keep arriving while batches are in
      // flight.
      self->delayed_send(self, std::chrono::microseconds{(i % 50) * 400}, journal::ok_atom::value);
      self->become([=, &db_mtx, &check](journal::ok_atom) {
        auto id = "s" + std::to_string(i);
        self->request(j, 10s, journal::write_atom::value,
                      std::vector<journal::row>{thing(id, 1)}, true)
          .then(
            [=, &db_mtx, &check](journal::ok_atom) {
              std::lock_guard<std::mutex> guard{db_mtx};
              auto r = check.exec("SELECT count(*) FROM things WHERE id = $1", {id});
              if (!r.ok() || r.value(0, 0) != "1") ++*early;
              ++*done;
              self->quit();
            },
            [](caf::error&) {});
      });
    });
  }
  for (int i = 0; i < 200 && *done < writes; ++i) std::this_thread::sleep_for(50ms);
  CHECK(*done == writes);
  CHECK(*early == 0);
  auto s = f.stats();
  CHECK(s.rows_written == writes);
  CHECK(s.batches > 1);
  CHECK(f.gate->rows() == 0);
  MESSAGE(writes << " durable writes over 20 ms in " << s.batches << " batches");
}

namespace {

/// `r` tagged as written by `owner` (as entity_core's persist tags rows).
journal::row owned(journal::row r, const std::string& owner) {
  r.owner = std::make_shared<const std::string>(owner);
  return r;
}

} // namespace

TEST_CASE("a row PostgreSQL refuses fails only its owner's write; the rest of the batch commits") {
  // Every write waits in one batch (a long interval), so the refusal meets
  // the others in one transaction.
  fixture f{[](journal::options& o) { o.flush_interval = 300ms; }};
  run(*f.db, "CREATE TABLE journal_refused (id bigserial PRIMARY KEY, owner text NOT NULL, "
             "table_name text NOT NULL, row_image text NOT NULL, error text NOT NULL, "
             "created_at timestamptz NOT NULL DEFAULT now())");
  run(*f.db, "ALTER TABLE things ADD CONSTRAINT no_13 CHECK (n <> 130)");
  constexpr int writers = 9;
  std::vector<caf::response_promise> unused;
  auto ok = std::make_shared<std::atomic<int>>(0);
  auto failed = std::make_shared<std::atomic<int>>(0);
  std::vector<caf::actor> clients;
  for (int i = 0; i < writers; ++i) {
    // Writer 4 writes the row the CHECK refuses (version 13: n = 130).
    auto row = owned(thing("t" + std::to_string(i), i == 4 ? 13 : 1), "kind:" + std::to_string(i));
    clients.push_back(f.sys.spawn([j = f.j, row, ok, failed](caf::event_based_actor* self) {
      self->request(j, 10s, journal::write_atom::value, std::vector<journal::row>{row}, true)
        .then([ok](journal::ok_atom) { ++*ok; }, [failed](caf::error&) { ++*failed; });
    }));
  }
  for (int i = 0; i < 200 && *ok + *failed < writers; ++i) std::this_thread::sleep_for(50ms);
  CHECK(*ok == writers - 1);
  CHECK(*failed == 1);
  CHECK(run(*f.db, "SELECT count(*) FROM things").value(0, 0) == std::to_string(writers - 1));
  CHECK(run(*f.db, "SELECT count(*) FROM things WHERE id = 't4'").value(0, 0) == "0");
  // Nothing is dropped: the refused row is parked with its owner and error.
  auto parked = run(*f.db, "SELECT owner, table_name, row_image, error FROM journal_refused");
  REQUIRE(parked.rows.size() == 1);
  CHECK(parked.value(0, 0) == "kind:4");
  CHECK(parked.value(0, 1) == "things");
  CHECK(parked.value(0, 2) == "{\"t4\",\"130\",\"13\"}");
  CHECK(parked.value(0, 3).find("no_13") != std::string::npos);
  // The journal goes on: the next write commits at once.
  CHECK(f.write({owned(thing("after", 1), "kind:x")}, true));
  auto s = f.stats();
  CHECK(s.refused_rows == 1);
  CHECK(s.last_refused.find("kind:4") == 0);
  CHECK(s.failing_ms == 0);
  CHECK(f.gate->rows() == 0);
}

TEST_CASE("a versioned row PostgreSQL already holds newer is counted as stale, not dropped silently") {
  fixture f;
  REQUIRE(f.write({thing("s", 5)}, true));
  REQUIRE(f.write({thing("s", 3)}, true));  // an older image: PostgreSQL keeps 5
  CHECK(run(*f.db, "SELECT version FROM things WHERE id = 's'").value(0, 0) == "5");
  CHECK(f.stats().stale_rows == 1);
}

TEST_CASE("rows that piled up go out in batches of about batch_max, never splitting a write") {
  // The table is locked at first, so the first batch waits and everything
  // after it piles up (as during an outage); then the lock goes.
  fixture f{[](journal::options& o) {
    o.batch_max = 10;
    o.flush_interval = 1ms;
  }};
  run(*f.db, "BEGIN");
  run(*f.db, "LOCK TABLE things IN ACCESS EXCLUSIVE MODE");
  auto answered = std::make_shared<std::atomic<int>>(0);
  constexpr int writes = 40;
  for (int i = 0; i < writes; ++i) {
    std::vector<journal::row> rows{thing("p" + std::to_string(i) + "a", 1),
                                   thing("p" + std::to_string(i) + "b", 1),
                                   thing("p" + std::to_string(i) + "c", 1)};
    f.sys.spawn([j = f.j, rows, answered](caf::event_based_actor* self) {
      self->request(j, 10s, journal::write_atom::value, rows, true)
        .then([answered](journal::ok_atom) { ++*answered; }, [](caf::error&) {});
    });
  }
  for (int i = 0; i < 20 && f.stats().pending < 3 * writes - 9; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  CHECK(*answered == 0);
  run(*f.db, "COMMIT");
  for (int i = 0; i < 200 && *answered < writes; ++i) std::this_thread::sleep_for(50ms);
  REQUIRE(*answered == writes);
  CHECK(run(*f.db, "SELECT count(*) FROM things").value(0, 0) == std::to_string(3 * writes));
  auto s = f.stats();
  // Writes of 3 rows, at most 10 a batch: 9 rows each, and no write split.
  CHECK(s.batches >= (3 * writes) / 9);
  CHECK(s.last_batch_rows <= 10);
  CHECK(s.last_batch_rows % 3 == 0);
}
