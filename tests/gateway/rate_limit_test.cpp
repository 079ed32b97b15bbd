// The rate limiter's window (gateway/rate_limit.hpp), on a clock of the
// test's own and without Redis (an address nothing listens on: the limiter
// counts locally, as a node does when Redis is gone).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <random>

#include "gateway/rate_limit.hpp"

using namespace gm::gateway;

namespace {

struct fixture {
  std::shared_ptr<std::atomic<int64_t>> now = std::make_shared<std::atomic<int64_t>>(0);
  rate_limiter limiter;
  explicit fixture(int64_t per_ip, int64_t start_ms)
      : limiter({"127.0.0.1", 1, 0, ""}, per_ip, 1000000, std::chrono::milliseconds{3600000},
                [n = now] { return n->load(); }) {
    now->store(start_ms);
  }
  bool admit() { return limiter.check("10.0.0.1", "").allowed; }
};

} // namespace

TEST_CASE("a burst straddling a minute boundary gets no more than the limit") {
  // 60 requests in the second before a minute boundary, 60 in the second
  // after: fixed windows served all 120.
  fixture f{100, 1'800'000'000'000 + 59'000};
  int admitted = 0;
  for (int i = 0; i < 60; ++i) admitted += f.admit();
  f.now->store(f.now->load() + 1'500);
  for (int i = 0; i < 60; ++i) admitted += f.admit();
  CHECK(admitted == 100);
  auto d = f.limiter.check("10.0.0.1", "");
  CHECK_FALSE(d.allowed);
  CHECK(std::string{d.scope} == "ip");
  // The first 60 leave the count once their bucket is 65 s old at most.
  CHECK(d.retry_after_s >= 1);
  CHECK(d.retry_after_s <= 65);
  f.now->store(f.now->load() + d.retry_after_s * 1000);
  CHECK(f.admit());
}

TEST_CASE("no 60 s span admits more than the limit, whatever the arrivals") {
  std::mt19937_64 rnd{7};
  for (int round = 0; round < 5; ++round) {
    const int64_t limit = 20 + round * 17;
    fixture f{limit, 1'800'000'000'000 + static_cast<int64_t>(rnd() % 60000)};
    std::vector<int64_t> all;
    for (int i = 0; i < 20000; ++i) {
      f.now->store(f.now->load() + static_cast<int64_t>(rnd() % 200));
      if (f.admit()) all.push_back(f.now->load());
    }
    // Every window of 60 s ending at an admitted request holds at most the
    // limit.
    size_t lo = 0;
    for (size_t hi = 0; hi < all.size(); ++hi) {
      while (all[lo] <= all[hi] - 60000) ++lo;
      REQUIRE(static_cast<int64_t>(hi - lo + 1) <= limit);
    }
    // And the limiter is not far stricter than that: over the run (about
    // 2,000 s) it admitted at least the limit per 65 s.
    auto span = all.back() - all.front();
    CHECK(static_cast<int64_t>(all.size()) >= limit * (span / 65000));
  }
}

TEST_CASE("users are limited apart from addresses") {
  auto now = std::make_shared<std::atomic<int64_t>>(1'800'000'000'000);
  rate_limiter l({"127.0.0.1", 1, 0, ""}, 1000000, 3, std::chrono::milliseconds{3600000},
                 [now] { return now->load(); });
  CHECK(l.check("a", "u1").allowed);
  CHECK(l.check("b", "u1").allowed);
  CHECK(l.check("c", "u1").allowed);
  auto d = l.check("d", "u1");
  CHECK_FALSE(d.allowed);
  CHECK(std::string{d.scope} == "user");
  CHECK(l.check("d", "u2").allowed);
  l.stop();
}
