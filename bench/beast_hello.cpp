// Baseline for bench/http.sh: the least a Beast HTTP/1.1 server can do — one
// keep-alive session per connection answering every request with a small JSON
// body — on the same number of io threads as the node. Not part of the node.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class hello_session : public std::enable_shared_from_this<hello_session> {
public:
  explicit hello_session(tcp::socket s) : stream_(std::move(s)) {}

  void read() {
    req_ = {};
    http::async_read(stream_, buf_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        return;
      }
      self->respond();
    });
  }

private:
  void respond() {
    res_ = {};
    res_.version(11);
    res_.result(http::status::ok);
    res_.set(http::field::content_type, "application/json");
    res_.body() = R"({"status":"ok"})";
    res_.keep_alive(req_.keep_alive());
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res_.keep_alive()) {
        return;
      }
      self->read();
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

void accept(tcp::acceptor& acc, asio::io_context& ioc) {
  acc.async_accept(asio::make_strand(ioc), [&](beast::error_code ec, tcp::socket s) {
    if (!ec) {
      std::make_shared<hello_session>(std::move(s))->read();
    }
    accept(acc, ioc);
  });
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: beast_hello PORT THREADS\n";
    return 2;
  }
  auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  int threads = std::atoi(argv[2]);
  asio::io_context ioc{threads};
  tcp::acceptor acc{ioc, {asio::ip::make_address("127.0.0.1"), port}};
  accept(acc, ioc);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) {
    pool.emplace_back([&] { ioc.run(); });
  }
  ioc.run();
}
