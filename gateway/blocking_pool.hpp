// Threads for CPU-heavy work that must stay off Beast's io threads and CAF's
// workers (password hashing): a worker_pool whose threads hold no state,
// started at once.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/worker_pool.hpp"

namespace gm::gateway {

class blocking_pool {
public:
  /// `nice` > 0 lowers the threads' priority so io threads win the CPU.
  blocking_pool(std::string name, int threads, size_t queue_limit, int nice = 0)
    : workers_(std::move(name), threads, queue_limit, [] { return std::make_unique<idle>(); },
               nice) {
    workers_.start();
  }

  /// Returns false if the queue is full or the pool is stopping.
  bool submit(std::function<void()> job) {
    return workers_.submit([job = std::move(job)](idle&) { job(); });
  }

  /// Finishes queued jobs and joins the threads. Safe twice.
  void stop() { workers_.stop(); }

private:
  struct idle {};
  worker_pool<idle> workers_;
};

} // namespace gm::gateway
