// Threads that run queued jobs off CAF's workers and Beast's io threads:
// for blocking or CPU-heavy work (libpq calls, password hashing). Each thread
// owns a `State` (a database connection, or nothing) made when it starts.
// The queue is bounded: submit() refuses work past it instead of growing.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.hpp"

namespace gm {

struct worker_pool_stats {
  uint64_t submitted = 0;
  uint64_t rejected = 0;
  size_t queued = 0;
  size_t busy = 0;
};

template <class State>
class worker_pool {
public:
  using job = std::function<void(State&)>;
  using state_factory = std::function<std::unique_ptr<State>()>;

  /// `nice` > 0 lowers the threads' priority so that io threads win the CPU.
  worker_pool(std::string name, int threads, size_t queue_limit, state_factory make_state,
              int nice = 0)
    : name_(std::move(name)),
      size_(threads),
      queue_limit_(queue_limit),
      make_state_(std::move(make_state)),
      nice_(nice) {
    // nop
  }

  ~worker_pool() { stop(); }
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  /// Starts the threads. Safe twice; refused after stop().
  void start() {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!threads_.empty() || stopping_) {
      return;
    }
    for (int i = 0; i < size_; ++i) {
      threads_.emplace_back([this] { run(); });
    }
  }

  /// Returns false if the pool is stopping or its queue is full.
  bool submit(job j) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (stopping_ || queue_.size() >= queue_limit_) {
        ++stats_.rejected;
        return false;
      }
      queue_.push_back(std::move(j));
      ++stats_.submitted;
    }
    cv_.notify_one();
    return true;
  }

  /// Refuses new jobs, lets the threads finish what is queued and joins them.
  /// Returns the jobs no thread ran (the pool was never started). Safe twice.
  std::deque<job> stop() {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (auto& t : threads) {
      t.join();
    }
    std::lock_guard<std::mutex> guard{mtx_};
    std::deque<job> left;
    left.swap(queue_);
    return left;
  }

  bool stopped() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return stopping_;
  }

  worker_pool_stats stats() const {
    std::lock_guard<std::mutex> guard{mtx_};
    auto s = stats_;
    s.queued = queue_.size();
    return s;
  }

private:
  void run() {
    if (nice_ > 0) {
      // Linux applies a thread's nice value per thread id.
      setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice_);
    }
    auto state = make_state_();
    for (;;) {
      job j;
      {
        std::unique_lock<std::mutex> lock{mtx_};
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) {
          return;  // stopping, and nothing left to do
        }
        j = std::move(queue_.front());
        queue_.pop_front();
        ++stats_.busy;
      }
      try {
        j(*state);
      } catch (const std::exception& e) {
        gm::log::get(name_)->error("job threw: {}", e.what());
      }
      std::lock_guard<std::mutex> guard{mtx_};
      --stats_.busy;
    }
  }

  std::string name_;
  int size_;
  size_t queue_limit_;
  state_factory make_state_;
  int nice_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<job> queue_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
  worker_pool_stats stats_;
};

} // namespace gm
