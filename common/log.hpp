// Logging for every subsystem: one named spdlog logger per subsystem, JSON
// lines in production mode and readable lines in dev, and the request id of
// the request being served on every line logged about it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

namespace gm::log {

enum class format { dev, json };

/// Configures the sinks and format of every logger made by `get`. Call once at
/// start, before threads log; `level` is spdlog's name ("info", "debug", ...).
void setup(format fmt, const std::string& level);

/// Returns the logger named `name` (one per subsystem), creating it on first
/// use with the sinks chosen by `setup`.
std::shared_ptr<spdlog::logger> get(const std::string& name);

/// Sets the request id that lines logged on this thread carry until the scope
/// ends. Log calls are synchronous, so the id reaches the formatter. The
/// scope refers to `request_id`, which must outlive it (no copy: this runs on
/// every request).
class request_scope {
public:
  explicit request_scope(const std::string& request_id);
  ~request_scope();
  request_scope(const request_scope&) = delete;
  request_scope& operator=(const request_scope&) = delete;

private:
  const std::string* previous_;
};

/// Returns `s` escaped for use inside a JSON string literal.
std::string json_escape(std::string_view s);

} // namespace gm::log
