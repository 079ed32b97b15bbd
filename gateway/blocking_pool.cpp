// Implements the blocking work pool.
#include "gateway/blocking_pool.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.hpp"

namespace gm::gateway {

blocking_pool::blocking_pool(std::string name, int threads, size_t queue_limit, int nice)
  : name_(std::move(name)), queue_limit_(queue_limit), nice_(nice) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { run(); });
  }
}

blocking_pool::~blocking_pool() {
  stop();
}

bool blocking_pool::submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_ || queue_.size() >= queue_limit_) {
      return false;
    }
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void blocking_pool::stop() {
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
}

void blocking_pool::run() {
  if (nice_ > 0) {
    // Linux applies a thread's nice value per thread id.
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice_);
  }
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job();
    } catch (const std::exception& e) {
      gm::log::get("gateway")->error("{} job threw: {}", name_, e.what());
    }
  }
}

} // namespace gm::gateway
