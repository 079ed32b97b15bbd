// Load client for bench/chat.sh: chat over WebSockets (API.md's `send` op and
// `message.received` events) against a gigmesh node or the Node `ws`
// broadcast baseline (bench/node-ws/server.js speaks the same subset). Not
// part of the node. One io thread.
//
//   chat_load room PORT TOKENS_FILE ROOM_ID SESSIONS SENDERS RATE SECONDS
//     SESSIONS sockets (token i mod n) subscribe to room:ROOM_ID; then
//     SENDERS more sockets send messages k = 1, 2, … at RATE per second in
//     all, round robin, for SECONDS. A message's text is its k, so every
//     receiver knows when it was sent. Waits up to 5 s for stragglers.
//     Prints one line:
//       sent acked errors delivered expected events_per_s p50_ms p99_ms
//       ack_p50_ms ack_p99_ms closed
//     (p50/p99: send → receive over every delivered event; ack: send → ack).
//
//   chat_load rooms PORT TOKENS_FILE ROOMS_FILE SESSIONS INFLIGHT SECONDS
//     SESSIONS sockets; socket i sends to room i (line i of ROOMS_FILE,
//     whose member token i is), keeping INFLIGHT messages unacknowledged,
//     for SECONDS; then waits for the acks still due. Prints one line:
//       acked errors acked_per_s ack_p50_ms ack_p99_ms closed
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
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

/// The integer after `key` in a frame (e.g. `"seq":`), or -1.
int64_t int_after(const std::string& frame, const char* key) {
  auto at = frame.find(key);
  if (at == std::string::npos) return -1;
  at += std::char_traits<char>::length(key);
  if (at < frame.size() && frame[at] == '"') ++at;  // a number in a string
  return std::strtoll(frame.c_str() + at, nullptr, 10);
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

double percentile_ms(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  auto at = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(at), v.end());
  return v[at] / 1000.0;
}

/// One socket: connects, upgrades, optionally subscribes, then hands every
/// frame to `on_frame`; writes queue (one at a time, as Beast asks).
class socket_session : public std::enable_shared_from_this<socket_session> {
public:
  socket_session(asio::io_context& ioc, unsigned short port, std::string target,
                 std::string subscribe_to)
    : ws_(asio::make_strand(ioc)), port_(port), target_(std::move(target)),
      topic_(std::move(subscribe_to)) {}

  std::function<void(const std::string&)> on_frame;
  std::function<void(bool ok)> on_ready;  // subscribed (or connected, without a topic)
  std::function<void()> on_closed;

  void start() {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(ws_).async_connect(
      tcp::endpoint{host, port_}, [self = shared_from_this()](beast::error_code ec) {
        if (ec) return self->fail();
        beast::get_lowest_layer(self->ws_).expires_never();
        self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        self->ws_.async_handshake("127.0.0.1", self->target_, [self](beast::error_code ec2) {
          if (ec2) return self->fail();
          self->ws_.text(true);
          self->read();
          if (self->topic_.empty()) {
            self->ready_ = true;
            if (self->on_ready) self->on_ready(true);
          } else {
            self->write("{\"op\":\"subscribe\",\"topic\":\"" + self->topic_ + "\"}");
          }
        });
      });
  }

  void write(std::string frame) {
    out_.push_back(std::move(frame));
    if (out_.size() == 1) write_next();
  }

private:
  void write_next() {
    ws_.async_write(asio::buffer(out_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      if (ec) return self->fail();
                      self->out_.erase(self->out_.begin());
                      if (!self->out_.empty()) self->write_next();
                    });
  }

  void read() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->fail();
      auto frame = beast::buffers_to_string(self->buf_.data());
      self->buf_.consume(self->buf_.size());
      if (!self->ready_) {
        if (frame.find("\"subscribed\"") != std::string::npos) {
          self->ready_ = true;
          if (self->on_ready) self->on_ready(true);
        }
      } else if (self->on_frame) {
        self->on_frame(frame);
      }
      self->read();
    });
  }

  void fail() {
    if (failed_) return;
    failed_ = true;
    if (!ready_) {
      if (on_ready) on_ready(false);
    } else if (on_closed) {
      on_closed();
    }
  }

  websocket::stream<beast::tcp_stream> ws_;
  unsigned short port_;
  std::string target_;
  std::string topic_;
  beast::flat_buffer buf_;
  std::vector<std::string> out_;
  bool ready_ = false;
  bool failed_ = false;
};

using session_ptr = std::shared_ptr<socket_session>;

