// The HTTP/1.1 server of a node (Boost.Beast, its own io threads). Beast stays
// inside server.cpp; callers see only this interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
  size_t ws_message_max = 64 << 10;  // bytes per incoming WebSocket message
  size_t ws_send_queue = 4096;       // frames queued per WebSocket before it is closed
  size_t ws_socket_buffer = 64 << 10;  // kernel send buffer of a WebSocket, bytes
  // A WebSocket that sends nothing (not even a pong) is pinged after half of
  // this and closed after all of it: dead and half-open peers go.
  std::chrono::milliseconds ws_idle_timeout{60000};
  // A request the actors have not answered after this gets 503 from the
  // server itself (0: wait forever). Handlers may answer later: the late
  // answer is dropped. The gateway's asks carry no CAF timeout of their
  // own; this is their deadline.
  std::chrono::milliseconds answer_timeout{0};
};

/// Hands a request for an actor route to the actor side of the gateway.
using actor_dispatch = std::function<void(const route&, request, respond_fn)>;

/// Who opened a WebSocket (decided from the token before the upgrade).
struct ws_identity {
  std::string user_id;
  std::string role;
  int64_t token_exp = 0;  // unix seconds
};

/// A WebSocket as the server offers it to the rest of the gateway. Safe to
/// call from any thread; no-ops once the socket is closed.
struct ws_peer {
  /// Queues a text frame. A peer whose send queue is full is closed (1008):
  /// one slow client must not grow the node's memory.
  std::function<void(std::shared_ptr<const std::string>)> send;
  /// Closes with `code` and `reason`.
  std::function<void(uint16_t, std::string)> close;
};

/// The gateway's side of one WebSocket. Called on an io thread.
class ws_link {
public:
  virtual ~ws_link() = default;
  virtual void on_text(std::string text) = 0;
  /// Called once, when the socket is gone.
  virtual void on_closed() = 0;
};

struct ws_hooks {
  /// Returns nullopt to accept the upgrade (filling `who`), or the HTTP
  /// answer that refuses it (401).
  std::function<std::optional<response>(const request&, ws_identity&)> authorize;
  /// Opens the gateway's side of an accepted WebSocket.
  std::function<std::shared_ptr<ws_link>(const ws_identity&, ws_peer)> open;
};

class server {
public:
  server(server_options opts, const route_table& routes, actor_dispatch dispatch,
         ws_hooks ws = {});
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
