// Implements the Beast listener and HTTP sessions.
//
// A session reads requests one after another while earlier ones are still
// being answered (pipelining), up to max_pipeline outstanding; responses are
// written strictly in request order. Every completion runs on the session's
// strand. A request that cannot be parsed gets a 4xx problem document with
// `Connection: close`; the session then half-closes and reads and discards
// what the client still sends (bounded), so the client sees the response
// instead of a connection reset.
//
// Deadlines are coarse: each session stores when it must have made progress
// (an atomic, set with one clock read and no syscall), and one sweep timer per
// server closes the sessions past theirs. Re-arming Beast's per-stream timer
// on every read cost about 10% of throughput (bench/http.sh).
#include "gateway/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "common/log.hpp"
#include "common/metrics.hpp"

namespace gm::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using strand_t = asio::strand<asio::io_context::executor_type>;
using clock = std::chrono::steady_clock;

constexpr size_t discard_limit = 4 << 20;
constexpr std::chrono::seconds discard_timeout{2};

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    auto v = rng();
    for (int i = 0; i < 16; ++i) {
      id[static_cast<size_t>(half * 16 + i)] = hex[(v >> (4 * i)) & 0xf];
    }
  }
  return id;
}

/// Returns the client's X-Request-Id if it is safe to echo and log, else "".
std::string accepted_request_id(std::string_view v) {
  if (v.empty() || v.size() > 128) {
    return {};
  }
  for (char c : v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) {
      return {};
    }
  }
  return std::string{v};
}

std::string_view trimmed(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

/// Why `req` uses a transfer coding this server does not implement, or
/// nullopt: only `chunked`, alone, is read (the parser would take
/// `gzip, chunked` as chunked and hand on compressed bytes as JSON).
std::optional<std::string> unsupported_coding(const http::request<http::string_body>& req) {
  auto n = req.count(http::field::transfer_encoding);
  if (n == 0) return std::nullopt;
  auto v = trimmed(req[http::field::transfer_encoding]);
  if (n == 1 && iequals(v, "chunked")) return std::nullopt;
  return "only Transfer-Encoding: chunked is supported, not \"" +
         std::string{req[http::field::transfer_encoding]} + "\"";
}

/// RFC 6455 4.2.1: the handshake's own fields, checked before the token so
/// that a refusal is a problem document like every other answer (the
/// WebSocket library would answer in plain text): version 13 (else 426
/// naming it), and a key that is 16 bytes in base64.
std::optional<response> handshake_refusal(const http::request<http::string_body>& req) {
  auto version = req.find(http::field::sec_websocket_version);
  if (version == req.end()) {
    auto r = problem(400, "bad-upgrade", "Bad Request",
                     "a WebSocket handshake needs Sec-WebSocket-Version: 13");
    r.headers.emplace_back("Sec-WebSocket-Version", "13");
    return r;
  }
  if (req.count(http::field::sec_websocket_version) != 1 ||
      trimmed(version->value()) != "13") {
    auto r = problem(426, "upgrade-required", "Upgrade Required",
                     "this server speaks WebSocket version 13 only");
    r.headers.emplace_back("Sec-WebSocket-Version", "13");
    return r;
  }
  auto key = req.count(http::field::sec_websocket_key) == 1
               ? trimmed(req[http::field::sec_websocket_key])
               : std::string_view{};
  auto b64 = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
  };
  bool key_ok = key.size() == 24 && key.substr(22) == "==" &&
                std::all_of(key.begin(), key.begin() + 22, b64);
  if (!key_ok) {
    return problem(400, "bad-upgrade", "Bad Request",
                   "Sec-WebSocket-Key must be one 16-byte value in base64");
  }
  return std::nullopt;
}

struct route_metrics {
  std::string route;
  metrics::histogram* latency = nullptr;
  std::array<std::atomic<metrics::counter*>, 600> by_status{};
};

} // namespace

class session;
class ws_session;

/// The shortest of the deadlines the sweep enforces.
std::chrono::milliseconds shortest_deadline(const server_options& o) {
  return o.answer_timeout.count() > 0 ? std::min(o.read_timeout, o.answer_timeout)
                                      : o.read_timeout;
}

