// Configuration: precedence, strict values, one-line errors.
#include <doctest/doctest.h>

#include <cstdio>
#include <unistd.h>
#include <fstream>
#include <string>

#include "config/config.hpp"

using gm::config::config_error;
using gm::config::load;

namespace {

std::string temp_file(const std::string& content) {
  char path[] = "/tmp/gigmesh-config-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream out{path};
  out << content;
  return path;
}

std::string error_of(const std::vector<std::string>& args,
                     const std::map<std::string, std::string>& env = {}) {
  try {
    load(args, env);
  } catch (const config_error& e) {
    return e.what();
  }
  return {};
}

} // namespace

TEST_CASE("defaults run a dev node on port 8080 against local servers") {
  auto s = load({}, {});
  CHECK(s.http_port == 8080);
  CHECK(s.mode == gm::config::run_mode::dev);
  CHECK(s.redis.host == "127.0.0.1");
  CHECK(s.redis.port == 6379);
}

TEST_CASE("the environment overrides the file and a flag overrides the environment") {
  auto path = temp_file("# comment\nhttp_port = 7000   # inline comment\n"
                        "log_level = \"debug\"  # quoted, then a comment\n");
  auto s = load({"--config=" + path}, {});
  CHECK(s.http_port == 7000);
  CHECK(s.log_level == "debug");
  s = load({"--config", path}, {{"GIGMESH_HTTP_PORT", "7001"}});
  CHECK(s.http_port == 7001);
  s = load({"--config=" + path, "--http-port=7002"}, {{"GIGMESH_HTTP_PORT", "7001"}});
  CHECK(s.http_port == 7002);
  s = load({}, {{"GIGMESH_CONFIG", path}});
  CHECK(s.http_port == 7000);
  std::remove(path.c_str());
}

TEST_CASE("a port out of range is refused with a message naming the key") {
  CHECK(error_of({"--http-port=70000"}).find("http_port") != std::string::npos);
  CHECK(error_of({}, {{"GIGMESH_HTTP_PORT", "-1"}}).find("out of range") != std::string::npos);
  CHECK(error_of({"--http-port=80x"}).find("not an integer") != std::string::npos);
  CHECK(error_of({"--http-port="}).find("not an integer") != std::string::npos);
}

TEST_CASE("a malformed quoted value is refused with its line") {
  auto path = temp_file("\n\nnode_id = \"abc\" trailing\n");
  CHECK(error_of({"--config=" + path}).find(":3: unterminated") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("an unreadable config file is refused") {
  CHECK(error_of({"--config=/nonexistent/gigmesh.conf"}).find("cannot be read") !=
        std::string::npos);
}

TEST_CASE("unknown keys are refused wherever they come from") {
  auto path = temp_file("htp_port = 1\n");
  CHECK(error_of({"--config=" + path}).find("unknown key 'htp_port'") != std::string::npos);
  CHECK(error_of({"--bogus=1"}).find("unknown key") != std::string::npos);
  CHECK(error_of({"positional"}).find("unexpected argument") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("production mode requires a secret of at least 32 bytes") {
  CHECK(error_of({"--mode=production"}).find("jwt_secret") != std::string::npos);
  CHECK(error_of({"--mode=production"}, {{"GIGMESH_JWT_SECRET", "short"}})
          .find("at least 32") != std::string::npos);
  auto s = load({"--mode=production"},
                {{"GIGMESH_JWT_SECRET", std::string(32, 'k')}});
  CHECK(s.mode == gm::config::run_mode::production);
  auto secret = temp_file(std::string(40, 's') + "\n");
  s = load({"--mode=production", "--jwt-secret-file=" + secret}, {});
  CHECK(s.jwt_secret == std::string(40, 's'));
  std::remove(secret.c_str());
}

TEST_CASE("the description used in logs never contains the secret") {
  auto s = load({}, {{"GIGMESH_JWT_SECRET", "super-secret-value-0123456789abcdef"}});
  CHECK(gm::config::describe(s).find("super-secret") == std::string::npos);
}

TEST_CASE("redis URLs are parsed into host, port, db and password") {
  auto s = load({"--redis-url=redis://:pw@10.1.2.3:6380/2"}, {});
  CHECK(s.redis.host == "10.1.2.3");
  CHECK(s.redis.port == 6380);
  CHECK(s.redis.db == 2);
  CHECK(s.redis.password == "pw");
  CHECK(error_of({"--redis-url=http://x"}).find("redis://") != std::string::npos);
  CHECK(error_of({"--redis-url=redis://h:0"}).find("out of range") != std::string::npos);
}

TEST_CASE("the journal's group commit is durable by default, interval or eager on request") {
  CHECK(load({}, {}).journal_group_commit == "durable");
  for (auto mode : {"durable", "interval", "eager"}) {
    CHECK(load({}, {{"GIGMESH_JOURNAL_GROUP_COMMIT", mode}}).journal_group_commit == mode);
  }
  CHECK(error_of({}, {{"GIGMESH_JOURNAL_GROUP_COMMIT", "sometimes"}}).find("journal_group_commit") !=
        std::string::npos);
}

TEST_CASE("seeds are host:port lists; failure detection needs two heartbeats") {
  auto s = load({"--seeds=10.0.0.1:7001,node-b:7002", "--cluster-port=7000"}, {});
  CHECK(s.seeds == "10.0.0.1:7001,node-b:7002");
  CHECK(s.cluster_port == 7000);
  CHECK(load({}, {{"GIGMESH_SEEDS", ""}}).seeds.empty());
  CHECK(error_of({"--seeds=10.0.0.1"}).find("seeds") != std::string::npos);
  CHECK(error_of({"--seeds=a:1,,b:2"}).find("not host:port") != std::string::npos);
  CHECK(error_of({"--seeds=a:x"}).find("not host:port") != std::string::npos);
  CHECK(error_of({"--cluster-heartbeat-ms=1000", "--cluster-down-after-ms=1500"})
          .find("two heartbeats") != std::string::npos);
}
