// `gigmesh ctl`: the inspection console for terminals, over the admin API
// (the same routes the web console uses). Plain HTTP/1.1 to one node, one
// request per connection; Beast stays in this file.
#include "ctl/ctl.hpp"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace gm::ctl {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;

const char* usage_text =
  "usage: gigmesh ctl [--url URL] [--json] COMMAND\n"
  "\n"
  "Inspects and steers a running node through its admin API. The access\n"
  "token of an admin comes from GIGMESH_TOKEN, or a login prompt.\n"
  "\n"
  "  top [--sort mailbox|messages|restarts|idle] [--type KIND] [--limit N]\n"
  "      [--interval SECONDS] [--count N]\n"
  "                       live actors, highest first, refreshed (q: Ctrl-C)\n"
  "  inspect KIND:ID      one live actor: its figures and state (wallets:\n"
  "                       the balance beside the ledger's sum)\n"
  "  tree                 the supervision tree with strategies and restarts\n"
  "  passivate KIND:ID    flush and stop a live actor\n"
  "  kill KIND:ID         crash a live actor on purpose (its shard restarts it)\n"
  "  audit [--limit N]    what operators did to live actors\n"
  "  login                print an access token (for GIGMESH_TOKEN)\n"
  "\n"
  "  --url URL   the node (default GIGMESH_URL, else http://127.0.0.1:8080)\n"
  "  --json      print the API's JSON instead of tables\n";

struct options {
  std::string host = "127.0.0.1";
  std::string port = "8080";
  bool json_out = false;
  std::string token;
};

struct reply {
  int status = 0;
  std::string body;
  json doc;  // the body parsed, if it is JSON
};

class failure : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

bool parse_url(const std::string& url, options& o) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return false;
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  if (slash != std::string::npos) rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    o.host = rest;
    o.port = "80";
  } else {
    o.host = rest.substr(0, colon);
    o.port = rest.substr(colon + 1);
  }
  return !o.host.empty() && !o.port.empty();
}

reply call(const options& o, http::verb method, const std::string& target,
           const std::optional<json>& body = std::nullopt) {
  asio::io_context ioc;
  asio::ip::tcp::resolver resolver{ioc};
  beast::tcp_stream stream{ioc};
  stream.expires_after(std::chrono::seconds{10});
  beast::error_code ec;
  auto endpoints = resolver.resolve(o.host, o.port, ec);
  if (!ec) stream.connect(endpoints, ec);
  if (ec) throw failure("cannot reach " + o.host + ":" + o.port + ": " + ec.message());
  http::request<http::string_body> rq{method, target, 11};
  rq.set(http::field::host, o.host);
  rq.set(http::field::user_agent, "gigmesh-ctl");
  rq.set("X-Gigmesh-Client", "cli");
  if (!o.token.empty()) rq.set(http::field::authorization, "Bearer " + o.token);
  if (body) {
    rq.set(http::field::content_type, "application/json");
    rq.body() = body->dump();
  }
  rq.prepare_payload();
  http::write(stream, rq, ec);
  beast::flat_buffer buf;
  http::response<http::string_body> rs;
  if (!ec) http::read(stream, buf, rs, ec);
  if (ec) throw failure("the node did not answer: " + ec.message());
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  reply r;
  r.status = static_cast<int>(rs.result_int());
  r.body = rs.body();
  r.doc = json::parse(r.body, nullptr, false);
  return r;
}

/// The reply's problem detail, for messages.
std::string problem_of(const reply& r) {
  if (r.doc.is_object() && r.doc.contains("detail") && r.doc["detail"].is_string()) {
    return std::to_string(r.status) + ": " + r.doc["detail"].get<std::string>();
  }
  return std::to_string(r.status);
}

reply expect(const reply& r, int status) {
  if (r.status != status) throw failure(problem_of(r));
  return r;
}

std::string prompt(const std::string& what, bool secret) {
  std::cerr << what << ": " << std::flush;
  termios old{};
  bool tty = secret && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  return line;
}

/// Signs in at the prompt; returns the access token of an admin.
std::string login(const options& o) {
  auto who = prompt("Phone or email", false);
  auto password = prompt("Password", true);
  json body = {{who.find('@') != std::string::npos ? "email" : "phone", who},
               {"password", password}};
  auto r = expect(call(o, http::verb::post, "/api/v1/auth/login", body), 200);
  if (r.doc["user"].value("role", "") != "admin") {
    throw failure("this account is not an admin's: the console is for admins");
  }
  return r.doc.value("access_token", "");
}

void ensure_token(options& o) {
  if (!o.token.empty()) return;
  if (const char* t = std::getenv("GIGMESH_TOKEN"); t != nullptr && *t != '\0') {
    o.token = t;
    return;
  }
  o.token = login(o);
}

/// KIND:ID → the admin route's two segments.
std::pair<std::string, std::string> target_of(const std::string& s) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    throw failure("name an actor as KIND:ID, e.g. wallet:<user id>");
  }
  return {s.substr(0, colon), s.substr(colon + 1)};
}