struct server::impl : std::enable_shared_from_this<server::impl> {
  server_options opts;
  const route_table& routes;
  actor_dispatch dispatch;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::atomic<bool> draining{false};
  std::atomic<int64_t> inflight{0};
  std::mutex sessions_mtx;
  std::unordered_map<session*, std::weak_ptr<session>> sessions;
  ws_hooks ws;
  std::unordered_map<ws_session*, std::weak_ptr<ws_session>> websockets;
  metrics::gauge& ws_open = metrics::global().get_gauge(
    "gigmesh_ws_sessions", "open WebSocket sessions");
  metrics::counter& ws_slow = metrics::global().get_counter(
    "gigmesh_ws_slow_consumer_closes_total", "WebSockets closed because their send queue was full");
  std::vector<std::unique_ptr<route_metrics>> per_route;  // last: unmatched
  metrics::gauge& connections = metrics::global().get_gauge(
    "gigmesh_http_connections", "open HTTP connections");
  metrics::gauge& inflight_gauge = metrics::global().get_gauge(
    "gigmesh_http_requests_in_flight", "requests read and not yet answered");
  bool stopped = false;
  asio::steady_timer sweep_timer;
  // Accept failures: counted and logged at most every 10 s; out of
  // descriptors, accepting pauses (see accept_failed).
  asio::steady_timer accept_timer;
  int64_t accept_errors = 0;
  clock::time_point accept_logged{};
  std::chrono::milliseconds sweep_interval;
  std::shared_ptr<spdlog::logger> log = gm::log::get("http");

  impl(server_options o, const route_table& r, actor_dispatch d, ws_hooks w)
    : opts(std::move(o)), routes(r), dispatch(std::move(d)),
      ioc(opts.threads), acceptor(ioc), ws(std::move(w)), sweep_timer(ioc), accept_timer(ioc),
      sweep_interval(std::clamp(shortest_deadline(opts) / 4, std::chrono::milliseconds{10},
                                std::chrono::milliseconds{1000})) {
    for (auto& rt : routes.all()) {
      auto m = std::make_unique<route_metrics>();
      m->route = rt->pattern;
      per_route.push_back(std::move(m));
    }
    auto m = std::make_unique<route_metrics>();
    m->route = "unmatched";
    per_route.push_back(std::move(m));
    for (auto& pm : per_route) {
      pm->latency = &metrics::global().get_histogram(
        "gigmesh_http_request_duration_seconds", "time from request read to response written",
        {{"route", pm->route}});
    }
  }

  void record(size_t route_index, int status, double seconds) {
    auto& pm = *per_route[std::min(route_index, per_route.size() - 1)];
    pm.latency->observe(seconds);
    auto idx = static_cast<size_t>(std::clamp(status, 0, 599));
    auto* c = pm.by_status[idx].load(std::memory_order_acquire);
    if (c == nullptr) {
      c = &metrics::global().get_counter("gigmesh_http_requests_total",
                                         "HTTP requests by route and status",
                                         {{"route", pm.route}, {"status", std::to_string(status)}});
      pm.by_status[idx].store(c, std::memory_order_release);
    }
    c->inc();
  }

  void do_accept();
  void accept_failed(const beast::error_code& ec);
  void schedule_sweep();
  void sweep();
};

/// One WebSocket: reads text frames and hands them to the gateway's link;
/// writes what the link sends from a bounded queue, in order. Every
/// completion runs on the connection's strand.
class ws_session : public std::enable_shared_from_this<ws_session> {
public:
  ws_session(beast::tcp_stream&& stream, strand_t strand, std::shared_ptr<server::impl> srv,
             ws_identity who)
    : ws_(std::move(stream)), strand_(std::move(strand)), srv_(std::move(srv)),
      who_(std::move(who)) {
    srv_->ws_open.add(1);
  }

  /// At stop, once the io threads are joined: a peer that never answered
  /// the close leaves handlers that will never run (and the session in a
  /// cycle with the loop), so the link hears of the end now; else its
  /// actor never quits and the actor system waits for it forever.
  void abandon() { finish(); }

  ~ws_session() {
    finish();  // the loop stopped under us: the link must still hear of it
    srv_->ws_open.add(-1);
    std::lock_guard<std::mutex> guard{srv_->sessions_mtx};
    srv_->websockets.erase(this);
  }

  void accept(http::request<http::string_body> req, const std::string& request_id) {
    {
      std::lock_guard<std::mutex> guard{srv_->sessions_mtx};
      srv_->websockets.emplace(this, weak_from_this());
    }
    beast::get_lowest_layer(ws_).expires_never();
    // A small kernel send buffer too: what a client does not read piles up
    // in our bounded queue (and gets it closed), not in the kernel.
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(
      asio::socket_base::send_buffer_size(static_cast<int>(srv_->opts.ws_socket_buffer)), ignored);
    // Idle sockets are pinged; a peer that does not answer is closed.
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = srv_->opts.ws_idle_timeout;
    timeouts.keep_alive_pings = true;
    // Also the bound of a closing handshake: after our close frame the
    // session reads and discards until the client's close, at most this
    // long (RFC 6455 7.1.1), then drops the connection.
    timeouts.handshake_timeout = std::chrono::seconds{5};
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator([request_id](websocket::response_type& res) {
      res.set(http::field::server, "gigmesh");
      res.set("X-Request-Id", request_id);
    }));
    // No limit in Beast: it fails an oversized message by closing the TCP
    // connection while the client may still be sending (the client then
    // sees a reset, not our 1009). The session counts the message itself
    // and closes with the handshake (on_read).
    ws_.read_message_max(0);
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
      self->on_accept(ec);
    });
  }

  /// Closes the socket from outside (the node stops).
  void shutdown() {
    asio::post(strand_, [self = shared_from_this()] {
      self->start_close(websocket::close_code::going_away, "the node is stopping");
    });
  }

