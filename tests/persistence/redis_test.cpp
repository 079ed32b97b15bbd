// The Redis client against the real server that scripts/test starts
// (GIGMESH_TEST_REDIS_URL, redis://host:port).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <future>

#include "persistence/redis.hpp"

using namespace std::chrono_literals;
using namespace gm::redis;

namespace {

endpoint test_endpoint() {
  const char* url = std::getenv("GIGMESH_TEST_REDIS_URL");
  REQUIRE_MESSAGE(url != nullptr, "GIGMESH_TEST_REDIS_URL is not set (run scripts/test)");
  std::string u{url};
  auto hostport = u.substr(u.find("//") + 2);
  endpoint ep;
  ep.host = hostport.substr(0, hostport.find(':'));
  ep.port = static_cast<uint16_t>(std::stoi(hostport.substr(hostport.find(':') + 1)));
  return ep;
}

reply run(client& c, std::vector<std::string> argv) {
  std::promise<reply> done;
  auto fut = done.get_future();
  REQUIRE(c.command(std::move(argv), [&done](reply r) { done.set_value(std::move(r)); }));
  REQUIRE(fut.wait_for(5s) == std::future_status::ready);
  return fut.get();
}

} // namespace

TEST_CASE("commands round-trip strings, integers, arrays and nil") {
  client c{test_endpoint(), 1000ms};
  c.start();
  CHECK(run(c, {"SET", "gm:test:k", "v\0x"}).ok());
  CHECK(run(c, {"GET", "gm:test:k"}).str == std::string{"v\0x"});
  CHECK(run(c, {"DEL", "gm:test:n"}).ok());
  CHECK(run(c, {"INCRBY", "gm:test:n", "5"}).integer == 5);
  auto arr = run(c, {"MGET", "gm:test:n", "gm:test:none"});
  REQUIRE(arr.type == reply::kind::array);
  CHECK(arr.elements[0].str == "5");
  CHECK(arr.elements[1].type == reply::kind::nil);
  auto err = run(c, {"NOSUCHCOMMAND"});
  CHECK(err.type == reply::kind::error);
  CHECK(run(c, {"DEL", "gm:test:k", "gm:test:n"}).integer == 2);
}

TEST_CASE("an unreachable server gives error replies quickly, not a hang") {
  endpoint ep;
  ep.port = 1;
  client c{ep, 500ms};
  c.start();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    CHECK_FALSE(run(c, {"PING"}).ok());
  }
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
}

TEST_CASE("commands queued at stop are answered with an error, not dropped") {
  client c{test_endpoint(), 1000ms};
  std::promise<reply> done;
  auto fut = done.get_future();
  REQUIRE(c.command({"PING"}, [&done](reply r) { done.set_value(std::move(r)); }));
  c.stop();  // never started: the command is still answered
  REQUIRE(fut.wait_for(1s) == std::future_status::ready);
  CHECK_FALSE(fut.get().ok());
  CHECK_FALSE(c.command({"PING"}, [](reply) {}));
}
