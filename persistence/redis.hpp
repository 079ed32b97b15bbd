// A Redis client on its own thread (hiredis' blocking API stays off CAF
// workers and Beast io threads). Commands are queued; replies come back
// through callbacks on the client's thread. Reconnects by itself.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct redisContext;

namespace gm::redis {

struct reply {
  enum class kind { nil, status, string, integer, array, error };
  kind type = kind::nil;
  std::string str;        // status, string or error text
  int64_t integer = 0;
  std::vector<reply> elements;
  bool ok() const noexcept { return type != kind::error; }
};

struct endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  int db = 0;
  std::string password;
};

class client {
public:
  using callback = std::function<void(reply)>;

  client(endpoint ep, std::chrono::milliseconds timeout, size_t queue_limit = 10000);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  void start();
  /// Refuses new commands, finishes queued ones, joins the thread. Safe twice.
  void stop();

  /// Queues `argv` (e.g. {"INCR", "k"}); `done` gets the reply, or an error
  /// reply if the server cannot be reached. Returns false if not queued.
  bool command(std::vector<std::string> argv, callback done);

private:
  void run();
  reply execute(const std::vector<std::string>& argv);
  bool ensure_connected(std::string& error);
  void disconnect();

  endpoint ep_;
  std::chrono::milliseconds timeout_;
  size_t queue_limit_;
  redisContext* ctx_ = nullptr;
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_{0};
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::pair<std::vector<std::string>, callback>> queue_;
  std::thread thread_;
  bool stopping_ = false;
  bool started_ = false;
};

} // namespace gm::redis