private:
  ws_peer peer() {
    std::weak_ptr<ws_session> weak = shared_from_this();
    ws_peer p;
    p.send = [weak](std::shared_ptr<const std::string> text) {
      if (auto self = weak.lock()) {
        asio::post(self->strand_, [self, text = std::move(text)]() mutable {
          self->queue(std::move(text));
        });
      }
    };
    p.close = [weak](uint16_t code, std::string reason) {
      if (auto self = weak.lock()) {
        asio::post(self->strand_, [self, code, reason = std::move(reason)] {
          self->start_close(static_cast<websocket::close_code>(code), reason);
        });
      }
    };
    return p;
  }

  void on_accept(beast::error_code ec) {
    if (ec) {
      finish();
      return;
    }
    link_ = srv_->ws.open(who_, peer());
    do_read();
  }

  void do_read() {
    // A message in pieces, so that its size is known before it is whole.
    ws_.async_read_some(buffer_, 64 << 10,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          self->on_read(ec);
                        });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      // Closed by the peer, not UTF-8 (Beast closes with 1007), a dead
      // peer: in every case the session ends.
      finish();
      return;
    }
    if (buffer_.size() > srv_->opts.ws_message_max) {
      // Too big: close with 1009. No read follows: the close reads and
      // discards the rest until the client's close (or the handshake
      // timeout), so the client reads our close instead of a reset.
      buffer_.consume(buffer_.size());
      start_close(websocket::close_code::too_big, "message too big");
      return;
    }
    if (!ws_.is_message_done()) {
      do_read();
      return;
    }
    if (!ws_.got_text()) {
      buffer_.consume(buffer_.size());
      start_close(websocket::close_code::unknown_data,  // 1003
                  "binary frames are not supported; send JSON text");
      return;
    }
    auto text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    if (link_ && !closing_) link_->on_text(std::move(text));
    do_read();
  }

  void queue(std::shared_ptr<const std::string> text) {
    if (closing_) return;
    if (out_.size() >= srv_->opts.ws_send_queue) {
      srv_->ws_slow.inc();
      start_close(websocket::close_code::policy_error, "too slow: the send queue is full");
      return;
    }
    out_.push_back(std::move(text));
    do_write();
  }

  void do_write() {
    if (writing_ || out_.empty()) return;
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(*out_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->on_write(ec);
                    });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (!out_.empty()) out_.pop_front();
    if (ec) {
      finish();
      return;
    }
    if (close_pending_) {
      send_close();
      return;
    }
    do_write();
  }

  void start_close(websocket::close_code code, const std::string& reason) {
    if (closing_) return;
    closing_ = true;
    close_reason_ = websocket::close_reason{code, reason};
    drop_queued();
    if (writing_) {
      close_pending_ = true;  // one write at a time: close after this one
      return;
    }
    send_close();
  }

  /// Drops what waits to be written; the frame being written stays (Beast
  /// is reading from it).
  void drop_queued() {
    if (out_.empty()) return;
    if (writing_) {
      out_.erase(out_.begin() + 1, out_.end());
    } else {
      out_.clear();
    }
  }

  void send_close() {
    close_pending_ = false;
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) {
      self->finish();
    });
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    if (link_) link_->on_closed();
  }

  websocket::stream<beast::tcp_stream> ws_;
  strand_t strand_;
  std::shared_ptr<server::impl> srv_;
  ws_identity who_;
  std::shared_ptr<ws_link> link_;
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> out_;  // frames may be shared
  bool writing_ = false;
  bool closing_ = false;
  bool close_pending_ = false;
  bool finished_ = false;
  websocket::close_reason close_reason_;
};

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, strand_t strand, std::shared_ptr<server::impl> srv)
    : strand_(std::move(strand)), stream_(std::move(socket)), srv_(std::move(srv)) {
    srv_->connections.add(1);
  }

  ~session() {
    // Requests read but never answered (the connection died first) are no
    // longer in flight.
    auto unanswered = static_cast<int64_t>(queue_.size());
    srv_->inflight.fetch_sub(unanswered);
    srv_->inflight_gauge.add(-unanswered);
    srv_->connections.add(-1);
    std::lock_guard<std::mutex> guard{srv_->sessions_mtx};
    srv_->sessions.erase(this);
  }

  void run() {
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_read(); });
  }

  /// Returns true if the session's deadline is set and not after `now`.
  bool expired(int64_t now) const {
    auto d = deadline_.load(std::memory_order_relaxed);
    return d != 0 && d <= now;
  }

  /// Called by the sweeper for a session past its deadline.
  void deadline_passed() {
    asio::post(strand_, [self = shared_from_this()] { self->on_deadline(); });
  }

  /// Closes the connection at once if nothing is pending (used at stop).
  void close_when_idle() {
    asio::post(strand_, [self = shared_from_this()] {
      self->read_closed_ = true;
      if (self->queue_.empty()) {
        self->close();
      }
    });
  }