std::string pad(std::string s, size_t n) {
  if (s.size() > n) return s.substr(0, n - 1) + "~";
  return s + std::string(n - s.size(), ' ');
}

std::string num(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].dump();
}

std::string human_ms(int64_t ms) {
  if (ms < 1000) return std::to_string(ms) + "ms";
  if (ms < 60000) return std::to_string(ms / 1000) + "s";
  if (ms < 3600000) return std::to_string(ms / 60000) + "m";
  return std::to_string(ms / 3600000) + "h";
}

int cmd_top(options& o, const std::vector<std::string>& args) {
  std::string sort = "mailbox", type;
  int limit = 20, count = 0;
  double interval = 2;
  for (size_t i = 0; i < args.size(); ++i) {
    auto next = [&]() -> std::string {
      if (i + 1 >= args.size()) throw failure(args[i] + " needs a value");
      return args[++i];
    };
    if (args[i] == "--sort") {
      sort = next();
    } else if (args[i] == "--type") {
      type = next();
    } else if (args[i] == "--limit") {
      limit = std::clamp(std::atoi(next().c_str()), 1, 200);
    } else if (args[i] == "--interval") {
      interval = std::max(0.2, std::atof(next().c_str()));
    } else if (args[i] == "--count") {
      count = std::max(0, std::atoi(next().c_str()));
    } else {
      throw failure("top: unknown option " + args[i]);
    }
  }
  ensure_token(o);
  bool live = isatty(STDOUT_FILENO) && !o.json_out;
  for (int n = 1;; ++n) {
    auto target = "/api/v1/admin/actors?sort=" + sort + "&limit=" + std::to_string(limit) +
                  (type.empty() ? "" : "&type=" + type);
    auto actors = expect(call(o, http::verb::get, target), 200);
    auto journal = call(o, http::verb::get, "/api/v1/admin/journal");
    if (o.json_out) {
      std::cout << json{{"actors", actors.doc}, {"journal", journal.doc}}.dump() << std::endl;
    } else {
      std::ostringstream out;
      if (live) out << "\x1b[H\x1b[2J";
      out << "gigmesh top  " << actors.doc.value("total", 0) << " live actors  (sorted by "
          << sort << ")\n";
      std::string kinds;
      for (auto& [k, v] : actors.doc["counts_by_type"].items()) {
        kinds += (kinds.empty() ? "" : "  ") + k + " " + v.dump();
      }
      out << kinds << "\n";
      if (journal.status == 200) {
        out << "journal  pending " << num(journal.doc, "pending") << "  batch "
            << num(journal.doc, "last_batch_rows") << "  flush p50/p99 "
            << num(journal.doc, "flush_latency_ms_p50") << "/"
            << num(journal.doc, "flush_latency_ms_p99") << " ms  last error "
            << (journal.doc["last_error"].is_null() ? std::string{"none"}
                                                    : journal.doc["last_error"].get<std::string>())
            << "\n";
      }
      out << "\n"
          << pad("KIND", 11) << pad("ID", 38) << pad("MAILBOX", 9) << pad("MESSAGES", 10)
          << pad("RESTARTS", 10) << pad("IDLE", 8) << "STATUS\n";
      for (auto& a : actors.doc["items"]) {
        out << pad(a.value("type", ""), 11) << pad(a.value("id", ""), 38)
            << pad(num(a, "mailbox"), 9) << pad(num(a, "messages"), 10)
            << pad(num(a, "restarts"), 10) << pad(human_ms(a.value("idle_ms", int64_t{0})), 8)
            << a.value("status", "") << "\n";
      }
      std::cout << out.str() << std::flush;
    }
    if (count != 0 && n >= count) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds{static_cast<int64_t>(interval * 1000)});
  }
}

int cmd_inspect(options& o, const std::vector<std::string>& args) {
  if (args.size() != 1) throw failure("inspect takes one KIND:ID");
  auto [type, id] = target_of(args[0]);
  ensure_token(o);
  auto r = call(o, http::verb::get, "/api/v1/admin/actors/" + type + "/" + id);
  if (r.status == 404) throw failure(args[0] + " is not live on this node");
  expect(r, 200);
  if (o.json_out) {
    std::cout << r.doc.dump() << std::endl;
    return 0;
  }
  auto& d = r.doc;
  std::cout << d.value("type", "") << ":" << d.value("id", "") << "\n"
            << "  node        " << d.value("node", "") << "\n"
            << "  status      " << d.value("status", "") << "\n"
            << "  version     " << num(d, "version") << "\n"
            << "  mailbox     " << num(d, "mailbox") << "\n"
            << "  messages    " << num(d, "messages") << "\n"
            << "  restarts    " << num(d, "restarts") << "\n"
            << "  idle        " << human_ms(d.value("idle_ms", int64_t{0})) << "\n"
            << "  supervisor  " << d.value("supervisor", "") << "\n";
  if (d.contains("ledger")) {
    auto& l = d["ledger"];
    if (l.contains("agrees")) {
      std::cout << "  ledger      balance " << num(l, "balance") << " (entries "
                << num(l, "entries_balance") << "), escrow " << num(l, "escrow_balance")
                << " (entries " << num(l, "entries_escrow") << "): "
                << (l.value("agrees", false) ? "agrees" : "DIFFERS") << "\n";
    } else {
      std::cout << "  ledger      " << l.dump() << "\n";
    }
  }
  std::cout << "  state\n" << d["state"].dump(2) << "\n";
  return 0;
}

