// Rate limits per client address and per user, in fixed one-minute windows.
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

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
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
  rate_limiter(redis::endpoint ep, int64_t per_ip, int64_t per_user,
               std::chrono::milliseconds sync_interval = std::chrono::milliseconds{100});
  ~rate_limiter();

  /// Counts one request for `ip` and, if not empty, `user_id`, and returns
  /// whether it may proceed. Never blocks on Redis.
  rate_decision check(const std::string& ip, const std::string& user_id);

  /// Returns "redis" or "local" (the last sync with Redis failed).
  const char* mode() const noexcept { return local_.load() ? "local" : "redis"; }

  /// Stops the sync thread. Safe twice.
  void stop();

private:
  struct counter_state {
    int64_t shared = 0;     // total in Redis at the last sync (all nodes)
    int64_t in_flight = 0;  // sent in the running sync, not yet in `shared`
    int64_t unsynced = 0;   // counted here since
    int64_t total() const { return shared + in_flight + unsynced; }
  };

  void sync_loop();
  void sync_once();
  void roll_window(int64_t window);
  void set_local(bool local, const std::string& why);

  redis::client client_;
  int64_t per_ip_;
  int64_t per_user_;
  std::chrono::milliseconds sync_interval_;
  std::atomic<bool> local_{false};
  std::mutex mtx_;  // guards the fields below
  int64_t window_ = 0;
  std::unordered_map<std::string, counter_state> counts_;
  bool sync_running_ = false;
  bool stopping_ = false;
  std::condition_variable cv_;
  std::thread sync_thread_;
};

} // namespace gm::gateway