private:
  struct slot {
    bool ready = false;
    bool keep_alive = true;
    bool discard_after = false;
    size_t route_index = SIZE_MAX;
    bool unsafe = false;  // not GET/HEAD/OPTIONS: later requests wait for its answer
    bool head = false;    // a HEAD request: the answer carries no body
    bool http10 = false;  // an HTTP/1.0 request: keep-alive must be said
    int status = 0;
    clock::time_point start;
    std::string request_id;
    std::string wire;  // the answer as it goes out (wire_bytes)
  };

  /// RFC 9112 9.3.2: only safe requests may be handled in parallel. A
  /// pipelined POST waits until every earlier request is answered, and
  /// nothing after it is read until it is (a deposit then a withdrawal on
  /// one connection must happen in that order).
  static bool is_safe(http::verb v) {
    return v == http::verb::get || v == http::verb::head || v == http::verb::options;
  }

  bool unsafe_outstanding() const {
    return std::any_of(queue_.begin(), queue_.end(), [](auto& s) { return s->unsafe; });
  }

  void do_read() {
    if (upgraded_ || reading_ || read_closed_ || deferred_ ||
        queue_.size() >= srv_->opts.max_pipeline || unsafe_outstanding()) {
      return;
    }
    parser_.emplace();
    parser_->body_limit(srv_->opts.body_limit);
    parser_->header_limit(srv_->opts.header_limit);
    arm(srv_->opts.read_timeout);
    reading_ = true;
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (ec) {
      read_closed_ = true;
      if (ec == http::error::body_limit) {
        reject(413, "payload-too-large", "Payload Too Large",
               "the request body exceeds " + std::to_string(srv_->opts.body_limit) + " bytes");
      } else if (ec == http::error::header_limit) {
        reject(431, "headers-too-large", "Request Header Fields Too Large",
               "the request header block exceeds " +
                 std::to_string(srv_->opts.header_limit) + " bytes");
      } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
                 ec != http::error::end_of_stream && ec != http::error::partial_message) {
        reject(400, "malformed-request", "Bad Request",
               "the request is not valid HTTP/1.1: " + ec.message());
      } else {
        // End of stream, timeout, reset: nothing more to read. Answer what
        // is pending, then close.
        maybe_close();
      }
      return;
    }
    auto req = parser_->release();
    if (!is_safe(req.method()) && !queue_.empty()) {
      deferred_.emplace(std::move(req));  // handled once the earlier ones are answered
      return;
    }
    handle(std::move(req));
    do_read();
  }

  /// Queues an error response for a request that could not be read.
  void reject(int status, const char* type, const char* title, const std::string& detail) {
    auto s = std::make_shared<slot>();
    s->start = clock::now();
    s->request_id = new_request_id();
    s->keep_alive = false;
    s->discard_after = true;
    queue_.push_back(s);
    srv_->inflight.fetch_add(1);
    srv_->inflight_gauge.add(1);
    {
      gm::log::request_scope scope{s->request_id};
      srv_->log->info("rejected request from {}: {} {}", remote_ip(), status, detail);
    }
    complete(s, problem(status, type, title, detail));
  }

  /// Returns the peer's address, looked up once per connection.
  const std::string& remote_ip() {
    if (!remote_ip_known_) {
      beast::error_code ec;
      auto ep = stream_.socket().remote_endpoint(ec);
      remote_ip_ = ec ? std::string{} : ep.address().to_string();
      remote_ip_known_ = true;
    }
    return remote_ip_;
  }

  void handle(http::request<http::string_body>&& req) {
    auto s = std::make_shared<slot>();
    s->start = clock::now();
    s->request_id = accepted_request_id(req["X-Request-Id"]);
    if (s->request_id.empty()) {
      s->request_id = new_request_id();
    }
    s->unsafe = !is_safe(req.method());
    s->head = req.method() == http::verb::head;
    s->http10 = req.version() == 10;
    s->keep_alive = req.keep_alive() && !srv_->draining.load();
    if (!s->keep_alive) {
      read_closed_ = true;
    }
    queue_.push_back(s);
    srv_->inflight.fetch_add(1);
    srv_->inflight_gauge.add(1);

    std::string method{req.method_string()};
    std::string target{req.target()};
    // RFC 9112 3.2: an HTTP/1.1 request names its Host; 3.2.2: a server
    // accepts the absolute form (http://host/path) and routes on its path.
    if (req.version() >= 11 && req.find(http::field::host) == req.end()) {
      complete(s, problem(400, "malformed-request", "Bad Request",
                          "an HTTP/1.1 request must have a Host header"));
      return;
    }
    if (req.count(http::field::host) > 1) {  // RFC 9112 3.2
      complete(s, problem(400, "malformed-request", "Bad Request",
                          "a request must have one Host header"));
      return;
    }
    if (auto why = unsupported_coding(req)) {
      // RFC 9112 6.1: a transfer coding we do not implement is 501; the
      // body's framing is then unknown, so the connection closes.
      s->keep_alive = false;
      read_closed_ = true;
      complete(s, problem(501, "not-implemented", "Not Implemented", *why));
      return;
    }
    if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {
      auto slash = target.find('/', target.find("://") + 3);
      target = slash == std::string::npos ? "/" : target.substr(slash);
    }
    auto q = target.find('?');
    std::string path = q == std::string::npos ? target : target.substr(0, q);
    if (path == "/ws" && srv_->ws.open && websocket::is_upgrade(req)) {
      upgrade(s, std::move(req), method, path, target, q);
      return;
    }
    auto m = srv_->routes.match(method, path);
    if (m.found == nullptr && path == "/ws" && srv_->ws.open) {
      // The WebSocket endpoint, asked without an upgrade (RFC 6455 4.2.2).
      auto r = problem(426, "upgrade-required", "Upgrade Required",
                       "GET /ws is a WebSocket endpoint: send Upgrade: websocket");
      r.headers.emplace_back("Upgrade", "websocket");
      r.headers.emplace_back("Sec-WebSocket-Version", "13");
      complete(s, std::move(r));
      return;
    }
    if (m.found == nullptr) {
      if (m.path_known) {
        auto r = problem(405, "method-not-allowed", "Method Not Allowed",
                         method + " is not allowed on " + path);
        std::string allow;
        for (auto& a : m.allowed) {
          allow += allow.empty() ? a : ", " + a;
        }
        r.headers.emplace_back("Allow", allow);
        complete(s, std::move(r));
      } else {
        complete(s, problem(404, "not-found", "Not Found", "no route for " + path));
      }
      return;
    }
    s->route_index = m.found->index;

    request rq;
    rq.method = std::move(method);
    rq.path = std::move(path);
    if (q != std::string::npos) {
      rq.query = target.substr(q + 1);
    }
    rq.target = std::move(target);
    for (auto& f : req) {
      rq.headers.emplace_back(std::string{f.name_string()}, std::string{f.value()});
    }
    rq.body = std::move(req.body());
    rq.request_id = s->request_id;
    rq.remote_ip = remote_ip();
    rq.path_params = std::move(m.params);

    // The handler holds the session weakly: one that never answers (its
    // actor died mid-request) keeps nothing alive. The session holds itself
    // while it owes answers, and the sweep answers 503 at the deadline.
    if (!hold_) hold_ = shared_from_this();
    publish_deadline();
    std::weak_ptr<session> weak = hold_;
    respond_fn respond = [weak, s](response r) {
      auto self = weak.lock();
      if (!self) return;  // the connection is gone
      if (self->strand_.running_in_this_thread()) {
        self->complete(s, std::move(r));
      } else {
        asio::post(self->strand_, [self, s, r = std::move(r)]() mutable {
          self->complete(s, std::move(r));
        });
      }
    };
    gm::log::request_scope scope{s->request_id};
    try {
      if (m.found->on_io) {
        m.found->on_io(rq, std::move(respond));
      } else {
        srv_->dispatch(*m.found, std::move(rq), std::move(respond));
      }
    } catch (const std::exception& e) {
      // A handler bug must not take the connection or the node down.
      srv_->log->error("handler for {} threw: {}", m.found->pattern, e.what());
      if (!s->ready) {
        complete(s, problem(500, "internal", "Internal Server Error", "the request failed"));
      }
    }
  }

  /// `GET /ws` with an Upgrade header: the token decides before the
  /// upgrade (a refusal is a plain HTTP answer); then the connection
  /// belongs to a ws_session and this HTTP session ends.
  void upgrade(const std::shared_ptr<slot>& s, http::request<http::string_body>&& req,
               const std::string& method, const std::string& path, const std::string& target,
               size_t q) {
    request rq;
    rq.method = method;
    rq.path = path;
    if (q != std::string::npos) rq.query = target.substr(q + 1);
    rq.target = target;
    for (auto& f : req) {
      rq.headers.emplace_back(std::string{f.name_string()}, std::string{f.value()});
    }
    rq.request_id = s->request_id;
    rq.remote_ip = remote_ip();
    ws_identity who;
    auto refusal = handshake_refusal(req);
    if (!refusal) refusal = srv_->ws.authorize(rq, who);
    if (refusal) {
      s->keep_alive = false;
      read_closed_ = true;
      complete(s, std::move(*refusal));
      return;
    }
    if (queue_.size() != 1 || writing_) {
      s->keep_alive = false;
      read_closed_ = true;
      complete(s, problem(400, "bad-upgrade", "Bad Request",
                          "a WebSocket upgrade must not follow unanswered requests"));
      return;
    }
    queue_.pop_front();  // answered by the handshake, not over HTTP
    srv_->inflight.fetch_sub(1);
    srv_->inflight_gauge.add(-1);
    upgraded_ = true;
    read_closed_ = true;
    deadline_.store(0, std::memory_order_relaxed);
    auto ws = std::make_shared<ws_session>(std::move(stream_), strand_, srv_, std::move(who));
    ws->accept(std::move(req), s->request_id);
  }

  void complete(const std::shared_ptr<slot>& s, response r) {
    if (s->ready) {
      return; // responded twice: keep the first
    }
    s->ready = true;
    s->status = r.status;
    http::response<http::string_body> res;
    res.version(11);
    res.result(static_cast<unsigned>(r.status));
    res.set(http::field::server, "gigmesh");
    res.set("X-Request-Id", s->request_id);
    if (!r.body.empty() || r.status != 204) {
      res.set(http::field::content_type, r.content_type);
    }
    for (auto& [k, v] : r.headers) {
      res.set(k, v);
    }
    res.body() = std::move(r.body);
    res.keep_alive(s->keep_alive);
    if (s->http10 && s->keep_alive) {
      // An HTTP/1.0 client keeps the connection only if the answer says so.
      res.set(http::field::connection, "keep-alive");
    }
    res.prepare_payload();
    if (s->head) {
      // RFC 9110 9.3.2: no content in the answer to HEAD; Content-Length
      // still tells the size the body would have.
      res.body().clear();
    }
    s->wire = wire_bytes(res);
    do_write();
  }

  /// The response as it goes on the wire: Beast decided the fields
  /// (Content-Length, Connection); one contiguous buffer is cheaper to
  /// send than Beast's serializer walking a chain of field buffers (about
  /// a seventh of an io thread's time in the transfer bench).
  static std::string wire_bytes(const http::response<http::string_body>& res) {
    auto reason = res.reason();
    size_t n = 32 + reason.size() + res.body().size();
    for (auto& f : res) n += f.name_string().size() + f.value().size() + 4;
    std::string w;
    w.reserve(n);
    w += "HTTP/1.1 ";
    w += std::to_string(res.result_int());
    w += ' ';
    w.append(reason.data(), reason.size());
    w += "\r\n";
    for (auto& f : res) {
      w.append(f.name_string().data(), f.name_string().size());
      w += ": ";
      w.append(f.value().data(), f.value().size());
      w += "\r\n";
    }
    w += "\r\n";
    w += res.body();
    return w;
  }

  void do_write() {
    if (writing_ || queue_.empty() || !queue_.front()->ready) {
      return;
    }
    writing_ = true;
    write_started_ = clock::now();
    auto s = queue_.front();
    asio::async_write(stream_, asio::buffer(s->wire),
                      [self = shared_from_this(), s](beast::error_code ec, size_t) {
                        self->on_write(ec, s);
                      });
  }

  void on_write(beast::error_code ec, const std::shared_ptr<slot>& s) {
    writing_ = false;
    queue_.pop_front();
    if (queue_.empty()) hold_.reset();  // owes nothing: the write op holds us
    auto elapsed = std::chrono::duration<double>(clock::now() - s->start).count();
    srv_->record(s->route_index, s->status, elapsed);
    srv_->inflight.fetch_sub(1);
    srv_->inflight_gauge.add(-1);
    if (s->status >= 500) {
      gm::log::request_scope scope{s->request_id};
      srv_->log->warn("answered {}", s->status);
    }
    if (ec) {
      read_closed_ = true;
      close();
      return;
    }
    if (s->discard_after) {
      discard();
      return;
    }
    if (!s->keep_alive) {
      read_closed_ = true;
    }
    if (deferred_ && queue_.empty()) {
      auto req = std::move(*deferred_);
      deferred_.reset();
      handle(std::move(req));
    }
    do_write();
    do_read();
    maybe_close();
  }

  void maybe_close() {
    if (read_closed_ && queue_.empty() && !writing_ && !discarding_) {
      close();
    }
  }

  void close() {
    hold_.reset();  // answers still owed have nobody to go to
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  void discard() {
    discarding_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    discard_buf_ = std::make_unique<std::array<char, 16384>>();
    arm(discard_timeout);
    do_discard();
  }

  void do_discard() {
    stream_.async_read_some(asio::buffer(*discard_buf_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->discarded_ += n;
                              if (ec || self->discarded_ > discard_limit) {
                                self->discarding_ = false;
                                self->close();
                                return;
                              }
                              self->do_discard();
                            });
  }

  /// Sets the read (or write, or discard) deadline `d` from now.
  void arm(std::chrono::nanoseconds d) {
    read_due_ = clock::now() + d;
    publish_deadline();
  }

  /// Tells the sweep when to look at this session next: at the read
  /// deadline, or sooner if an answer is due sooner.
  void publish_deadline() {
    auto t = read_due_;
    if (srv_->opts.answer_timeout.count() > 0) {
      for (auto& s : queue_) {
        if (!s->ready) {  // the oldest unanswered: due first
          t = std::min(t, s->start + srv_->opts.answer_timeout);
          break;
        }
      }
    }
    deadline_.store(t.time_since_epoch().count(), std::memory_order_relaxed);
  }

  /// Answers 503 for every request still unanswered after answer_timeout.
  void answer_overdue(clock::time_point now) {
    auto limit = srv_->opts.answer_timeout;
    if (limit.count() == 0) return;
    std::vector<std::shared_ptr<slot>> late;
    for (auto& s : queue_) {
      if (!s->ready && now - s->start >= limit) late.push_back(s);
    }
    for (auto& s : late) {
      gm::log::request_scope scope{s->request_id};
      srv_->log->warn("no answer within {} ms: 503", limit.count());
      auto r = problem(503, "outcome-unknown", "Service Unavailable",
                       "no answer within " + std::to_string(limit.count()) +
                         " ms; the request may still take effect");
      r.headers.emplace_back("Retry-After", "1");
      complete(s, std::move(r));
    }
  }

  void on_deadline() {
    auto now = clock::now();
    if (!expired(now.time_since_epoch().count())) {
      return;  // re-armed since the sweep
    }
    answer_overdue(now);
    if (now < read_due_) {  // an answer was due, not the connection's deadline
      publish_deadline();
      return;
    }
    bool idle = queue_.empty() && !writing_;
    bool stalled_write = writing_ && now - write_started_ > srv_->opts.read_timeout;
    if (discarding_ || idle || stalled_write) {
      // Idle keep-alive, a request that did not arrive in time, a client
      // that stopped reading, or the end of the discard window.
      read_closed_ = true;
      discarding_ = false;
      close();
      return;
    }
    arm(srv_->opts.read_timeout);  // the client waits on us: not its fault
  }

  strand_t strand_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<server::impl> srv_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<std::shared_ptr<slot>> queue_;
  // An unsafe request read while earlier ones were unanswered (see is_safe).
  std::optional<http::request<http::string_body>> deferred_;
  std::shared_ptr<session> hold_;  // set while answers are owed
  std::unique_ptr<std::array<char, 16384>> discard_buf_;
  size_t discarded_ = 0;
  std::atomic<int64_t> deadline_{0};  // steady_clock ticks; 0: none
  clock::time_point write_started_;
  clock::time_point read_due_;  // the connection's own deadline (strand only)
  std::string remote_ip_;
  bool remote_ip_known_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool read_closed_ = false;
  bool upgraded_ = false;  // the connection now belongs to a ws_session
  bool discarding_ = false;
};

