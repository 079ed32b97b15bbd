// Implements the lean scheduler: a coordinator and workers that run CAF's
// work-stealing policy. The policy's member templates take the worker and
// coordinator types as parameters, and need of them what is declared below:
// parent(), id(), data(), external_enqueue() and worker_by_id().
#include "actors/scheduler.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/detail/set_thread_name.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/execution_unit.hpp>
#include <caf/logger.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/ref_counted.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

namespace gm::actors {
namespace {

using policy = caf::policy::work_stealing;

class coordinator;

class worker : public caf::execution_unit {
public:
  worker(size_t id, coordinator* parent, const policy::worker_data& init, size_t throughput);

  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  void start() {
    thread_ = std::thread{[this] {
      caf::logger::set_current_actor_system(&system());
      caf::detail::set_thread_name("gm.worker");
      system().thread_started();
      run();
      system().thread_terminates();
    }};
  }

  /// A job from another thread (or the coordinator).
  void external_enqueue(caf::resumable* job) { policy_.external_enqueue(this, job); }

  /// A job made runnable by the job this worker runs now.
  void exec_later(caf::resumable* job) override { policy_.internal_enqueue(this, job); }

  coordinator* parent() { return parent_; }
  size_t id() const { return id_; }
  policy::worker_data& data() { return data_; }
  std::thread& thread() { return thread_; }

private:
  void run() {
    for (;;) {
      auto* job = policy_.dequeue(this);
      policy_.before_resume(this, job);
      auto res = job->resume(this, throughput_);
      policy_.after_resume(this, job);
      switch (res) {
        case caf::resumable::resume_later:
          policy_.resume_job_later(this, job);  // it keeps its reference
          break;
        case caf::resumable::done:
          policy_.after_completion(this, job);
          caf::intrusive_ptr_release(job);
          break;
        case caf::resumable::awaiting_message:
          caf::intrusive_ptr_release(job);  // the next message schedules it again
          break;
        case caf::resumable::shutdown_execution_unit:
          policy_.after_completion(this, job);
          policy_.before_shutdown(this);
          return;
      }
    }
  }

  size_t throughput_;
  size_t id_;
  coordinator* parent_;
  policy::worker_data data_;
  policy policy_;
  std::thread thread_;
};

/// Tells the worker that runs it to stop, and who it was.
class stop_job : public caf::resumable, public caf::ref_counted {
public:
  resume_result resume(caf::execution_unit* unit, size_t) override {
    std::lock_guard<std::mutex> guard{mtx};
    stopped = unit;
    cv.notify_all();
    return resumable::shutdown_execution_unit;
  }
  void intrusive_ptr_add_ref_impl() override { ref(); }
  void intrusive_ptr_release_impl() override { deref(); }

  std::mutex mtx;
  std::condition_variable cv;
  caf::execution_unit* stopped = nullptr;
};

class coordinator : public caf::scheduler::abstract_coordinator {
public:
  explicit coordinator(caf::actor_system& sys) : abstract_coordinator(sys), data_(this) {}

  static caf::actor_system::module* make(caf::actor_system& sys, caf::detail::type_list<>) {
    return new coordinator(sys);
  }

  worker* worker_by_id(size_t i) { return workers_[i].get(); }
  policy::coordinator_data& data() { return data_; }

  void enqueue(caf::resumable* job) override { policy_.central_enqueue(this, job); }

  caf::actor_clock& clock() noexcept override { return clock_; }

protected:
  void start() override {
    policy::worker_data init{this};
    for (size_t i = 0; i < num_workers(); ++i) {
      workers_.emplace_back(std::make_unique<worker>(i, this, init, max_throughput_));
    }
    for (auto& w : workers_) w->start();
    timer_ = std::thread{[this] {
      caf::logger::set_current_actor_system(&system());
      caf::detail::set_thread_name("gm.clock");
      system().thread_started();
      clock_.run_dispatch_loop();
      system().thread_terminates();
    }};
    abstract_coordinator::start();
  }

  void stop() override {
    // One stop job per worker; any worker may run (steal) it, so each run
    // says which worker it stopped, until none is left.
    stop_job job;
    std::set<caf::execution_unit*> running;
    for (auto& w : workers_) {
      running.insert(w.get());
      job.ref();  // the workers' references: the job lives on this stack
    }
    while (!running.empty()) {
      static_cast<worker*>(*running.begin())->external_enqueue(&job);
      std::unique_lock<std::mutex> guard{job.mtx};
      job.cv.wait(guard, [&] { return job.stopped != nullptr; });
      running.erase(job.stopped);
      job.stopped = nullptr;
    }
    stop_actors();
    for (auto& w : workers_) w->thread().join();
    // What is still queued is cleaned up and released, as CAF's own does.
    for (auto& w : workers_) policy_.foreach_resumable(w.get(), &cleanup_and_release);
    clock_.cancel_dispatch_loop();
    timer_.join();
  }

private:
  caf::detail::thread_safe_actor_clock clock_;
  std::vector<std::unique_ptr<worker>> workers_;
  policy::coordinator_data data_;
  policy policy_;
  std::thread timer_;
};

worker::worker(size_t id, coordinator* parent, const policy::worker_data& init,
               size_t throughput)
    : caf::execution_unit(&parent->system()),
      throughput_(throughput),
      id_(id),
      parent_(parent),
      data_(init) {}

} // namespace

void use_lean_scheduler(caf::actor_system_config& cfg) {
  cfg.load<coordinator>();
}

} // namespace gm::actors
