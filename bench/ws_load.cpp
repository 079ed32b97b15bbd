// Load client for bench/ws.sh: many WebSocket sessions against a gigmesh node
// or one of the baseline broadcast servers (they speak the same small subset
// of API.md: GET /ws, subscribe, wallet.updated events, POST and GET of
// /api/v1/wallet). Not part of the node. One io thread: the client shares the
// machine with the server, the same way for every server it measures.
//
//   ws_load fanout PORT TOKEN TOPIC SESSIONS RATE SECONDS
//     SESSIONS sockets subscribe to TOPIC (the token's own wallet); then
//     deposits of amount k = 1, 2, 3, … are POSTed at RATE per second for
//     SECONDS over 16 keep-alive connections. Events arrive on every session
//     in version order without gaps, so a session learns k from the balance
//     difference of consecutive events, and its latency is the receive time
//     minus the time deposit k was sent. Waits up to 5 s for stragglers.
//     Prints one line:
//       published failed delivered expected events_per_s p50_ms p99_ms closed
//       deposit_p50_ms deposit_p99_ms
//     (the last two: deposit sent → its HTTP answer, for comparison).
//
//   ws_load idle PORT TOKENS_FILE IDS_FILE SESSIONS
//     opens SESSIONS sockets (token and id i mod n), each subscribed to its
//     user:<id> topic; prints "ready <open>" and holds them until stdin
//     closes or says anything; then exits.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

const auto host = asio::ip::make_address("127.0.0.1");

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           clock_type::now().time_since_epoch())
    .count();
}

/// The integer after `"balance":` in a frame, or -1.
int64_t balance_of(const std::string& frame) {
  auto at = frame.find("\"balance\":");
  if (at == std::string::npos) return -1;
  return std::strtoll(frame.c_str() + at + 10, nullptr, 10);
}

struct run_state {
  unsigned short port = 0;
  // fan-out
  std::vector<int64_t> sent_at;  // deposit k → when it was sent (µs), 0 = not yet
  std::vector<uint32_t> latencies_us;
  std::vector<uint32_t> answer_us;  // deposit sent → its HTTP answer
  int64_t delivered = 0;
  int64_t last_event_us = 0;
  int64_t base_balance = 0;
  // sessions
  int ready = 0;
  int closed = 0;
};

/// One WebSocket session: connect, upgrade, subscribe, then read until closed.
class session : public std::enable_shared_from_this<session> {
public:
  session(asio::io_context& ioc, run_state& rs, std::string target, std::string topic,
          std::function<void()> on_ready)
    : ws_(asio::make_strand(ioc)), rs_(rs), target_(std::move(target)),
      subscribe_("{\"op\":\"subscribe\",\"topic\":\"" + topic + "\"}"),
      on_ready_(std::move(on_ready)) {}

  void start() {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(ws_).async_connect(
      tcp::endpoint{host, rs_.port}, [self = shared_from_this()](beast::error_code ec) {
        if (ec) return self->fail();
        beast::get_lowest_layer(self->ws_).expires_never();
        self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        self->ws_.async_handshake("127.0.0.1", self->target_,
                                  [self](beast::error_code ec2) {
                                    if (ec2) return self->fail();
                                    self->subscribe();
                                  });
      });
  }

private:
  void subscribe() {
    ws_.text(true);
    ws_.async_write(asio::buffer(subscribe_), [self = shared_from_this()](beast::error_code ec,
                                                                           size_t) {
      if (ec) return self->fail();
      self->read();
    });
  }

  void read() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->fail();
      self->on_frame(beast::buffers_to_string(self->buf_.data()));
      self->buf_.consume(self->buf_.size());
      self->read();
    });
  }

  void on_frame(const std::string& frame) {
    if (!subscribed_) {
      if (frame.find("\"subscribed\"") == std::string::npos) return;  // e.g. a replay
      subscribed_ = true;
      last_balance_ = rs_.base_balance;
      ++rs_.ready;
      if (on_ready_) on_ready_();
      return;
    }
    auto balance = balance_of(frame);
    if (balance < 0) return;
    auto k = balance - last_balance_;
    last_balance_ = balance;
    if (k <= 0 || k >= static_cast<int64_t>(rs_.sent_at.size()) || rs_.sent_at[k] == 0) return;
    auto now = now_us();
    rs_.latencies_us.push_back(static_cast<uint32_t>(now - rs_.sent_at[k]));
    ++rs_.delivered;
    rs_.last_event_us = now;
  }

  void fail() {
    if (failed_) return;
    failed_ = true;
    if (subscribed_) {
      ++rs_.closed;
    } else if (on_ready_) {
      on_ready_();  // let the next connection start
    }
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  run_state& rs_;
  std::string target_;
  std::string subscribe_;
  std::function<void()> on_ready_;
  bool subscribed_ = false;
  bool failed_ = false;
  int64_t last_balance_ = 0;
};

