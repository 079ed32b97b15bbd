// Baseline for bench/ws.sh: the least a Beast WebSocket broadcast server can
// do for the fan-out bench, on the same number of io threads as the node. It
// speaks the subset of API.md the load client uses: `GET /ws` upgrades (no
// token check), `subscribe` is answered `subscribed`, `POST
// /api/v1/wallet/deposit {"amount":k}` adds k to one in-memory balance and
// sends a `wallet.updated` frame to every socket, `GET /api/v1/wallet` shows
// the balance. No persistence, no auth, no topics, unbounded send queues:
// what a hand-written broadcast server does. Not part of the node.
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

class ws_session;

/// The one balance and every open socket.
struct hub {
  std::mutex mtx;
  int64_t balance = 0;
  int64_t version = 0;
  std::unordered_map<ws_session*, std::weak_ptr<ws_session>> sockets;
};

class ws_session : public std::enable_shared_from_this<ws_session> {
public:
  ws_session(tcp::socket&& s, hub& h) : ws_(std::move(s)), hub_(h) {}

  ~ws_session() {
    std::lock_guard<std::mutex> g{hub_.mtx};
    hub_.sockets.erase(this);
  }

  void accept(http::request<http::string_body> req) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      {
        std::lock_guard<std::mutex> g{self->hub_.mtx};
        self->hub_.sockets.emplace(self.get(), self);
      }
      self->read();
    });
  }

  /// Any thread: queues a frame (shared by every socket) on this socket's strand.
  void send(std::shared_ptr<const std::string> frame) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), frame = std::move(frame)] {
      self->out_.push_back(frame);
      if (self->out_.size() == 1) self->write();
    });
  }

private:
  void read() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      // Every client frame here is a subscribe: answer it.
      self->buf_.consume(self->buf_.size());
      self->send(std::make_shared<const std::string>(R"({"op":"subscribed","topic":"bench","seq":0})"));
      self->read();
    });
  }

  void write() {
    ws_.text(true);
    ws_.async_write(asio::buffer(*out_.front()), [self = shared_from_this()](beast::error_code ec,
                                                                            size_t) {
      if (ec) return;
      self->out_.pop_front();
      if (!self->out_.empty()) self->write();
    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  hub& hub_;
  beast::flat_buffer buf_;
  std::deque<std::shared_ptr<const std::string>> out_;
};

/// Plain HTTP until a request upgrades.
class http_session : public std::enable_shared_from_this<http_session> {
public:
  http_session(tcp::socket&& s, hub& h) : stream_(std::move(s)), hub_(h) {}

  void read() {
    req_ = {};
    http::async_read(stream_, buf_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      self->handle();
    });
  }

private:
  void handle() {
    if (websocket::is_upgrade(req_)) {
      std::make_shared<ws_session>(stream_.release_socket(), hub_)->accept(std::move(req_));
      return;
    }
    res_ = {};
    res_.version(11);
    res_.set(http::field::content_type, "application/json");
    res_.keep_alive(req_.keep_alive());
    if (req_.method() == http::verb::post) {
      const auto& body = req_.body();
      auto at = body.find("\"amount\":");
      int64_t amount = at == std::string::npos ? 0 : std::strtoll(body.c_str() + at + 9, nullptr, 10);
      std::vector<std::shared_ptr<ws_session>> to;
      std::shared_ptr<const std::string> frame;
      {
        std::lock_guard<std::mutex> g{hub_.mtx};
        hub_.balance += amount;
        ++hub_.version;
        frame = std::make_shared<const std::string>(
          "{\"event\":\"wallet.updated\",\"topic\":\"bench\",\"seq\":" + std::to_string(hub_.version) +
          ",\"data\":{\"balance\":" + std::to_string(hub_.balance) +
          ",\"version\":" + std::to_string(hub_.version) + "}}");
        to.reserve(hub_.sockets.size());
        for (auto& [ptr, weak] : hub_.sockets) {
          if (auto s = weak.lock()) to.push_back(std::move(s));
        }
      }
      for (auto& s : to) s->send(frame);
      res_.result(http::status::created);
      res_.body() = R"({"type":"deposit"})";
    } else {
      std::lock_guard<std::mutex> g{hub_.mtx};
      res_.result(http::status::ok);
      res_.body() = "{\"balance\":" + std::to_string(hub_.balance) + "}";
    }
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res_.keep_alive()) return;
      self->read();
    });
  }

  beast::tcp_stream stream_;
  hub& hub_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

void accept(tcp::acceptor& acc, asio::io_context& ioc, hub& h) {
  acc.async_accept(asio::make_strand(ioc), [&](beast::error_code ec, tcp::socket s) {
    if (!ec) std::make_shared<http_session>(std::move(s), h)->read();
    accept(acc, ioc, h);
  });
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: ws_broadcast_beast PORT THREADS\n";
    return 2;
  }
  auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  int threads = std::atoi(argv[2]);
  asio::io_context ioc{threads};
  tcp::acceptor acc{ioc, {asio::ip::make_address("127.0.0.1"), port}};
  hub h;
  accept(acc, ioc, h);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
}
