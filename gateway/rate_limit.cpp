// Implements the rate limiter and its Redis sync.
#include "gateway/rate_limit.hpp"

#include <algorithm>
#include <vector>

#include "common/log.hpp"
#include "common/metrics.hpp"

namespace gm::gateway {
namespace {

// INCRBY each key (one key's bucket) by its delta (ARGV[i + 1]), giving new
// keys the window's lifetime (ARGV[1]); returns the totals. One round trip
// for all keys.
constexpr const char* sync_script =
  "local n = {} "
  "for i, k in ipairs(KEYS) do "
  "  local c = redis.call('INCRBY', k, ARGV[i + 1]) "
  "  if c == tonumber(ARGV[i + 1]) then redis.call('PEXPIRE', k, ARGV[1]) end "
  "  n[i] = c "
  "end "
  "return n";

// Bounds the keys counted at once: beyond it new keys are refused rather
// than letting a flood of addresses grow memory without end.
constexpr size_t max_keys = 200000;

int64_t system_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
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

rate_limiter::counter_state& rate_limiter::key_state::slot(int64_t b) {
  auto i = static_cast<size_t>(b % buckets);
  if (at[i] != b) {
    at[i] = b;
    c[i] = counter_state{};
  }
  return c[i];
}

int64_t rate_limiter::key_state::total(int64_t now_b) const {
  int64_t n = 0;
  for (size_t i = 0; i < at.size(); ++i) {
    if (at[i] > now_b - buckets && at[i] <= now_b) n += c[i].total();
  }
  return n;
}

int rate_limiter::key_state::retry_after(int64_t now_ms, int64_t limit) const {
  auto now_b = now_ms / bucket_ms;
  auto left = total(now_b);
  // The oldest buckets leave the count first.
  for (auto b = now_b - buckets + 1; b <= now_b; ++b) {
    auto i = static_cast<size_t>(b % buckets);
    if (at[i] == b) left -= c[i].total();
    if (left < limit) {
      auto wait_ms = (b + buckets) * bucket_ms - now_ms;
      return static_cast<int>(std::max<int64_t>(1, (wait_ms + 999) / 1000));
    }
  }
  return static_cast<int>(buckets * bucket_ms / 1000);
}

bool rate_limiter::key_state::stale(int64_t now_b) const {
  for (size_t i = 0; i < at.size(); ++i) {
    if (at[i] > now_b - buckets && (c[i].total() > 0)) return false;
    if (c[i].in_flight > 0) return false;
  }
  return true;
}

rate_limiter::rate_limiter(redis::endpoint ep, int64_t per_ip, int64_t per_user,
                           std::chrono::milliseconds sync_interval,
                           std::function<int64_t()> clock)
  : client_(std::move(ep), std::chrono::milliseconds{250}),
    per_ip_(per_ip),
    per_user_(per_user),
    sync_interval_(sync_interval),
    clock_(clock ? std::move(clock) : std::function<int64_t()>{&system_ms}) {
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

rate_decision rate_limiter::check(const std::string& ip, const std::string& user_id) {
  auto now = clock_();
  auto b = now / bucket_ms;
  std::lock_guard<std::mutex> guard{mtx_};
  auto ip_key = "ip:" + ip;
  auto it = counts_.find(ip_key);
  if (it == counts_.end()) {
    if (counts_.size() >= max_keys) {
      refused_counter("ip").inc();
      return {false, static_cast<int>(bucket_ms / 1000), "ip"};
    }
    it = counts_.emplace(ip_key, key_state{}).first;
  }
  auto& by_ip = it->second;
  if (by_ip.total(b) >= per_ip_) {
    refused_counter("ip").inc();
    return {false, by_ip.retry_after(now, per_ip_), "ip"};
  }
  key_state* by_user = nullptr;
  if (!user_id.empty()) {
    by_user = &counts_["user:" + user_id];
    if (by_user->total(b) >= per_user_) {
      refused_counter("user").inc();
      return {false, by_user->retry_after(now, per_user_), "user"};
    }
  }
  ++by_ip.slot(b).unsynced;
  if (by_user != nullptr) ++by_user->slot(b).unsynced;
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
  std::vector<int64_t> bucket_of;
  std::vector<int64_t> deltas;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto now_b = now_bucket();
    for (auto it = counts_.begin(); it != counts_.end();) {
      auto& st = it->second;
      if (st.stale(now_b)) {
        it = counts_.erase(it);  // nothing left in the window
        continue;
      }
      for (size_t i = 0; i < st.at.size(); ++i) {
        auto& c = st.c[i];
        if (c.unsynced > 0 && st.at[i] > now_b - buckets) {
          keys.push_back(it->first);
          bucket_of.push_back(st.at[i]);
          deltas.push_back(c.unsynced);
          c.in_flight += c.unsynced;
          c.unsynced = 0;
        }
      }
      ++it;
    }
    sync_running_ = true;
  }
  std::vector<std::string> argv;
  if (keys.empty()) {
    argv = {"PING"};  // nothing to send; still learn whether Redis is there
  } else {
    argv = {"EVAL", sync_script, std::to_string(keys.size())};
    for (size_t i = 0; i < keys.size(); ++i) {
      argv.push_back("gm:rl:" + keys[i] + ":" + std::to_string(bucket_of[i]));
    }
    argv.push_back(std::to_string((buckets + 1) * bucket_ms));
    for (auto d : deltas) argv.push_back(std::to_string(d));
  }
  auto done = [this, keys, bucket_of, deltas](redis::reply r) {
    bool ok = keys.empty() ? r.ok()
                           : r.type == redis::reply::kind::array &&
                               r.elements.size() == keys.size();
    {
      std::lock_guard<std::mutex> guard{mtx_};
      sync_running_ = false;
      for (size_t i = 0; i < keys.size(); ++i) {
        auto it = counts_.find(keys[i]);
        if (it == counts_.end()) continue;
        auto slot = static_cast<size_t>(bucket_of[i] % buckets);
        if (it->second.at[slot] != bucket_of[i]) continue;  // the bucket left
        auto& c = it->second.c[slot];
        c.in_flight -= deltas[i];
        if (ok) {
          c.shared = r.elements[i].integer - c.in_flight;  // everyone's count
        } else {
          c.unsynced += deltas[i];  // keep counting here; retry next sync
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
