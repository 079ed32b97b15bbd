// Implements the rate limiter and its Redis sync.
#include "gateway/rate_limit.hpp"

#include <vector>

#include "common/log.hpp"
#include "common/metrics.hpp"

namespace gm::gateway {
namespace {

// INCRBY each key by its delta (ARGV[i + 1]), giving new keys the window's
// lifetime (ARGV[1]); returns the totals. One round trip for all keys.
constexpr const char* sync_script =
  "local n = {} "
  "for i, k in ipairs(KEYS) do "
  "  local c = redis.call('INCRBY', k, ARGV[i + 1]) "
  "  if c == tonumber(ARGV[i + 1]) then redis.call('PEXPIRE', k, ARGV[1]) end "
  "  n[i] = c "
  "end "
  "return n";

constexpr int64_t window_s = 60;

// Bounds the keys of one window: beyond it new keys are refused rather than
// letting a flood of spoofed addresses grow memory without end.
constexpr size_t max_keys = 200000;

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

rate_limiter::rate_limiter(redis::endpoint ep, int64_t per_ip, int64_t per_user,
                           std::chrono::milliseconds sync_interval)
  : client_(std::move(ep), std::chrono::milliseconds{250}),
    per_ip_(per_ip),
    per_user_(per_user),
    sync_interval_(sync_interval) {
  local_gauge().set(0);
  client_.start();
  sync_thread_ = std::thread([this] { sync_loop(); });
}

rate_limiter::~rate_limiter() {
  stop();
}

void rate_limiter::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (sync_thread_.joinable()) {
    sync_thread_.join();
  }
  client_.stop();
}

void rate_limiter::roll_window(int64_t window) {
  if (window != window_) {
    counts_.clear();
    window_ = window;
  }
}

rate_decision rate_limiter::check(const std::string& ip, const std::string& user_id) {
  auto now = now_s();
  int retry = static_cast<int>(window_s - now % window_s);
  std::lock_guard<std::mutex> guard{mtx_};
  roll_window(now / window_s);
  if (counts_.size() >= max_keys) {
    refused_counter("ip").inc();
    return {false, retry, "ip"};
  }
  auto& by_ip = counts_["ip:" + ip];
  if (by_ip.total() >= per_ip_) {
    refused_counter("ip").inc();
    return {false, retry, "ip"};
  }
  counter_state* by_user = nullptr;
  if (!user_id.empty()) {
    by_user = &counts_["user:" + user_id];
    if (by_user->total() >= per_user_) {
      refused_counter("user").inc();
      return {false, retry, "user"};
    }
  }
  ++by_ip.unsynced;
  if (by_user != nullptr) {
    ++by_user->unsynced;
  }
  return {};
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
    log->info("Redis reachable again: rate limits shared through Redis");
  }
}

void rate_limiter::sync_loop() {
  std::unique_lock<std::mutex> lock{mtx_};
  while (!stopping_) {
    cv_.wait_for(lock, sync_interval_, [this] { return stopping_; });
    if (stopping_ || sync_running_) {
      continue;
    }
    lock.unlock();
    sync_once();
    lock.lock();
  }
}

void rate_limiter::sync_once() {
  std::vector<std::string> keys;
  std::vector<int64_t> deltas;
  int64_t window = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    roll_window(now_s() / window_s);
    window = window_;
    for (auto& [key, st] : counts_) {
      if (st.unsynced > 0) {
        keys.push_back(key);
        deltas.push_back(st.unsynced);
        st.in_flight += st.unsynced;
        st.unsynced = 0;
      }
    }
    sync_running_ = true;
  }
  std::vector<std::string> argv;
  if (keys.empty()) {
    argv = {"PING"};  // nothing to send; still learn whether Redis is there
  } else {
    argv = {"EVAL", sync_script, std::to_string(keys.size())};
    auto suffix = ":" + std::to_string(window);
    for (auto& k : keys) argv.push_back("gm:rl:" + k + suffix);
    argv.push_back(std::to_string(window_s * 1000 + 1000));
    for (auto d : deltas) argv.push_back(std::to_string(d));
  }
  auto done = [this, keys, deltas, window](redis::reply r) {
    bool ok = keys.empty() ? r.ok()
                           : r.type == redis::reply::kind::array &&
                               r.elements.size() == keys.size();
    {
      std::lock_guard<std::mutex> guard{mtx_};
      sync_running_ = false;
      if (window == window_) {
        for (size_t i = 0; i < keys.size(); ++i) {
          auto it = counts_.find(keys[i]);
          if (it == counts_.end()) continue;
          auto& st = it->second;
          st.in_flight -= deltas[i];
          if (ok) {
            st.shared = r.elements[i].integer - st.in_flight;  // everyone's count
          } else {
            st.unsynced += deltas[i];  // keep counting here; retry next sync
          }
        }
      }
    }
    set_local(!ok, ok ? std::string{} : (r.str.empty() ? "unexpected reply" : r.str));
  };
  if (!client_.command(std::move(argv), done)) {
    redis::reply failed;
    failed.type = redis::reply::kind::error;
    failed.str = "command queue full";
    done(std::move(failed));
  }
}

} // namespace gm::gateway
