// Rate limits per client address and per user: at most the limit in any
// 60 seconds. Counts are kept in 5-second buckets; a request is admitted if
// the 13 buckets up to and including its own (60 to 65 seconds back) hold
// fewer than the limit, so no 60-second span ever admits more (fixed
// one-minute windows let a burst straddling a boundary through at twice the
// limit).
//
// Decisions are made at once, on the caller's thread, from what this node
// knows: the count Redis held for the key at the last sync, plus what this
// node counted since. A sync thread sends the new counts to Redis every
// `sync_interval` (one round trip for all keys) and reads back the totals of
// all nodes. So limits are exact on one node and shared across a cluster
// within one sync interval, and no request waits on Redis. If Redis cannot be
// reached the node keeps counting on its own, says so once in the log, and
// reports it in /readyz and /metrics until a sync succeeds again.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "persistence/redis.hpp"

namespace gm::gateway {

struct rate_decision {
  bool allowed = true;
  int retry_after_s = 0;
  const char* scope = "";  // "ip" or "user" when refused
};

class rate_limiter {
public:
  /// `clock` returns the time in Unix milliseconds (tests give their own).
  rate_limiter(redis::endpoint ep, int64_t per_ip, int64_t per_user,
               std::chrono::milliseconds sync_interval = std::chrono::milliseconds{100},
               std::function<int64_t()> clock = {});
  ~rate_limiter();

  /// Counts one request for `ip` and, if not empty, `user_id`, and returns
  /// whether it may proceed. Never blocks on Redis.
  rate_decision check(const std::string& ip, const std::string& user_id);

  /// Returns "redis" or "local" (the last sync with Redis failed).
  const char* mode() const noexcept { return local_.load() ? "local" : "redis"; }

  /// Stops the sync thread. Safe twice.
  void stop();

  static constexpr int64_t bucket_ms = 5000;
  static constexpr int buckets = 13;  // 65 s: every 60 s span ending now

private:
  struct counter_state {
    int64_t shared = 0;     // total in Redis at the last sync (all nodes)
    int64_t in_flight = 0;  // sent in the running sync, not yet in `shared`
    int64_t unsynced = 0;   // counted here since
    int64_t total() const { return shared + in_flight + unsynced; }
  };

  /// One key's last `buckets` buckets, a ring: slot b % buckets holds
  /// bucket b (its number in `at`; -1: empty).
  struct key_state {
    std::array<int64_t, buckets> at;
    std::array<counter_state, buckets> c{};
    key_state() { at.fill(-1); }
    counter_state& slot(int64_t b);
    int64_t total(int64_t now_b) const;
    /// Seconds until the count falls below `limit` (at least 1).
    int retry_after(int64_t now_ms, int64_t limit) const;
    bool stale(int64_t now_b) const;
  };

  void sync_loop();
  void sync_once();
  int64_t now_bucket() const { return clock_() / bucket_ms; }
  void set_local(bool local, const std::string& why);

  redis::client client_;
  int64_t per_ip_;
  int64_t per_user_;
  std::chrono::milliseconds sync_interval_;
  std::atomic<bool> local_{false};
  std::mutex mtx_;  // guards the fields below
  std::function<int64_t()> clock_;
  std::unordered_map<std::string, key_state> counts_;
  bool sync_running_ = false;
  bool stopping_ = false;
  std::condition_variable cv_;
  std::thread sync_thread_;
};

} // namespace gm::gateway
