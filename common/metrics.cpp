// Implements the metrics registry and its Prometheus text rendering.
#include "common/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

namespace gm::metrics {

histogram::histogram(std::vector<double> bounds)
  : bounds_(std::move(bounds)),
    counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    counts_[i].store(0, std::memory_order_relaxed);
  }
}

void histogram::observe(double v) noexcept {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  counts_[static_cast<size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0 && std::isfinite(v)) {
    sum_micros_.fetch_add(static_cast<uint64_t>(v * 1e6), std::memory_order_relaxed);
  }
}

std::vector<uint64_t> histogram::buckets() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = counts_[i].load(std::memory_order_relaxed);
  }
  return out;
}

double histogram::sum() const noexcept {
  return static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
}

std::vector<double> latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

registry::series& registry::find_or_add(const std::string& name, const std::string& help,
                                        kind k, const labels& l) {
  std::lock_guard<std::mutex> guard{mtx_};
  family* fam = nullptr;
  for (auto& f : families_) {
    if (f->name == name) {
      fam = f.get();
      break;
    }
  }
  if (fam == nullptr) {
    families_.push_back(std::make_unique<family>(family{name, help, k, {}, {}}));
    fam = families_.back().get();
  } else if (fam->k != k) {
    throw std::logic_error("metric " + name + " registered with two kinds");
  }
  for (auto& s : fam->members) {
    if (s->lbls == l) {
      return *s;
    }
  }
  fam->members.push_back(std::make_unique<series>(series{l, nullptr, nullptr, nullptr}));
  return *fam->members.back();
}

counter& registry::get_counter(const std::string& name, const std::string& help,
                               const labels& l) {
  auto& s = find_or_add(name, help, kind::counter, l);
  std::lock_guard<std::mutex> guard{mtx_};
  if (!s.c) {
    s.c = std::make_unique<counter>();
  }
  return *s.c;
}

gauge& registry::get_gauge(const std::string& name, const std::string& help,
                           const labels& l) {
  auto& s = find_or_add(name, help, kind::gauge, l);
  std::lock_guard<std::mutex> guard{mtx_};
  if (!s.g) {
    s.g = std::make_unique<gauge>();
  }
  return *s.g;
}

histogram& registry::get_histogram(const std::string& name, const std::string& help,
                                   const labels& l, std::vector<double> bounds) {
  auto& s = find_or_add(name, help, kind::histogram, l);
  std::lock_guard<std::mutex> guard{mtx_};
  if (!s.h) {
    s.h = std::make_unique<histogram>(std::move(bounds));
  }
  return *s.h;
}

void registry::gauge_fn(const std::string& name, const std::string& help,
                        std::function<double()> fn) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& f : families_) {
    if (f->name == name) {
      f->fn = std::move(fn);
      return;
    }
  }
  families_.push_back(std::make_unique<family>(family{name, help, kind::gauge_fn, {}, std::move(fn)}));
}

namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_labels(const labels& l, const std::string& extra_key = {},
                          const std::string& extra_value = {}) {
  if (l.empty() && extra_key.empty()) {
    return {};
  }
  std::string out = "{";
  bool first = true;
  for (auto& [k, v] : l) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + escape_label(v) + "\"";
  }
  if (!extra_key.empty()) {
    if (!first) out += ',';
    out += extra_key + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

std::string number(double v) {
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

} // namespace

std::map<std::string, double> registry::sum_by(const std::string& name,
                                               const std::string& key) const {
  std::map<std::string, double> out;
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& f : families_) {
    if (f->name != name) continue;
    for (auto& s : f->members) {
      std::string at;
      for (auto& [k, v] : s->lbls) {
        if (k == key) at = v;
      }
      if (s->c) out[at] += static_cast<double>(s->c->value());
      if (s->g) out[at] += static_cast<double>(s->g->value());
    }
  }
  return out;
}

std::string registry::render() const {
  std::ostringstream out;
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& f : families_) {
    static const char* type_names[] = {"counter", "gauge", "histogram", "gauge"};
    out << "# HELP " << f->name << ' ' << f->help << '\n';
    out << "# TYPE " << f->name << ' ' << type_names[static_cast<int>(f->k)] << '\n';
    if (f->k == kind::gauge_fn) {
      out << f->name << ' ' << number(f->fn ? f->fn() : 0.0) << '\n';
      continue;
    }
    for (auto& s : f->members) {
      if (s->c) {
        out << f->name << render_labels(s->lbls) << ' ' << s->c->value() << '\n';
      } else if (s->g) {
        out << f->name << render_labels(s->lbls) << ' ' << s->g->value() << '\n';
      } else if (s->h) {
        auto counts = s->h->buckets();
        uint64_t cumulative = 0;
        for (size_t i = 0; i < counts.size(); ++i) {
          cumulative += counts[i];
          auto le = i < s->h->bounds().size() ? number(s->h->bounds()[i]) : "+Inf";
          out << f->name << "_bucket" << render_labels(s->lbls, "le", le) << ' '
              << cumulative << '\n';
        }
        out << f->name << "_sum" << render_labels(s->lbls) << ' ' << number(s->h->sum()) << '\n';
        out << f->name << "_count" << render_labels(s->lbls) << ' ' << cumulative << '\n';
      }
    }
  }
  return out.str();
}

registry& global() {
  static registry r;
  return r;
}

uint64_t resident_memory_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) {
    return 0;
  }
  unsigned long size = 0;
  unsigned long resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) {
    return 0;
  }
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

} // namespace gm::metrics
