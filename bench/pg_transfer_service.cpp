// The service-per-request stack for transfers, whole: what bench/transfers.sh
// measures the node against when both answer the same HTTP requests. Beast
// HTTP/1.1 on as many io threads as the node, keep-alive; per request it
// checks the bearer token (the node's JWT code, HS256), reads the JSON body,
// and hands one PostgreSQL transaction (the PL/pgSQL transfer function of
// pg_transfer_baseline) to a pool of blocking libpq connections, the way a
// thread-pool service with a connection pool does; the pool thread posts the
// answer back to the session. Answers 201 with the transaction as the node
// does, or a problem document. Not part of the node.
//
//   pg_transfer_service <postgresql url> <port> <io threads> <pool size> <jwt secret>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "bench/transfer_function.hpp"
#include "common/ids.hpp"
#include "gateway/http_types.hpp"
#include "gateway/jwt.hpp"
#include "persistence/pg.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using gm::gateway::json_response;
using gm::gateway::problem;
using gm::gateway::response;

struct service {
  gm::gateway::jwt::codec jwt;
  gm::pg::pool db;
};

std::string transaction_body(int64_t amount, const std::string& balance, const std::string& to,
                             const std::string& id) {
  return "{\"amount\":" + std::to_string(amount) + ",\"balance_after\":" + balance +
                    ",\"counterparty\":\"" + to + "\",\"created_at\":\"" + gm::now_rfc3339() +
                    "\",\"id\":\"" + id + "\",\"reference\":null,\"type\":\"transfer_out\"}";
}

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket s, service& svc) : stream_(std::move(s)), svc_(svc) {}

  void read() {
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    http::async_read(stream_, buf_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->handle(self->parser_->release());
                     });
  }

private:
  void handle(http::request<http::string_body> req) {
    keep_alive_ = req.keep_alive();
    if (req.target() == "/healthz") return respond(json_response(200, "{\"status\":\"ok\"}"));
    if (req.target() != "/api/v1/wallet/transfer")
      return respond(problem(404, "not-found", "Not Found", "no such route"));
    if (req.method() != http::verb::post)
      return respond(problem(405, "method-not-allowed", "Method Not Allowed", "POST only"));
    auto auth = req[http::field::authorization];
    constexpr beast::string_view bearer = "Bearer ";
    if (auth.size() <= bearer.size() || auth.substr(0, bearer.size()) != bearer)
      return respond(problem(401, "unauthorized", "Unauthorized", "a bearer token is required"));
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
    auto claims = svc_.jwt.verify(std::string{auth.substr(bearer.size())}, now);
    if (!claims) return respond(problem(401, "unauthorized", "Unauthorized", "invalid token"));
    auto j = nlohmann::json::parse(req.body(), nullptr, false);
    if (!j.is_object() || !j.contains("to_user_id") || !j["to_user_id"].is_string() ||
        !j.contains("amount") || !j["amount"].is_number_integer() || j["amount"].get<int64_t>() <= 0)
      return respond(
        problem(400, "invalid-body", "Bad Request", "to_user_id and a positive amount"));
    auto to = j["to_user_id"].get<std::string>();
    auto amount = j["amount"].get<int64_t>();
    if (to == claims->sub)
      return respond(
        problem(422, "invalid-body", "Unprocessable Entity", "cannot transfer to yourself"));
    auto id = gm::new_time_uuid();
    auto self = shared_from_this();
    bool queued = svc_.db.query(
      "SELECT bench_transfer($1, $2, $3, $4, $5, $6)",
      {claims->sub, to, std::to_string(amount), id, gm::new_time_uuid(), gm::new_time_uuid()},
      [self, to, amount, id](gm::pg::result r) {
        response a;
        if (r.ok()) {
          a = json_response(201, transaction_body(amount, r.value(0, 0), to, id));
        } else if (r.sqlstate == "P0001") {
          a = problem(409, "insufficient-funds", "Conflict", "insufficient funds");
        } else if (r.sqlstate == "P0002") {
          a = problem(404, "not-found", "Not Found", "no such wallet");
        } else {
          a = problem(503, "unavailable", "Service Unavailable", r.error);
        }
        asio::post(self->stream_.get_executor(),
                   [self, a = std::move(a)]() mutable { self->respond(std::move(a)); });
      });
    if (!queued) respond(problem(503, "unavailable", "Service Unavailable", "busy"));
  }

  void respond(response a) {
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(a.status));
    res_.set(http::field::content_type, a.content_type);
    res_.body() = std::move(a.body);
    res_.keep_alive(keep_alive_);
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (!ec && self->keep_alive_) self->read();
    });
  }

  beast::tcp_stream stream_;
  service& svc_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  bool keep_alive_ = true;
};

void accept(tcp::acceptor& acc, asio::io_context& ioc, service& svc) {
  acc.async_accept(asio::make_strand(ioc), [&](beast::error_code ec, tcp::socket s) {
    if (!ec) std::make_shared<session>(std::move(s), svc)->read();
    if (acc.is_open()) accept(acc, ioc, svc);
  });
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr,
                 "usage: pg_transfer_service <url> <port> <io threads> <pool size> <jwt secret>\n");
    return 2;
  }
  std::string url = argv[1];
  auto port = static_cast<unsigned short>(std::atoi(argv[2]));
  int threads = std::max(1, std::atoi(argv[3]));
  int pool_size = std::max(1, std::atoi(argv[4]));
  {
    gm::pg::connection admin{url, std::chrono::milliseconds{2000}};
    auto r = admin.exec(gm::bench::transfer_function_sql);
    if (!r.ok()) {
      std::fprintf(stderr, "setup failed: %s\n", r.error.c_str());
      return 1;
    }
  }
  service svc{gm::gateway::jwt::codec::hs256(argv[5]),
              gm::pg::pool{url, pool_size, std::chrono::milliseconds{2000}}};
  svc.db.start();
  asio::io_context ioc{threads};
  tcp::acceptor acc{ioc, {asio::ip::make_address("127.0.0.1"), port}};
  accept(acc, ioc, svc);
  asio::signal_set signals{ioc, SIGINT, SIGTERM};
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  std::vector<std::thread> io;
  for (int i = 1; i < threads; ++i) io.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : io) t.join();
  svc.db.stop();
  return 0;
}