void print_tree(const json& node, const std::string& indent) {
  std::cout << indent << node.value("name", "?") << "  (" << node.value("strategy", "")
            << ", intensity " << num(node, "intensity") << " per " << num(node, "period_ms")
            << " ms, restarts " << num(node, "restarts") << ")\n";
  for (auto& c : node["children"]) {
    std::cout << indent << "  - " << c.value("name", "?") << (c.value("running", false) ? "" : "  [stopped]")
              << "  restarts " << num(c, "restarts");
    if (c.contains("last_failure") && !c["last_failure"].is_null()) {
      std::cout << "  last failure: " << c["last_failure"].get<std::string>();
    }
    std::cout << "\n";
    if (c.contains("supervisor")) print_tree(c["supervisor"], indent + "      ");
  }
}

int cmd_tree(options& o) {
  ensure_token(o);
  auto r = expect(call(o, http::verb::get, "/api/v1/admin/supervisors"), 200);
  if (o.json_out) {
    std::cout << r.doc.dump() << std::endl;
  } else {
    print_tree(r.doc, "");
  }
  return 0;
}

int cmd_control(options& o, const std::string& what, const std::vector<std::string>& args) {
  if (args.size() != 1) throw failure(what + " takes one KIND:ID");
  auto [type, id] = target_of(args[0]);
  ensure_token(o);
  auto r = call(o, http::verb::post, "/api/v1/admin/actors/" + type + "/" + id + "/" + what);
  if (r.status == 404) throw failure(args[0] + " is not live on this node");
  expect(r, 202);
  if (o.json_out) {
    std::cout << r.doc.dump() << std::endl;
  } else {
    std::cout << what << " " << args[0] << ": accepted"
              << (r.doc.value("audited", true) ? "" : " (the audit record could not be written)")
              << "\n";
  }
  return 0;
}

int cmd_audit(options& o, const std::vector<std::string>& args) {
  int limit = 20;
  if (args.size() == 2 && args[0] == "--limit") limit = std::clamp(std::atoi(args[1].c_str()), 1, 200);
  ensure_token(o);
  auto r = expect(call(o, http::verb::get, "/api/v1/admin/audit?limit=" + std::to_string(limit)),
                  200);
  if (o.json_out) {
    std::cout << r.doc.dump() << std::endl;
    return 0;
  }
  std::cout << pad("AT", 26) << pad("ACTION", 11) << pad("TARGET", 46) << pad("VIA", 9)
            << pad("RESULT", 10) << "BY\n";
  for (auto& a : r.doc["items"]) {
    std::cout << pad(a.value("at", ""), 26) << pad(a.value("action", ""), 11)
              << pad(a.value("target", ""), 46) << pad(a.value("via", ""), 9)
              << pad(a.value("result", ""), 10) << a.value("user_id", "") << "\n";
  }
  return 0;
}

} // namespace

int run(const std::vector<std::string>& argv) {
  options o;
  if (const char* u = std::getenv("GIGMESH_URL"); u != nullptr && *u != '\0') {
    if (!parse_url(u, o)) {
      std::cerr << "gigmesh ctl: GIGMESH_URL must be http://host:port\n";
      return 2;
    }
  }
  std::vector<std::string> rest;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--url" && i + 1 < argv.size()) {
      if (!parse_url(argv[++i], o)) {
        std::cerr << "gigmesh ctl: --url must be http://host:port\n";
        return 2;
      }
    } else if (argv[i] == "--json") {
      o.json_out = true;
    } else if (argv[i] == "--help" || argv[i] == "-h") {
      std::cout << usage_text;
      return 0;
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (rest.empty()) {
    std::cerr << usage_text;
    return 2;
  }
  auto command = rest[0];
  std::vector<std::string> args(rest.begin() + 1, rest.end());
  try {
    if (command == "top") return cmd_top(o, args);
    if (command == "inspect") return cmd_inspect(o, args);
    if (command == "tree") return cmd_tree(o);
    if (command == "passivate" || command == "kill") return cmd_control(o, command, args);
    if (command == "audit") return cmd_audit(o, args);
    if (command == "login") {
      std::cout << login(o) << "\n";
      return 0;
    }
    std::cerr << "gigmesh ctl: unknown command " << command << "\n" << usage_text;
    return 2;
  } catch (const failure& e) {
    std::cerr << "gigmesh ctl: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "gigmesh ctl: " << e.what() << "\n";
    return 1;
  }
}

} // namespace gm::ctl
