// Implements the hiredis-backed client thread.
#include "persistence/redis.hpp"

#include <algorithm>

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "common/log.hpp"

namespace gm::redis {
namespace {

reply convert(const redisReply* r) {
  reply out;
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      out.type = reply::kind::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STRING:
      out.type = reply::kind::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = reply::kind::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = reply::kind::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = reply::kind::array;
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(convert(r->element[i]));
      }
      break;
    default:
      out.type = reply::kind::nil;
  }
  return out;
}

reply error_reply(std::string text) {
  reply out;
  out.type = reply::kind::error;
  out.str = std::move(text);
  return out;
}

/// Returns the converted reply to `argv` on `ctx`, or an error reply.
reply run_argv(redisContext* ctx, const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
    redisCommandArgv(ctx, static_cast<int>(args.size()), args.data(), lens.data()));
  if (r == nullptr) {
    return error_reply(std::string{"io: "} + ctx->errstr);
  }
  auto out = convert(r);
  freeReplyObject(r);
  return out;
}

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

} // namespace

client::client(endpoint ep, std::chrono::milliseconds timeout, size_t queue_limit)
  : ep_(std::move(ep)), timeout_(timeout), queue_limit_(queue_limit) {
  // nop
}

client::~client() {
  stop();
}

void client::start() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (started_ || stopping_) {
    return;
  }
  started_ = true;
  thread_ = std::thread([this] { run(); });
}

void client::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  disconnect();
  std::deque<std::pair<std::vector<std::string>, callback>> left;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    left.swap(queue_);
  }
  for (auto& [argv, done] : left) {
    done(error_reply("client stopped"));
  }
}

bool client::command(std::vector<std::string> argv, callback done) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_ || queue_.size() >= queue_limit_) {
      return false;
    }
    queue_.emplace_back(std::move(argv), std::move(done));
  }
  cv_.notify_one();
  return true;
}

void client::disconnect() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

bool client::ensure_connected(std::string& error) {
  if (ctx_ != nullptr && ctx_->err == 0) {
    return true;
  }
  disconnect();
  auto now = std::chrono::steady_clock::now();
  if (now < next_connect_) {
    // Fail fast while backing off, rather than stall every command.
    error = "redis unreachable (retrying)";
    return false;
  }
  auto tv = to_timeval(timeout_);
  ctx_ = redisConnectWithTimeout(ep_.host.c_str(), ep_.port, tv);
  auto fail = [&](std::string why) {
    error = "connect " + ep_.host + ":" + std::to_string(ep_.port) + ": " + why;
    disconnect();
    backoff_ = std::min(std::chrono::milliseconds{1000},
                        std::max(std::chrono::milliseconds{50}, backoff_ * 2));
    next_connect_ = now + backoff_;
    return false;
  };
  if (ctx_ == nullptr) {
    return fail("out of memory");
  }
  if (ctx_->err != 0) {
    return fail(ctx_->errstr);
  }
  redisSetTimeout(ctx_, tv);
  if (!ep_.password.empty()) {
    auto r = run_argv(ctx_, {"AUTH", ep_.password});
    if (!r.ok()) {
      return fail("AUTH: " + r.str);
    }
  }
  if (ep_.db != 0) {
    auto r = run_argv(ctx_, {"SELECT", std::to_string(ep_.db)});
    if (!r.ok()) {
      return fail("SELECT: " + r.str);
    }
  }
  backoff_ = std::chrono::milliseconds{0};
  return true;
}

reply client::execute(const std::vector<std::string>& argv) {
  std::string error;
  if (!ensure_connected(error)) {
    return error_reply(error);
  }
  auto out = run_argv(ctx_, argv);
  if (ctx_->err != 0) {
    disconnect(); // the context is unusable after an I/O error
  }
  return out;
}

void client::run() {
  auto log = gm::log::get("redis");
  for (;;) {
    std::pair<std::vector<std::string>, callback> item;
    {
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;
      }
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    auto r = execute(item.first);
    try {
      item.second(std::move(r));
    } catch (const std::exception& e) {
      log->error("redis callback threw: {}", e.what());
    }
  }
}

} // namespace gm::redis