/// Opens sessions made by `make(i)`, i < count, at most `window` at a time;
/// runs `done(ready)` once every one is ready or failed.
void open_all(int count, int window, std::function<session_ptr(int)> make,
              std::function<void(int)> done) {
  struct opener {
    int count, next = 0, finished = 0, ready = 0;
    std::function<session_ptr(int)> make;
    std::function<void(int)> done;
    std::vector<session_ptr> keep;
  };
  auto o = std::make_shared<opener>();
  o->count = count;
  o->make = std::move(make);
  o->done = std::move(done);
  auto open_one = std::make_shared<std::function<void()>>();
  *open_one = [o, open_one] {
    auto s = o->make(o->next++);
    o->keep.push_back(s);
    s->on_ready = [o, open_one](bool ok) {
      if (ok) ++o->ready;
      if (++o->finished == o->count) {
        o->done(o->ready);
        *open_one = nullptr;  // break the cycle
      } else if (o->next < o->count) {
        (*open_one)();
      }
    };
    s->start();
  };
  if (count == 0) {
    o->done(0);
    return;
  }
  for (int i = 0; i < window && o->next < count; ++i) (*open_one)();
}

std::string send_op(const std::string& topic, int64_t k) {
  return "{\"op\":\"send\",\"topic\":\"" + topic + "\",\"text\":\"" + std::to_string(k) +
         "\",\"id\":\"" + std::to_string(k) + "\"}";
}

int room(unsigned short port, const char* tokens_file, const std::string& room_id, int sessions,
         int senders, double rate, double seconds) {
  auto tokens = lines_of(tokens_file);
  auto topic = "room:" + room_id;
  asio::io_context ioc{1};
  auto total = static_cast<int64_t>(rate * seconds);
  std::vector<int64_t> sent_at(static_cast<size_t>(total) + 1, 0);
  std::vector<uint32_t> latencies, acks;
  latencies.reserve(static_cast<size_t>(total) * static_cast<size_t>(sessions));
  int64_t delivered = 0, acked = 0, errors = 0, sent = 0, last_event = 0, first_send = 0;
  int closed = 0, subscribed = 0;
  std::vector<session_ptr> senders_v;
  asio::steady_timer tick{ioc}, drain{ioc};
  auto on_event = [&](const std::string& frame) {
    if (frame.find("message.received") == std::string::npos) return;
    auto k = int_after(frame, "\"text\":");
    if (k <= 0 || k > total || sent_at[static_cast<size_t>(k)] == 0) return;
    auto now = now_us();
    latencies.push_back(static_cast<uint32_t>(now - sent_at[static_cast<size_t>(k)]));
    ++delivered;
    last_event = now;
  };
  auto on_ack = [&](const std::string& frame) {
    if (frame.find("\"ack\"") != std::string::npos) {
      auto k = int_after(frame, "\"id\":");
      if (k > 0 && k <= total) {
        acks.push_back(static_cast<uint32_t>(now_us() - sent_at[static_cast<size_t>(k)]));
      }
      ++acked;
    } else if (frame.find("\"error\"") != std::string::npos) {
      if (errors++ < 3) std::cerr << "send refused: " << frame << "\n";
    }
  };
  std::function<void()> finish = [&] {
    auto expected = total * (subscribed - closed);
    if (delivered >= expected && acked + errors >= sent) return ioc.stop();
    drain.expires_after(std::chrono::milliseconds(10));
    drain.async_wait([&](beast::error_code) { finish(); });
  };
  clock_type::time_point started;
  std::function<void()> pump = [&] {
    auto secs = std::chrono::duration<double>(clock_type::now() - started).count();
    auto due = std::min<int64_t>(total, static_cast<int64_t>(secs * rate));
    while (sent < due) {
      ++sent;
      sent_at[static_cast<size_t>(sent)] = now_us();
      senders_v[static_cast<size_t>(sent) % senders_v.size()]->write(send_op(topic, sent));
    }
    if (sent < total) {
      tick.expires_after(std::chrono::microseconds(500));
      tick.async_wait([&](beast::error_code) { pump(); });
    } else {
      auto give_up = std::make_shared<asio::steady_timer>(ioc, std::chrono::seconds(5));
      give_up->async_wait([&ioc, give_up](beast::error_code) { ioc.stop(); });
      finish();
    }
  };
  std::vector<session_ptr> receivers;
  open_all(
    sessions, 64,
    [&](int i) {
      auto s = std::make_shared<socket_session>(
        ioc, port, "/ws?token=" + tokens[static_cast<size_t>(i) % tokens.size()], topic);
      s->on_frame = on_event;
      s->on_closed = [&] { ++closed; };
      receivers.push_back(s);
      return s;
    },
    [&](int ready) {
      subscribed = ready;
      if (ready == 0) {
        std::cerr << "no session subscribed\n";
        std::exit(1);
      }
      open_all(
        senders, 16,
        [&](int i) {
          auto s = std::make_shared<socket_session>(
            ioc, port, "/ws?token=" + tokens[static_cast<size_t>(i) % tokens.size()], "");
          s->on_frame = on_ack;
          senders_v.push_back(s);
          return s;
        },
        [&](int) {
          started = clock_type::now();
          first_send = now_us();
          pump();
        });
    });
  ioc.run();
  auto span_s = static_cast<double>(std::max<int64_t>(1, last_event - first_send)) / 1e6;
  auto p50 = percentile_ms(latencies, 0.50);
  auto p99 = percentile_ms(latencies, 0.99);
  auto a50 = percentile_ms(acks, 0.50);
  auto a99 = percentile_ms(acks, 0.99);
  std::cout << sent << " " << acked << " " << errors << " " << delivered << " "
            << total * subscribed << " " << static_cast<int64_t>(delivered / span_s) << " " << p50
            << " " << p99 << " " << a50 << " " << a99 << " " << closed << std::endl;
  std::_Exit(0);
}

