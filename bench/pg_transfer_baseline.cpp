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

#include "common/ids.hpp"
#include "persistence/pg.hpp"

using namespace std::chrono;

namespace {

const char* function_sql = R"SQL(
DROP FUNCTION IF EXISTS bench_transfer(uuid, uuid, bigint);
CREATE OR REPLACE FUNCTION bench_transfer(p_from uuid, p_to uuid, p_amount bigint, t uuid,
                                          p_out uuid, p_in uuid)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  src wallets%ROWTYPE;
  dst wallets%ROWTYPE;
BEGIN
  -- Lock both wallets in one order, so concurrent transfers wait instead of
  -- deadlocking (what a careful service-per-request implementation does).
  PERFORM 1 FROM wallets WHERE user_id IN (p_from, p_to) ORDER BY user_id FOR UPDATE;
  UPDATE wallets SET balance = balance - p_amount, version = version + 1
    WHERE user_id = p_from AND balance >= p_amount RETURNING * INTO src;
  IF NOT FOUND THEN RAISE EXCEPTION 'insufficient funds'; END IF;
  UPDATE wallets SET balance = balance + p_amount, version = version + 1
    WHERE user_id = p_to RETURNING * INTO dst;
  IF NOT FOUND THEN RAISE EXCEPTION 'no such wallet'; END IF;
  INSERT INTO ledger_entries (id, transfer_id, account, wallet_id, type, amount, delta,
                              balance_after, wallet_version, counterparty, created_at)
  VALUES (p_out, t, src.id::text, src.id, 'transfer_out', p_amount, -p_amount,
          src.balance, src.version, p_to, now()),
         (p_in, t, dst.id::text, dst.id, 'transfer_in', p_amount, p_amount,
          dst.balance, dst.version, p_from, now());
  INSERT INTO transfers (id, from_user, to_user, amount, state, version, created_at, updated_at)
  VALUES (t, p_from, p_to, p_amount, 'settled', 3, now(), now());
  RETURN t;
END $$;
)SQL";

} // namespace

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
  auto r = admin.exec(function_sql);
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
