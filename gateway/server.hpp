// The HTTP/1.1 server of a node (Boost.Beast, its own io threads). Beast stays
// inside server.cpp; callers see only this interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gateway/routes.hpp"

namespace gm::gateway {

struct server_options {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;
  int threads = 2;
  uint64_t body_limit = 1 << 20;
  uint32_t header_limit = 16 << 10;
  std::chrono::milliseconds read_timeout{30000};
  size_t max_pipeline = 16;
};

/// Hands a request for an actor route to the actor side of the gateway.
using actor_dispatch = std::function<void(const route&, request, respond_fn)>;

class server {
public:
  server(server_options opts, const route_table& routes, actor_dispatch dispatch);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds, listens and starts the io threads. Returns the bound port.
  /// Throws std::runtime_error naming the address if it cannot bind.
  uint16_t start();

  /// Stops accepting connections; requests read from now on get
  /// `Connection: close`.
  void stop_accepting();

  /// Returns true once no request is in flight, false if `timeout` passed
  /// first. Blocks the calling thread: not for io threads or CAF workers.
  bool drain(std::chrono::milliseconds timeout);

  /// Closes every connection and joins the io threads. Safe to call twice.
  void stop();

  /// Returns the number of requests read and not yet answered.
  int64_t inflight() const;

  struct impl;  // defined in server.cpp

private:
  std::shared_ptr<impl> impl_;
};

} // namespace gm::gateway
