// The service-per-request baseline for transfers: each transfer is one
// PostgreSQL transaction, a PL/pgSQL function called over libpq (debit with
// a funds check, credit, two ledger entries, a transfers row), from N
// connections, each waiting for its answer. Prints transfers/s and latency.
// The ids of the transfer and its two entries are minted by the client as
// the node mints them (time-ordered UUIDs), so both sides' indexes grow
// alike.
//
//   pg_transfer_baseline <postgresql url> <seconds> <connections> <user ids file>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/transfer_function.hpp"
#include "common/ids.hpp"
#include "persistence/pg.hpp"

using namespace std::chrono;

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: pg_transfer_baseline <url> <seconds> <connections> <ids file>\n");
    return 2;
  }
  std::string url = argv[1];
  int secs = std::stoi(argv[2]);
  int conns = std::stoi(argv[3]);
  std::vector<std::string> users;
  std::ifstream in{argv[4]};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) users.push_back(line);
  }
  if (users.size() < 2) {
    std::fprintf(stderr, "need at least two user ids\n");
    return 2;
  }
  gm::pg::connection admin{url, milliseconds{2000}};
  auto r = admin.exec(gm::bench::transfer_function_sql);
  if (!r.ok()) {
    std::fprintf(stderr, "setup failed: %s\n", r.error.c_str());
    return 1;
  }
  std::mutex mtx;
  std::vector<double> latencies;
  std::atomic<int64_t> ok{0}, failed{0};
  auto until = steady_clock::now() + seconds{secs};
  std::vector<std::thread> threads;
  for (int t = 0; t < conns; ++t) {
    threads.emplace_back([&, t] {
      gm::pg::connection c{url, milliseconds{2000}};
      std::mt19937 rnd{static_cast<unsigned>(t * 7919 + 1)};
      std::uniform_int_distribution<size_t> pick{0, users.size() - 1};
      std::uniform_int_distribution<int> amount{1, 100};
      std::vector<double> mine;
      while (steady_clock::now() < until) {
        auto a = pick(rnd);
        auto b = pick(rnd);
        if (a == b) continue;
        auto start = steady_clock::now();
        auto res = c.exec("SELECT bench_transfer($1, $2, $3, $4, $5, $6)",
                          {users[a], users[b], std::to_string(amount(rnd)), gm::new_time_uuid(),
                           gm::new_time_uuid(), gm::new_time_uuid()});
        auto ms = duration<double, std::milli>(steady_clock::now() - start).count();
        if (res.ok()) {
          ++ok;
          mine.push_back(ms);
        } else {
          ++failed;
        }
      }
      std::lock_guard<std::mutex> g{mtx};
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (auto& th : threads) th.join();
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double q) {
    return latencies.empty() ? 0.0 : latencies[std::min(latencies.size() - 1,
                                                        static_cast<size_t>(q * latencies.size()))];
  };
  // transfers/s, p50 ms, p99 ms, failures
  std::printf("%.0f %.2f %.2f %lld\n", static_cast<double>(ok.load()) / secs, pct(0.50), pct(0.99),
              static_cast<long long>(failed.load()));
  return 0;
}
