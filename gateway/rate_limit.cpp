// Implements the Redis-backed limiter and its local fallback.
#include "gateway/rate_limit.hpp"

#include <chrono>

#include "common/log.hpp"
#include "common/metrics.hpp"

namespace gm::gateway {
namespace {

// INCR each key, giving new keys the window's lifetime; one round trip.
constexpr const char* count_script =
  "local n = {} "
  "for i, k in ipairs(KEYS) do "
  "  local c = redis.call('INCR', k) "
  "  if c == 1 then redis.call('PEXPIRE', k, ARGV[1]) end "
  "  n[i] = c "
  "end "
  "return n";

constexpr int64_t window_s = 60;

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch()).count();
}

metrics::gauge& local_gauge() {
  static auto& g = metrics::global().get_gauge(
    "gigmesh_rate_limit_local", "1 while rate limits are counted locally (Redis unreachable)");
  return g;
}

metrics::counter& refused_counter(const char* scope) {
  return metrics::global().get_counter("gigmesh_rate_limited_total",
                                       "requests refused with 429", {{"scope", scope}});
}

} // namespace

rate_limiter::rate_limiter(redis::endpoint ep, int64_t per_ip, int64_t per_user)
  : client_(std::move(ep), std::chrono::milliseconds{250}), per_ip_(per_ip), per_user_(per_user) {
  client_.start();
  local_gauge().set(0);
}

rate_limiter::~rate_limiter() {
  stop();
}

void rate_limiter::stop() {
  client_.stop();
}

rate_decision rate_limiter::decide(int64_t ip_count, int64_t user_count, int64_t now) const {
  rate_decision d;
  int retry = static_cast<int>(window_s - now % window_s);
  if (ip_count > per_ip_) {
    d = {false, retry, "ip"};
  } else if (user_count > per_user_) {
    d = {false, retry, "user"};
  }
  if (!d.allowed) {
    refused_counter(d.scope).inc();
  }
  return d;
}

void rate_limiter::set_local(bool local, const std::string& why) {
  bool was = local_.exchange(local);
  if (was == local) {
    return;
  }
  local_gauge().set(local ? 1 : 0);
  auto log = gm::log::get("ratelimit");
  if (local) {
    log->warn("Redis unreachable ({}): counting rate limits locally on this node", why);
  } else {
    log->info("Redis reachable again: rate limits counted in Redis");
  }
}

rate_decision rate_limiter::count_locally(const std::string& ip, const std::string& user_id,
                                          int64_t now) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto window = now / window_s;
  if (window != local_window_) {
    local_counts_.clear();
    local_window_ = window;
  }
  auto ip_count = ++local_counts_["ip:" + ip];
  int64_t user_count = user_id.empty() ? 0 : ++local_counts_["user:" + user_id];
  return decide(ip_count, user_count, now);
}

void rate_limiter::check(const std::string& ip, const std::string& user_id,
                         std::function<void(rate_decision)> done) {
  auto now = now_s();
  auto window = std::to_string(now / window_s);
  std::vector<std::string> argv = {"EVAL", count_script, user_id.empty() ? "1" : "2",
                                   "gm:rl:ip:" + ip + ":" + window};
  if (!user_id.empty()) {
    argv.push_back("gm:rl:user:" + user_id + ":" + window);
  }
  argv.push_back(std::to_string(window_s * 1000 + 1000));
  auto queued = client_.command(std::move(argv), [this, ip, user_id, now,
                                                  done](redis::reply r) {
    if (r.type != redis::reply::kind::array || r.elements.empty()) {
      set_local(true, r.str.empty() ? "unexpected reply" : r.str);
      done(count_locally(ip, user_id, now));
      return;
    }
    set_local(false, {});
    int64_t user_count = r.elements.size() > 1 ? r.elements[1].integer : 0;
    done(decide(r.elements[0].integer, user_count, now));
  });
  if (!queued) {
    set_local(true, "command queue full");
    done(count_locally(ip, user_id, now));
  }
}

} // namespace gm::gateway