void server::impl::schedule_sweep() {
  sweep_timer.expires_after(sweep_interval);
  // Raw `this`: the timer's handler only runs while the io threads run, and
  // they are joined before the impl goes away.
  sweep_timer.async_wait([this](beast::error_code ec) {
    if (ec) {
      return;
    }
    sweep();
    schedule_sweep();
  });
}

void server::impl::sweep() {
  auto now = clock::now().time_since_epoch().count();
  std::vector<std::shared_ptr<session>> due;
  {
    std::lock_guard<std::mutex> guard{sessions_mtx};
    for (auto& [ptr, weak] : sessions) {
      if (auto s = weak.lock(); s && s->expired(now)) {
        due.push_back(std::move(s));
      }
    }
  }
  for (auto& s : due) {
    s->deadline_passed();
  }
}

void server::impl::do_accept() {
  auto strand = asio::make_strand(ioc);
  acceptor.async_accept(strand, [self = shared_from_this(), strand](beast::error_code ec,
                                                                   tcp::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted && self->acceptor.is_open()) {
        self->accept_failed(ec);
      }
      return;
    }
    auto s = std::make_shared<session>(std::move(socket), strand, self);
    {
      std::lock_guard<std::mutex> guard{self->sessions_mtx};
      self->sessions.emplace(s.get(), s);
    }
    s->run();
    self->do_accept();
  });
}

