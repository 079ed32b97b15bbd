// The wallet kind against the real PostgreSQL that scripts/test starts, with
// the node's own persistence service, journal and wallet shard (no HTTP):
// the money mechanism's steps where timing from outside cannot reach them.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include <caf/all.hpp>

#include "actors/kinds.hpp"
#include "actors/money/moves.hpp"
#include "actors/router.hpp"
#include "actors/topics.hpp"
#include "actors/wallet/wallet.hpp"
#include "cluster/node_info.hpp"
#include "config/config.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"
#include "tests/persistence/pg_fixture.hpp"
#include "persistence/service.hpp"
#include "supervisors/shard.hpp"

using namespace std::chrono_literals;
using namespace gm;

namespace {

using test::base_url;
using test::run;

/// A node's persistence, journal and wallet shard on a database of its own.
struct node {
  std::string url;
  pg::connection admin{base_url(), 2000ms};
  std::unique_ptr<pg::connection> db;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  caf::actor persistence;
  caf::actor journal;
  caf::actor shard;

  node() {
    url = test::fresh_database(admin, "gm_wallet_");
    db = std::make_unique<pg::connection>(url, 2000ms);
    config::settings s;
    s.pg_url = url;
    s.health_interval_ms = 50;
    persistence = persistence::spawn_service(self.ptr(), s, cluster::node_info{"test", 1, "x"});
    // The service applies the migrations on its first probe.
    for (int i = 0; i < 100; ++i) {
      auto r = db->exec("SELECT to_regclass('journal_refused') IS NOT NULL");
      if (r.ok() && r.value(0, 0) == "t") break;
      std::this_thread::sleep_for(50ms);
    }
    auto gate = std::make_shared<journal::gate>(100000);
    journal::options o;
    o.conninfo = url;
    journal = journal::spawn_journal(self.ptr(), o, gate);
    actors::kind_context ctx;
    ctx.gate = gate;
    ctx.events = std::make_shared<topics::store>();
    shard::options so;
    so.node_id = "test";
    shard = shard::spawn_shard(self.ptr(), wallet::registration().make(ctx), so);
  }

  ~node() {
    for (auto& a : {shard, journal, persistence}) {
      self->send_exit(a, caf::exit_reason::user_shutdown);
      self->wait_for(a);
    }
  }

  /// Returns a new user id with a wallet holding `balance`.
  std::string user(int64_t balance) {
    auto id = run(*db, "SELECT gen_random_uuid()").value(0, 0);
    run(*db, "INSERT INTO users (id, phone, full_name, password_hash, role) "
             "VALUES ($1, $2, 'Test', 'x', 'client')",
        {id, "+2547" + id.substr(0, 8)});
    run(*db, "INSERT INTO wallets (id, user_id, balance) VALUES (gen_random_uuid(), $1, $2)",
        {id, std::to_string(balance)});
    return id;
  }
};

} // namespace

TEST_CASE("a credit repeated while its first lookup runs is applied once, and nothing fails") {
  // A resumed saga marks every credit request as a possible repeat; two that
  // reach the receiver back to back both look the transfer up. Both read
  // `reserved`: only one may apply (the other waits, and is answered busy).
  node n;
  auto from = n.user(0);
  auto to = n.user(0);
  auto tid = run(*n.db, "SELECT gen_random_uuid()").value(0, 0);
  run(*n.db, "INSERT INTO transfers (id, from_user, to_user, amount, state, version, "
             "created_at, updated_at) VALUES ($1, $2, $3, 10, 'reserved', 1, now(), now())",
      {tid, from, to});
  auto ok = std::make_shared<std::atomic<int>>(0);
  auto busy = std::make_shared<std::atomic<int>>(0);
  auto other = std::make_shared<std::atomic<int>>(0);
  for (int i = 0; i < 2; ++i) {
    n.sys.spawn([=](caf::event_based_actor* self) {
      actors::ask(self, {wallet::type, to},
                  caf::make_message(money::credit_cmd{tid, "transfer", from, 10, "", true, true}), 10s,
                  [=](actors::entity_reply& r) {
                    if (r.ok()) {
                      ++*ok;
                    } else if (r.error() == actors::errc::unavailable) {
                      ++*busy;
                    } else {
                      ++*other;
                    }
                  });
    });
  }
  for (int i = 0; i < 200 && *ok + *busy + *other < 2; ++i) std::this_thread::sleep_for(25ms);
  REQUIRE(*ok + *busy + *other == 2);
  CHECK(*other == 0);
  CHECK(*ok >= 1);
  // Once committed, PostgreSQL holds one credit, and no row was refused
  // (the unique ledger index is only the backstop).
  for (int i = 0; i < 100; ++i) {
    if (run(*n.db, "SELECT state FROM transfers WHERE id = $1", {tid}).value(0, 0) == "settled") {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  CHECK(run(*n.db, "SELECT balance FROM wallets WHERE user_id = $1", {to}).value(0, 0) == "10");
  CHECK(run(*n.db, "SELECT count(*) FROM ledger_entries WHERE transfer_id = $1 "
                   "AND type = 'transfer_in'",
            {tid})
          .value(0, 0) == "1");
  CHECK(run(*n.db, "SELECT count(*) FROM journal_refused").value(0, 0) == "0");
  // A later repeat reads `settled` and changes nothing.
  auto again = std::make_shared<std::atomic<int>>(-1);
  n.sys.spawn([=](caf::event_based_actor* self) {
    actors::ask(self, {wallet::type, to},
                caf::make_message(money::credit_cmd{tid, "transfer", from, 10, "", true, true}), 10s,
                [=](actors::entity_reply& r) { *again = r.ok() ? 1 : 0; });
  });
  for (int i = 0; i < 200 && *again < 0; ++i) std::this_thread::sleep_for(25ms);
  CHECK(*again == 1);
  CHECK(run(*n.db, "SELECT balance FROM wallets WHERE user_id = $1", {to}).value(0, 0) == "10");
}
