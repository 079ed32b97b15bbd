// The worker pool behind the PostgreSQL pool and the KDF threads.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "common/worker_pool.hpp"

using namespace std::chrono_literals;

namespace {

struct tagged {
  std::thread::id owner = std::this_thread::get_id();  // made on its thread
};

} // namespace

TEST_CASE("each thread owns its own state and stop runs everything queued") {
  gm::worker_pool<tagged> pool{"t", 2, 1000, [] { return std::make_unique<tagged>(); }};
  pool.start();
  std::atomic<int> ran{0};
  std::atomic<int> wrong_owner{0};
  for (int i = 0; i < 200; ++i) {
    REQUIRE(pool.submit([&](tagged& s) {
      if (s.owner != std::this_thread::get_id()) ++wrong_owner;
      ++ran;
    }));
  }
  auto left = pool.stop();
  CHECK(left.empty());
  CHECK(ran == 200);
  CHECK(wrong_owner == 0);
  CHECK_FALSE(pool.submit([](tagged&) {}));
  CHECK(pool.stopped());
}

TEST_CASE("the queue is bounded and a pool never started hands its jobs back") {
  gm::worker_pool<tagged> pool{"t", 1, 3, [] { return std::make_unique<tagged>(); }};
  for (int i = 0; i < 3; ++i) {
    CHECK(pool.submit([](tagged&) {}));
  }
  CHECK_FALSE(pool.submit([](tagged&) {}));
  CHECK(pool.stats().rejected == 1);
  CHECK(pool.stats().queued == 3);
  CHECK(pool.stop().size() == 3);
}

TEST_CASE("a job that throws does not take its thread down") {
  gm::worker_pool<tagged> pool{"t", 1, 10, [] { return std::make_unique<tagged>(); }};
  pool.start();
  std::atomic<bool> after{false};
  pool.submit([](tagged&) { throw std::runtime_error("job failure on purpose"); });
  pool.submit([&](tagged&) { after = true; });
  pool.stop();
  CHECK(after);
}
