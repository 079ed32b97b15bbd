// Load client for bench/dispatch.sh: rider location pings over the WebSocket
// `location` op (API.md), acknowledged one by one. Not part of the node. One
// io thread, built like bench/chat_load.cpp.
//
//   ping_load PORT TOKENS_FILE SESSIONS INFLIGHT SECONDS
//     SESSIONS sockets; socket i signs in with line i mod n of TOKENS_FILE
//     (each line a rider's token, optionally followed by the rider's point
//     "TOKEN LAT LNG"; without one, a point of the city derived from i).
//     Each socket sends {"op":"location","lat":..,"lng":..,"id":"<k>"} at
//     positions jittering (about ±50 m) around its rider's point, keeping
//     INFLIGHT pings unacknowledged, for SECONDS; then waits up to 10 s for
//     the acks still due. The node answers {"op":"ack","id":"<k>"} once the
//     rider took the ping; {"op":"error",...} counts as an error (and frees
//     the slot). The riders must be online already. Prints one line:
//       acked errors acked_per_s ack_p50_ms ack_p99_ms closed
//     (ack: send → ack; closed: sockets the server closed during the run).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
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

// The city of bench/dispatch.sh (Nairobi), for token lines without a point.
constexpr double city_lat = -1.2921;
constexpr double city_lng = 36.8219;
constexpr double city_spread = 0.16;  // degrees: 0.8 of the bench's riders' square
constexpr double jitter = 0.0005;     // degrees, about 55 m

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           clock_type::now().time_since_epoch())
    .count();
}

/// The integer after `key` in a frame (e.g. `"id":`), or -1.
int64_t int_after(const std::string& frame, const char* key) {
  auto at = frame.find(key);
  if (at == std::string::npos) return -1;
  at += std::char_traits<char>::length(key);
  if (at < frame.size() && frame[at] == '"') ++at;  // a number in a string
  return std::strtoll(frame.c_str() + at, nullptr, 10);
}

struct rider_line {
  std::string token;
  bool has_point = false;
  double lat = 0;
  double lng = 0;
};

std::vector<rider_line> riders_of(const char* path) {
  std::ifstream in{path};
  std::vector<rider_line> out;
  for (std::string l; std::getline(in, l);) {
    std::istringstream fields{l};
    rider_line r;
    if (!(fields >> r.token)) continue;
    r.has_point = static_cast<bool>(fields >> r.lat >> r.lng);
    out.push_back(std::move(r));
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

/// One socket: connects, upgrades, then hands every frame to `on_frame`;
/// writes queue (one at a time, as Beast asks).
class socket_session : public std::enable_shared_from_this<socket_session> {
public:
  socket_session(asio::io_context& ioc, unsigned short port, std::string target)
    : ws_(asio::make_strand(ioc)), port_(port), target_(std::move(target)) {}

  std::function<void(const std::string&)> on_frame;
  std::function<void(bool ok)> on_ready;
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
          self->ready_ = true;
          if (self->on_ready) self->on_ready(true);
        });
      });
  }

  /// Upgraded, and not failed since.
  bool is_open() const { return ready_ && !failed_; }

  void write(std::string frame) {
    out_.push_back(std::move(frame));
    if (out_.size() == 1) write_next();
  }

private:
  void write_next() {
    ws_.async_write(asio::buffer(out_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      if (ec) return self->fail();
                      self->out_.pop_front();
                      if (!self->out_.empty()) self->write_next();
                    });
  }

  void read() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->fail();
      auto frame = beast::buffers_to_string(self->buf_.data());
      self->buf_.consume(self->buf_.size());
      if (self->on_frame) self->on_frame(frame);
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
  beast::flat_buffer buf_;
  std::deque<std::string> out_;
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

/// One rider's socket and the pings it has in flight.
struct pinger {
  session_ptr s;
  double lat = 0;
  double lng = 0;
  std::mt19937 rng;
  std::vector<int64_t> sent_at;  // by ping number - 1
  int64_t next = 0;
  int64_t outstanding = 0;
  bool open = false;
};

std::string location_op(pinger& p) {
  std::uniform_real_distribution<double> off(-jitter, jitter);
  char buf[512];
  std::snprintf(buf, sizeof buf, "{\"op\":\"location\",\"lat\":%.7f,\"lng\":%.7f,\"id\":\"%lld\"}",
                p.lat + off(p.rng), p.lng + off(p.rng), static_cast<long long>(p.next));
  return buf;
}

int run(unsigned short port, const char* tokens_file, int sessions, int inflight,
        double seconds) {
  auto riders = riders_of(tokens_file);
  asio::io_context ioc{1};
  std::vector<uint32_t> acks;
  acks.reserve(1 << 20);
  int64_t acked = 0, errors = 0, outstanding = 0;
  int closed = 0;
  bool stopping = false;
  clock_type::time_point started, ended;
  std::vector<std::shared_ptr<pinger>> all;
  asio::steady_timer stop_timer{ioc}, drain{ioc};
  auto send_one = [&](pinger& p) {
    ++p.next;
    p.sent_at.push_back(now_us());
    ++p.outstanding;
    ++outstanding;
    p.s->write(location_op(p));
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
      auto p = std::make_shared<pinger>();
      auto n = static_cast<size_t>(i);
      const auto& r = riders[n % riders.size()];
      p->rng.seed(static_cast<uint32_t>(7919 * (i + 1)));
      if (r.has_point) {
        p->lat = r.lat;
        p->lng = r.lng;
      } else {
        std::uniform_real_distribution<double> spot(-city_spread / 2, city_spread / 2);
        p->lat = city_lat + spot(p->rng);
        p->lng = city_lng + spot(p->rng);
      }
      p->s = std::make_shared<socket_session>(ioc, port, "/ws?token=" + r.token);
      pinger* raw = p.get();
      p->s->on_frame = [&, raw](const std::string& frame) {
        if (frame.find("\"ack\"") != std::string::npos) {
          auto k = int_after(frame, "\"id\":");
          if (k > 0 && k <= raw->next) {
            acks.push_back(
              static_cast<uint32_t>(now_us() - raw->sent_at[static_cast<size_t>(k - 1)]));
          }
          ++acked;
        } else if (frame.find("\"error\"") != std::string::npos) {
          if (errors++ < 3) std::cerr << "ping refused: " << frame << "\n";
        } else {
          return;  // an event of a topic, not an answer
        }
        if (raw->outstanding > 0) {
          --raw->outstanding;
          --outstanding;
        }
        if (!stopping && raw->open) send_one(*raw);
      };
      p->s->on_closed = [&, raw] {
        ++closed;
        raw->open = false;
        outstanding -= raw->outstanding;  // never answered now
        raw->outstanding = 0;
      };
      all.push_back(p);
      return p->s;
    },
    [&](int ready) {
      if (ready == 0) {
        std::cerr << "no session opened\n";
        std::exit(1);
      }
      if (ready < sessions) std::cerr << ready << " of " << sessions << " sessions opened\n";
      started = clock_type::now();
      for (auto& p : all) {
        p->open = p->s->is_open();  // those that failed to open send nothing
        for (int k = 0; p->open && k < inflight; ++k) send_one(*p);
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
  if (argc == 6) {
    return run(static_cast<unsigned short>(std::atoi(argv[1])), argv[2], std::atoi(argv[3]),
               std::atoi(argv[4]), std::atof(argv[5]));
  }
  std::cerr << "usage: ping_load PORT TOKENS_FILE SESSIONS INFLIGHT SECONDS\n";
  return 2;
}
