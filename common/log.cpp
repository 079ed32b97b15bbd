// Implements gm::log: a JSON-lines formatter and the shared sink setup.
#include "common/log.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace gm::log {
namespace {

thread_local const std::string* current_request_id = nullptr;

struct settings {
  std::mutex mtx;
  format fmt = format::dev;
  spdlog::level::level_enum level = spdlog::level::info;
  spdlog::sink_ptr sink;
};

settings& global() {
  static settings s;
  return s;
}

void append_time(spdlog::memory_buf_t& dest, const spdlog::details::log_msg& msg) {
  auto t = std::chrono::system_clock::to_time_t(msg.time);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              msg.time.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  auto n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                         tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  dest.append(buf, buf + n);
}

void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

/// One JSON object per line: ts, level, logger, msg and request_id if set.
class json_formatter final : public spdlog::formatter {
public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    append(dest, "{\"ts\":\"");
    append_time(dest, msg);
    append(dest, "\",\"level\":\"");
    auto lv = spdlog::level::to_string_view(msg.level);
    dest.append(lv.data(), lv.data() + lv.size());
    append(dest, "\",\"logger\":\"");
    append(dest, json_escape({msg.logger_name.data(), msg.logger_name.size()}));
    append(dest, "\",\"msg\":\"");
    append(dest, json_escape({msg.payload.data(), msg.payload.size()}));
    append(dest, "\"");
    if (current_request_id != nullptr && !current_request_id->empty()) {
      append(dest, ",\"request_id\":\"");
      append(dest, json_escape(*current_request_id));
      append(dest, "\"");
    }
    append(dest, "}\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

/// Human lines: time, level, logger, [request id], message.
class dev_formatter final : public spdlog::formatter {
public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    append_time(dest, msg);
    append(dest, " ");
    auto lv = spdlog::level::to_string_view(msg.level);
    dest.append(lv.data(), lv.data() + lv.size());
    append(dest, " [");
    dest.append(msg.logger_name.data(), msg.logger_name.data() + msg.logger_name.size());
    append(dest, "] ");
    if (current_request_id != nullptr && !current_request_id->empty()) {
      append(dest, "[req ");
      append(dest, *current_request_id);
      append(dest, "] ");
    }
    dest.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
    append(dest, "\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<dev_formatter>();
  }
};

std::unique_ptr<spdlog::formatter> make_formatter(format fmt) {
  if (fmt == format::json) {
    return std::make_unique<json_formatter>();
  }
  return std::make_unique<dev_formatter>();
}

/// stderr through a queue and a thread of its own: a line is formatted on
/// the thread that logs (the request id is that thread's), and written by
/// the writer thread, so an io thread or CAF worker never waits on a pipe
/// a slow reader fills. Bounded: past `max_lines` waiting, lines are
/// counted and dropped, and the writer says how many.
class queued_stderr_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  static constexpr size_t max_lines = 20000;

  queued_stderr_sink() : writer_([this] { run(); }) {}

  ~queued_stderr_sink() override {
    {
      std::lock_guard<std::mutex> lock{qm_};
      stop_ = true;
    }
    cv_.notify_one();
    writer_.join();
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    {
      std::lock_guard<std::mutex> lock{qm_};
      if (lines_.size() >= max_lines) {
        ++dropped_;
        return;
      }
      lines_.emplace_back(buf.data(), buf.size());
    }
    cv_.notify_one();
  }

  void flush_() override {
    std::unique_lock<std::mutex> lock{qm_};
    drained_.wait_for(lock, std::chrono::seconds{2}, [this] { return lines_.empty() && idle_; });
  }

private:
  void run() {
    std::unique_lock<std::mutex> lock{qm_};
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !lines_.empty(); });
      if (lines_.empty() && stop_) return;
      std::deque<std::string> out;
      out.swap(lines_);
      auto dropped = dropped_;
      dropped_ = 0;
      idle_ = false;
      lock.unlock();
      if (dropped > 0) std::fprintf(stderr, "(log: %zu lines dropped, the writer fell behind)\n", dropped);
      for (auto& l : out) std::fwrite(l.data(), 1, l.size(), stderr);
      std::fflush(stderr);
      lock.lock();
      idle_ = true;
      drained_.notify_all();
    }
  }

  std::mutex qm_;
  std::condition_variable cv_;
  std::condition_variable drained_;
  std::deque<std::string> lines_;
  size_t dropped_ = 0;
  bool idle_ = true;
  bool stop_ = false;
  std::thread writer_;
};

} // namespace

void setup(format fmt, const std::string& level) {
  auto& g = global();
  std::lock_guard<std::mutex> guard{g.mtx};
  g.fmt = fmt;
  g.level = spdlog::level::from_str(level);
  // stderr through the writer thread, which writes each line at once (tests
  // read the log while the node runs).
  g.sink = std::make_shared<queued_stderr_sink>();
  g.sink->set_formatter(make_formatter(fmt));
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks().clear();
    l->sinks().push_back(g.sink);
    l->set_level(g.level);
  });
}

std::shared_ptr<spdlog::logger> get(const std::string& name) {
  if (auto existing = spdlog::get(name)) {
    return existing;
  }
  auto& g = global();
  std::lock_guard<std::mutex> guard{g.mtx};
  if (auto existing = spdlog::get(name)) {
    return existing;
  }
  if (!g.sink) {
    g.sink = std::make_shared<queued_stderr_sink>();
    g.sink->set_formatter(make_formatter(g.fmt));
  }
  auto logger = std::make_shared<spdlog::logger>(name, g.sink);
  logger->set_level(g.level);
  spdlog::register_logger(logger);
  return logger;
}

request_scope::request_scope(const std::string& request_id) : previous_(current_request_id) {
  current_request_id = &request_id;
}

request_scope::~request_scope() {
  current_request_id = previous_;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

} // namespace gm::log
