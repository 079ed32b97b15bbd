// A small pool of threads for CPU-heavy or blocking work that must stay off
// Beast's io threads and CAF's workers (password hashing). Bounded: submit
// refuses work past the limit instead of queueing without end.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gm::gateway {

class blocking_pool {
public:
  /// `nice` > 0 lowers the threads' priority so io threads win the CPU.
  blocking_pool(std::string name, int threads, size_t queue_limit, int nice = 0);
  ~blocking_pool();
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  /// Returns false if the queue is full or the pool is stopping.
  bool submit(std::function<void()> job);

  /// Finishes queued jobs and joins the threads. Safe twice.
  void stop();

private:
  void run();

  std::string name_;
  size_t queue_limit_;
  int nice_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

} // namespace gm::gateway