int rooms(unsigned short port, const char* tokens_file, const char* rooms_file, int sessions,
          int inflight, double seconds) {
  auto tokens = lines_of(tokens_file);
  auto room_ids = lines_of(rooms_file);
  asio::io_context ioc{1};
  std::vector<uint32_t> acks;
  int64_t acked = 0, errors = 0, outstanding = 0;
  int closed = 0;
  bool stopping = false;
  clock_type::time_point started, ended;
  struct sender {
    session_ptr s;
    std::string topic;
    std::vector<int64_t> sent_at;  // by message number
    int64_t next = 0;
  };
  std::vector<std::shared_ptr<sender>> all;
  asio::steady_timer stop_timer{ioc}, drain{ioc};
  auto send_one = [&](sender& x) {
    ++x.next;
    x.sent_at.push_back(now_us());
    ++outstanding;
    x.s->write(send_op(x.topic, x.next));
  };
  std::function<void()> finish = [&] {
    if (outstanding == 0) {
      ended = clock_type::now();
      return ioc.stop();
    }
    drain.expires_after(std::chrono::milliseconds(10));
    drain.async_wait([&](beast::error_code) { finish(); });
  };
  open_all(
    sessions, 64,
    [&](int i) {
      auto x = std::make_shared<sender>();
      auto n = static_cast<size_t>(i);
      x->topic = "room:" + room_ids[n % room_ids.size()];
      x->s = std::make_shared<socket_session>(ioc, port, "/ws?token=" + tokens[n % tokens.size()],
                                              "");
      sender* raw = x.get();
      x->s->on_frame = [&, raw](const std::string& frame) {
        if (frame.find("\"ack\"") != std::string::npos) {
          auto k = int_after(frame, "\"id\":");
          if (k > 0 && k <= raw->next) {
            acks.push_back(static_cast<uint32_t>(now_us() - raw->sent_at[static_cast<size_t>(k - 1)]));
          }
          ++acked;
        } else if (frame.find("\"error\"") != std::string::npos) {
          if (errors++ < 3) std::cerr << "send refused: " << frame << "\n";
        } else {
          return;
        }
        --outstanding;
        if (!stopping) send_one(*raw);
      };
      x->s->on_closed = [&] { ++closed; };
      all.push_back(x);
      return x->s;
    },
    [&](int ready) {
      if (ready == 0) {
        std::cerr << "no session opened\n";
        std::exit(1);
      }
      started = clock_type::now();
      for (auto& x : all) {
        for (int k = 0; k < inflight; ++k) send_one(*x);
      }
      stop_timer.expires_after(std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6)));
      stop_timer.async_wait([&](beast::error_code) {
        stopping = true;
        auto give_up = std::make_shared<asio::steady_timer>(ioc, std::chrono::seconds(10));
        give_up->async_wait([&ioc, give_up](beast::error_code) { ioc.stop(); });
        finish();
      });
    });
  ioc.run();
  if (ended == clock_type::time_point{}) ended = clock_type::now();
  auto span_s = std::chrono::duration<double>(ended - started).count();
  std::cout << acked << " " << errors << " " << static_cast<int64_t>(acked / span_s) << " "
            << percentile_ms(acks, 0.50) << " " << percentile_ms(acks, 0.99) << " " << closed
            << std::endl;
  std::_Exit(0);
}

} // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "room" && argc == 9) {
    return room(static_cast<unsigned short>(std::atoi(argv[2])), argv[3], argv[4],
                std::atoi(argv[5]), std::atoi(argv[6]), std::atof(argv[7]), std::atof(argv[8]));
  }
  if (mode == "rooms" && argc == 8) {
    return rooms(static_cast<unsigned short>(std::atoi(argv[2])), argv[3], argv[4],
                 std::atoi(argv[5]), std::atoi(argv[6]), std::atof(argv[7]));
  }
  std::cerr << "usage: chat_load room PORT TOKENS_FILE ROOM_ID SESSIONS SENDERS RATE SECONDS\n"
               "       chat_load rooms PORT TOKENS_FILE ROOMS_FILE SESSIONS INFLIGHT SECONDS\n";
  return 2;
}