void server::impl::accept_failed(const beast::error_code& ec) {
  auto now = clock::now();
  ++accept_errors;
  if (now - accept_logged >= std::chrono::seconds{10}) {
    log->warn("accept failed: {} ({} times since the last such line)", ec.message(),
              accept_errors);
    accept_errors = 0;
    accept_logged = now;
  }
  // Out of descriptors or memory the pending connection stays in the listen
  // queue, so accepting again at once fails again at once: a spinning core
  // and a flood of log lines. Wait a little instead; connections that close
  // meanwhile free descriptors.
  bool exhausted = ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                   ec == asio::error::no_memory ||
                   ec == boost::system::errc::too_many_files_open_in_system;
  if (!exhausted) {
    do_accept();
    return;
  }
  accept_timer.expires_after(std::chrono::milliseconds{100});
  accept_timer.async_wait([self = shared_from_this()](beast::error_code e) {
    if (!e && self->acceptor.is_open()) self->do_accept();
  });
}

server::server(server_options opts, const route_table& routes, actor_dispatch dispatch,
               ws_hooks ws)
  : impl_(std::make_shared<impl>(std::move(opts), routes, std::move(dispatch), std::move(ws))) {
  // nop
}

server::~server() {
  stop();
}

uint16_t server::start() {
  auto& d = *impl_;
  beast::error_code ec;
  auto addr = asio::ip::make_address(d.opts.host, ec);
  auto where = d.opts.host + ":" + std::to_string(d.opts.port);
  if (ec) {
    throw std::runtime_error("cannot listen on " + where + ": bad address");
  }
  tcp::endpoint ep{addr, d.opts.port};
  d.acceptor.open(ep.protocol(), ec);
  if (!ec) d.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) d.acceptor.bind(ep, ec);
  if (!ec) d.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  }
  auto port = d.acceptor.local_endpoint().port();
  d.work.emplace(asio::make_work_guard(d.ioc));
  d.do_accept();
  d.schedule_sweep();
  for (int i = 0; i < d.opts.threads; ++i) {
    d.threads.emplace_back([self = impl_] { self->ioc.run(); });
  }
  return port;
}