/// Opens `count` sessions, at most `window` handshakes at a time; calls
/// `done` once every one is subscribed or failed.
class opener : public std::enable_shared_from_this<opener> {
public:
  opener(asio::io_context& ioc, run_state& rs, int count,
         std::function<std::pair<std::string, std::string>(int)> target_and_topic,
         std::function<void()> done)
    : ioc_(ioc), rs_(rs), count_(count), make_(std::move(target_and_topic)),
      done_(std::move(done)) {}

  void start(int window) {
    for (int i = 0; i < window && next_ < count_; ++i) open_one();
  }

private:
  void open_one() {
    auto [target, topic] = make_(next_++);
    auto s = std::make_shared<session>(ioc_, rs_, target, topic,
                                       [self = shared_from_this()] { self->finished(); });
    sessions_.push_back(s);
    s->start();
  }

  void finished() {
    if (++finished_ == count_) {
      done_();
    } else if (next_ < count_) {
      open_one();
    }
  }

  asio::io_context& ioc_;
  run_state& rs_;
  int count_;
  std::function<std::pair<std::string, std::string>(int)> make_;
  std::function<void()> done_;
  std::vector<std::shared_ptr<session>> sessions_;
  int next_ = 0;
  int finished_ = 0;
};

/// Publishes deposits k = 1..total at `rate` per second over keep-alive
/// connections, sending each k only when a connection is free.
class publisher : public std::enable_shared_from_this<publisher> {
public:
  publisher(asio::io_context& ioc, run_state& rs, std::string token, int conns, double rate,
            int64_t total, std::function<void()> done)
    : rs_(rs), token_(std::move(token)), rate_(rate), total_(total), timer_(ioc),
      done_(std::move(done)) {
    for (int i = 0; i < conns; ++i) conns_.push_back(std::make_unique<conn>(ioc));
  }

  void start() {
    int pending = static_cast<int>(conns_.size());
    auto self = shared_from_this();
    for (auto& c : conns_) {
      c->stream.async_connect(tcp::endpoint{host, rs_.port},
                              [self, c = c.get(), pending](beast::error_code ec) mutable {
                                if (ec) {
                                  std::cerr << "publisher: connect: " << ec.message() << "\n";
                                  std::exit(1);
                                }
                                c->idle = true;
                                if (++self->connected_ == static_cast<int>(self->conns_.size())) {
                                  self->started_ = clock_type::now();
                                  self->tick();
                                }
                              });
    }
  }

  int64_t sent() const { return sent_; }
  int64_t failed() const { return failed_; }

private:
  struct conn {
    explicit conn(asio::io_context& ioc) : stream(ioc) {}
    beast::tcp_stream stream;
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    bool idle = false;
    int64_t sent_us = 0;
  };

  int64_t due() const {
    auto secs = std::chrono::duration<double>(clock_type::now() - started_).count();
    return std::min<int64_t>(total_, static_cast<int64_t>(secs * rate_));
  }

  void tick() {
    send_due();
    if (sent_ < total_) {
      timer_.expires_after(std::chrono::microseconds(500));
      timer_.async_wait([self = shared_from_this()](beast::error_code) { self->tick(); });
    }
  }

  void send_due() {
    auto want = due();
    for (auto& c : conns_) {
      if (sent_ >= want) break;
      if (c->idle) send(*c, ++sent_);
    }
  }

  void send(conn& c, int64_t k) {
    c.idle = false;
    c.req = {http::verb::post, "/api/v1/wallet/deposit", 11};
    c.req.set(http::field::host, "127.0.0.1");
    c.req.set(http::field::authorization, "Bearer " + token_);
    c.req.set(http::field::content_type, "application/json");
    c.req.body() = "{\"amount\":" + std::to_string(k) + "}";
    c.req.prepare_payload();
    rs_.sent_at[k] = c.sent_us = now_us();
    http::async_write(c.stream, c.req, [self = shared_from_this(), &c](beast::error_code ec,
                                                                       size_t) {
      if (ec) return self->broken(ec);
      c.res = {};
      http::async_read(c.stream, c.buf, c.res, [self, &c](beast::error_code ec2, size_t) {
        if (ec2) return self->broken(ec2);
        if (c.res.result_int() / 100 != 2) ++self->failed_;
        self->rs_.answer_us.push_back(static_cast<uint32_t>(now_us() - c.sent_us));
        c.idle = true;
        if (++self->answered_ == self->total_) return self->done_();
        self->send_due();
      });
    });
  }

  void broken(beast::error_code ec) {
    std::cerr << "publisher: " << ec.message() << "\n";
    std::exit(1);
  }

  run_state& rs_;
  std::string token_;
  double rate_;
  int64_t total_;
  asio::steady_timer timer_;
  std::function<void()> done_;
  std::vector<std::unique_ptr<conn>> conns_;
  int connected_ = 0;
  clock_type::time_point started_;
  int64_t sent_ = 0;
  int64_t answered_ = 0;
  int64_t failed_ = 0;
};

