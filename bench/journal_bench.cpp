// Journal rows per second against one PostgreSQL: the write-behind journal
// (group commit, multi-row upserts) versus one transaction per change (an
// autocommitted single-row upsert per change, from 8 connections), each for
// the same number of seconds in the same run.
//
//   journal_bench <postgresql url> [seconds per side (10)] [durable|interval|eager]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

using namespace std::chrono;
using namespace gm;

namespace {

const journal::table_spec& rows_table() {
  static const journal::table_spec t{
    "bench_rows", {{"id", "text"}, {"n", "bigint"}, {"version", "bigint"}}, {0}, 2,
    journal::write_mode::upsert_versioned};
  return t;
}

using tick_atom = caf::atom_constant<caf::atom("b_tick")>;

/// Keeps `window` durable one-row writes outstanding until `until`, as an
/// entity would (rows of its own, `r<no>-<n>`).
caf::behavior driver(caf::event_based_actor* self, caf::actor j, size_t no, size_t window,
                     steady_clock::time_point until, std::shared_ptr<std::atomic<int64_t>> acked) {
  auto next = std::make_shared<int64_t>(0);
  auto send_one = std::make_shared<std::function<void()>>();
  auto prefix = "r" + std::to_string(no) + "-";
  *send_one = [self, j, until, acked, next, send_one, prefix] {
    if (steady_clock::now() >= until) return;
    auto id = prefix + std::to_string((*next)++);
    std::vector<journal::row> rows{{&rows_table(), 1, {id, std::string{"1"}, std::string{"1"}}}};
    self->request(j, caf::infinite, journal::write_atom::value, std::move(rows), true)
      .then(
        [acked, send_one](journal::ok_atom) {
          ++*acked;
          (*send_one)();
        },
        [](caf::error&) {});
  };
  // send_one refers to itself: break the cycle when the driver ends, or it
  // keeps the journal handle (and so the journal) alive forever.
  self->attach_functor([send_one] { *send_one = nullptr; });
  for (size_t i = 0; i < window; ++i) (*send_one)();
  return {[](tick_atom) {}};
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: journal_bench <postgresql url> [seconds] [durable|interval|eager]\n");
    return 2;
  }
  std::string url = argv[1];
  int secs = argc > 2 ? std::stoi(argv[2]) : 10;
  std::string mode = argc > 3 ? argv[3] : "durable";  // the node's default
  pg::connection admin{url, milliseconds{2000}};
  auto r = admin.exec("DROP TABLE IF EXISTS bench_rows; CREATE TABLE bench_rows "
                      "(id text PRIMARY KEY, n bigint NOT NULL, version bigint NOT NULL)");
  if (!r.ok()) {
    std::fprintf(stderr, "setup failed: %s\n", r.error.c_str());
    return 1;
  }

  // One transaction per change.
  std::atomic<int64_t> single{0};
  {
    std::vector<std::thread> threads;
    auto until = steady_clock::now() + seconds{secs};
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        pg::connection c{url, milliseconds{2000}};
        int64_t i = 0;
        while (steady_clock::now() < until) {
          auto id = "s" + std::to_string(t) + "-" + std::to_string(i++);
          auto res = c.exec("INSERT INTO bench_rows (id, n, version) VALUES ($1, 1, 1) "
                            "ON CONFLICT (id) DO UPDATE SET n = excluded.n, version = "
                            "excluded.version WHERE bench_rows.version < excluded.version",
                            {id});
          if (res.ok()) ++single;
        }
      });
    }
    for (auto& th : threads) th.join();
  }

  // The journal (10 ms / 1000 rows, in `mode`), 4096 writes in flight from
  // 64 writers. (Not from one: CAF 0.17 keeps an actor's pending responses
  // in a flat map, searched and shifted per response, and one actor
  // awaiting 4,096 answers spent half the CPU there, not in the journal.)
  auto acked = std::make_shared<std::atomic<int64_t>>(0);
  journal::stats st;
  {
    caf::actor_system_config cfg;
    cfg.set("scheduler.max-threads", size_t{2});
    caf::actor_system sys{cfg};
    caf::scoped_actor self{sys};
    journal::options o;
    o.conninfo = url;
    o.eager = mode == "eager";
    o.durable_at_once = mode == "durable";
    auto gate = std::make_shared<journal::gate>(int64_t{1} << 40);
    auto j = journal::spawn_journal(self.ptr(), o, gate);
    auto until = steady_clock::now() + seconds{secs};
    std::vector<caf::actor> drivers;
    for (size_t no = 0; no < 64; ++no) {
      drivers.push_back(sys.spawn(driver, j, no, size_t{64}, until, acked));
    }
    std::this_thread::sleep_for(seconds{secs} + milliseconds{500});
    self->request(j, seconds{10}, journal::stats_atom::value)
      .receive([&](journal::stats& s) { st = s; }, [](caf::error&) {});
    for (auto& d : drivers) self->send_exit(d, caf::exit_reason::user_shutdown);
    self->send_exit(j, caf::exit_reason::user_shutdown);
    self->wait_for(j);
  }
  double s_rate = static_cast<double>(single.load()) / secs;
  double j_rate = static_cast<double>(acked->load()) / secs;
  std::printf("%-44s %12s\n", "writer", "rows/s");
  std::printf("%-44s %12.0f\n", "one transaction per change (8 connections)", s_rate);
  std::printf("%-44s %12.0f\n", ("journal (10 ms / 1000 rows, " + mode + ")").c_str(), j_rate);
  std::printf("ratio journal / per-change: %.1f   (journal: %lld batches, p50 flush %.1f ms, "
              "p99 %.1f ms)\n",
              j_rate / s_rate, static_cast<long long>(st.batches), st.flush_latency_ms_p50,
              st.flush_latency_ms_p99);
  return 0;
}
