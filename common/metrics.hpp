// A small Prometheus metrics registry: counters, gauges and histograms with
// fixed label sets, registered once and updated lock-free on hot paths.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace gm::metrics {

using labels = std::vector<std::pair<std::string, std::string>>;

class counter {
public:
  void inc(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<uint64_t> value_{0};
};

class gauge {
public:
  void set(int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<int64_t> value_{0};
};

/// Cumulative histogram over fixed upper bounds (seconds for latencies).
class histogram {
public:
  explicit histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  const std::vector<double>& bounds() const noexcept { return bounds_; }
  /// Returns per-bucket (non-cumulative) counts, the +Inf bucket last.
  std::vector<uint64_t> buckets() const;
  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept;

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

/// Returns the default latency buckets in seconds (0.5 ms .. 10 s).
std::vector<double> latency_buckets();

class registry {
public:
  /// Returns the counter for (name, labels), creating it and its family on
  /// first use. References stay valid for the registry's lifetime.
  counter& get_counter(const std::string& name, const std::string& help,
                       const labels& l = {});
  gauge& get_gauge(const std::string& name, const std::string& help,
                   const labels& l = {});
  histogram& get_histogram(const std::string& name, const std::string& help,
                           const labels& l = {},
                           std::vector<double> bounds = latency_buckets());
  /// Registers a gauge whose value is computed at scrape time.
  void gauge_fn(const std::string& name, const std::string& help,
                std::function<double()> fn);

  /// Returns the values of the counters or gauges of family `name`, summed
  /// by the value of their label `key` (every series under "" if `key` is
  /// empty or a series lacks it).
  std::map<std::string, double> sum_by(const std::string& name, const std::string& key) const;

  /// Returns every metric in the Prometheus text exposition format 0.0.4.
  std::string render() const;

private:
  enum class kind { counter, gauge, histogram, gauge_fn };
  struct series {
    labels lbls;
    std::unique_ptr<counter> c;
    std::unique_ptr<gauge> g;
    std::unique_ptr<histogram> h;
  };
  struct family {
    std::string name;
    std::string help;
    kind k;
    std::vector<std::unique_ptr<series>> members;
    std::function<double()> fn;
  };
  series& find_or_add(const std::string& name, const std::string& help, kind k,
                      const labels& l);

  mutable std::mutex mtx_;
  std::vector<std::unique_ptr<family>> families_;
};

/// Returns the process-wide registry that /metrics renders.
registry& global();

/// Returns the resident set size of this process in bytes (from /proc).
uint64_t resident_memory_bytes();

} // namespace gm::metrics