void server::stop_accepting() {
  impl_->draining = true;
  asio::post(impl_->ioc, [self = impl_] {
    beast::error_code ec;
    self->acceptor.close(ec);
  });
}

bool server::drain(std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  while (impl_->inflight.load() > 0) {
    if (clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  return true;
}

void server::stop() {
  auto& d = *impl_;
  if (d.stopped) {
    return;
  }
  d.stopped = true;
  stop_accepting();
  std::vector<std::shared_ptr<session>> open;
  {
    std::lock_guard<std::mutex> guard{d.sessions_mtx};
    for (auto& [ptr, weak] : d.sessions) {
      if (auto s = weak.lock()) {
        open.push_back(std::move(s));
      }
    }
  }
  for (auto& s : open) {
    s->close_when_idle();
  }
  open.clear();
  std::vector<std::shared_ptr<ws_session>> sockets;
  {
    std::lock_guard<std::mutex> guard{d.sessions_mtx};
    for (auto& [ptr, weak] : d.websockets) {
      if (auto w = weak.lock()) sockets.push_back(std::move(w));
    }
  }
  for (auto& w : sockets) w->shutdown();
  sockets.clear();
  // Give sessions a moment to close cleanly, then stop the loop.
  auto deadline = clock::now() + std::chrono::seconds{2};
  for (;;) {
    {
      std::lock_guard<std::mutex> guard{d.sessions_mtx};
      if ((d.sessions.empty() && d.websockets.empty()) || clock::now() >= deadline) {
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  asio::post(d.ioc, [self = impl_] { self->sweep_timer.cancel(); });
  d.work.reset();
  d.ioc.stop();
  for (auto& t : d.threads) {
    if (t.joinable()) {
      t.join();
    }
  }
  d.threads.clear();
  std::vector<std::shared_ptr<ws_session>> left;
  {
    std::lock_guard<std::mutex> guard{d.sessions_mtx};
    for (auto& [ptr, weak] : d.websockets) {
      if (auto w = weak.lock()) left.push_back(std::move(w));
    }
  }
  for (auto& w : left) w->abandon();
}

int64_t server::inflight() const {
  return impl_->inflight.load();
}

} // namespace gm::gateway