/// GET /api/v1/wallet, synchronously (before the io loop runs): the balance.
int64_t current_balance(unsigned short port, const std::string& token) {
  asio::io_context ioc;
  beast::tcp_stream s{ioc};
  s.connect(tcp::endpoint{host, port});
  http::request<http::empty_body> req{http::verb::get, "/api/v1/wallet", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, "Bearer " + token);
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  auto b = balance_of(res.body());
  if (res.result_int() != 200 || b < 0) {
    std::cerr << "GET /api/v1/wallet: " << res.result_int() << " " << res.body() << "\n";
    std::exit(1);
  }
  return b;
}

double percentile_ms(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  auto at = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(at), v.end());
  return v[at] / 1000.0;
}

int fanout(unsigned short port, const std::string& token, const std::string& topic, int sessions,
           double rate, double seconds) {
  run_state rs;
  rs.port = port;
  rs.base_balance = current_balance(port, token);
  auto total = static_cast<int64_t>(rate * seconds);
  rs.sent_at.assign(static_cast<size_t>(total) + 1, 0);
  rs.latencies_us.reserve(static_cast<size_t>(total) * static_cast<size_t>(sessions));
  asio::io_context ioc{1};
  asio::steady_timer drain{ioc};
  std::shared_ptr<publisher> pub;
  int64_t first_send = 0;
  auto expected = [&] { return total * (sessions - rs.closed); };
  std::function<void()> wait_drain = [&] {
    if (rs.delivered >= expected()) return ioc.stop();
    drain.expires_after(std::chrono::milliseconds(10));
    drain.async_wait([&](beast::error_code) { wait_drain(); });
  };
  auto op = std::make_shared<opener>(
    ioc, rs, sessions,
    [&](int) { return std::make_pair("/ws?token=" + token, topic); },
    [&] {
      if (rs.ready == 0) {
        std::cerr << "no session subscribed\n";
        std::exit(1);
      }
      first_send = now_us();
      pub = std::make_shared<publisher>(ioc, rs, token, 16, rate, total, [&] {
        // Everything answered: give stragglers up to 5 s.
        auto give_up = std::make_shared<asio::steady_timer>(ioc, std::chrono::seconds(5));
        give_up->async_wait([&ioc, give_up](beast::error_code) { ioc.stop(); });
        wait_drain();
      });
      pub->start();
    });
  op->start(64);
  ioc.run();
  auto span_s = static_cast<double>(std::max<int64_t>(1, rs.last_event_us - first_send)) / 1e6;
  auto p50 = percentile_ms(rs.latencies_us, 0.50);
  auto p99 = percentile_ms(rs.latencies_us, 0.99);
  auto a50 = percentile_ms(rs.answer_us, 0.50);
  auto a99 = percentile_ms(rs.answer_us, 0.99);
  std::cout << (pub ? pub->sent() : 0) << " " << (pub ? pub->failed() : 0) << " " << rs.delivered
            << " " << total * rs.ready << " " << static_cast<int64_t>(rs.delivered / span_s) << " "
            << p50 << " " << p99 << " " << rs.closed << " " << a50 << " " << a99 << std::endl;
  std::_Exit(0);  // the sockets go with the process
}

std::vector<std::string> lines_of(const char* path) {
  std::ifstream in{path};
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.push_back(l);
  }
  if (out.empty()) {
    std::cerr << "nothing in " << path << "\n";
    std::exit(2);
  }
  return out;
}

int idle(unsigned short port, const char* tokens_file, const char* ids_file, int sessions) {
  auto tokens = lines_of(tokens_file);
  auto ids = lines_of(ids_file);
  run_state rs;
  rs.port = port;
  asio::io_context ioc{1};
  auto op = std::make_shared<opener>(
    ioc, rs, sessions,
    [&](int i) {
      auto n = static_cast<size_t>(i) % std::min(tokens.size(), ids.size());
      return std::make_pair("/ws?token=" + tokens[n], "user:" + ids[n]);
    },
    [&] {
      std::cout << "ready " << rs.ready << std::endl;
      // Hold until stdin says anything or closes; then leave.
      std::thread([&ioc] {
        std::string l;
        std::getline(std::cin, l);
        ioc.stop();
      }).detach();
    });
  op->start(64);
  ioc.run();
  std::_Exit(0);
}

} // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "fanout" && argc == 8) {
    return fanout(static_cast<unsigned short>(std::atoi(argv[2])), argv[3], argv[4],
                  std::atoi(argv[5]), std::atof(argv[6]), std::atof(argv[7]));
  }
  if (mode == "idle" && argc == 6) {
    return idle(static_cast<unsigned short>(std::atoi(argv[2])), argv[3], argv[4],
                std::atoi(argv[5]));
  }
  std::cerr << "usage: ws_load fanout PORT TOKEN TOPIC SESSIONS RATE SECONDS\n"
               "       ws_load idle PORT TOKENS_FILE IDS_FILE SESSIONS\n";
  return 2;
}
