// Rate limits per client address and per user, in fixed one-minute windows
// kept in Redis so that every node of a cluster counts together. If Redis
// cannot be reached the limiter counts locally (per node) instead, says so
// once in the log, and reports it in /readyz and /metrics.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
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
  rate_limiter(redis::endpoint ep, int64_t per_ip, int64_t per_user);
  ~rate_limiter();

  /// Counts one request for `ip` and, if not empty, `user_id`; `done` gets
  /// the decision on the limiter's thread.
  void check(const std::string& ip, const std::string& user_id,
             std::function<void(rate_decision)> done);

  /// Returns "redis" or "local" (Redis unreachable).
  const char* mode() const noexcept { return local_.load() ? "local" : "redis"; }

  void stop();

private:
  rate_decision decide(int64_t ip_count, int64_t user_count, int64_t now) const;
  rate_decision count_locally(const std::string& ip, const std::string& user_id, int64_t now);
  void set_local(bool local, const std::string& why);

  redis::client client_;
  int64_t per_ip_;
  int64_t per_user_;
  std::atomic<bool> local_{false};
  std::mutex mtx_;  // guards the local windows only
  int64_t local_window_ = 0;
  std::unordered_map<std::string, int64_t> local_counts_;
};

} // namespace gm::gateway
