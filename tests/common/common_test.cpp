// Metrics rendering and log formatting.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"

using namespace gm;

TEST_CASE("counters, gauges and histograms render in Prometheus text format") {
  metrics::registry r;
  r.get_counter("t_requests_total", "requests", {{"route", "/a"}}).inc(3);
  r.get_gauge("t_open", "open").set(-2);
  auto& h = r.get_histogram("t_latency_seconds", "latency", {}, {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  auto text = r.render();
  CHECK(text.find("# TYPE t_requests_total counter") != std::string::npos);
  CHECK(text.find("t_requests_total{route=\"/a\"} 3") != std::string::npos);
  CHECK(text.find("t_open -2") != std::string::npos);
  CHECK(text.find("t_latency_seconds_bucket{le=\"0.10000000000000001\"} 1") != std::string::npos);
  CHECK(text.find("t_latency_seconds_bucket{le=\"+Inf\"} 3") != std::string::npos);
  CHECK(text.find("t_latency_seconds_count 3") != std::string::npos);
}

TEST_CASE("the same name and labels give the same counter") {
  metrics::registry r;
  auto& a = r.get_counter("t_x", "x", {{"k", "v"}});
  auto& b = r.get_counter("t_x", "x", {{"k", "v"}});
  CHECK(&a == &b);
  CHECK_THROWS(r.get_gauge("t_x", "x"));
}

TEST_CASE("label values are escaped") {
  metrics::registry r;
  r.get_counter("t_esc", "e", {{"path", "a\"b\\c"}}).inc();
  CHECK(r.render().find("t_esc{path=\"a\\\"b\\\\c\"} 1") != std::string::npos);
}

TEST_CASE("resident memory is read from /proc") {
  CHECK(metrics::resident_memory_bytes() > 1024 * 1024);
}

TEST_CASE("JSON escaping covers quotes, backslashes and control characters") {
  CHECK(log::json_escape("a\"b\\c\nd\x01") == "a\\\"b\\\\c\\nd\\u0001");
}

TEST_CASE("a packed UUID gives back the canonical text it was made from") {
  auto id = gm::new_uuid();
  REQUIRE(gm::is_uuid(id));
  CHECK(gm::packed_uuid::parse(id).str() == id);
  CHECK(gm::packed_uuid::parse("0A1B2C3D-4E5F-4a6b-8c7d-9e0f1a2b3c4d").str() ==
        "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
}

TEST_CASE("new UUIDs are random version 4, RFC 4122 variant, and differ") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = gm::new_uuid();
    REQUIRE(gm::is_uuid(id));
    CHECK(id[14] == '4');
    CHECK(std::string{"89ab"}.find(id[19]) != std::string::npos);
    CHECK(id == gm::packed_uuid::parse(id).str());
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("time-ordered UUIDs are version 7, carry the time, and sort by it") {
  auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  std::set<std::string> seen;
  std::string last;
  for (int i = 0; i < 1000; ++i) {
    auto id = gm::new_time_uuid();
    REQUIRE(gm::is_uuid(id));
    CHECK(id[14] == '7');
    CHECK(std::string{"89ab"}.find(id[19]) != std::string::npos);
    // The first 48 bits are the Unix time in milliseconds.
    auto ms = std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
    CHECK(ms >= before);
    CHECK(ms <= before + 60000);
    seen.insert(id);
    if (i % 100 == 0) {
      // Minted a few milliseconds apart: later sorts later, as text too.
      std::this_thread::sleep_for(std::chrono::milliseconds{2});
      auto next = gm::new_time_uuid();
      CHECK(next > id);
      CHECK(next > last);
      last = next;
    }
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("now_rfc3339 is UTC with milliseconds and agrees with the clock") {
  auto before = std::time(nullptr);
  auto s = gm::now_rfc3339();
  REQUIRE(s.size() == 24);
  std::tm tm{};
  int ms = -1;
  REQUIRE(std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
                      &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) == 7);
  CHECK(s[4] == '-');
  CHECK(s[10] == 'T');
  CHECK(s[23] == 'Z');
  CHECK(ms >= 0);
  CHECK(ms <= 999);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  auto t = timegm(&tm);
  CHECK(t >= before);
  CHECK(t <= before + 2);
}

TEST_CASE("now_rfc3339 follows the clock across seconds (its per-second part is cached)") {
  auto parse = [](const std::string& s) {
    std::tm tm{};
    int ms = 0;
    std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
  };
  auto now_ms = [] {
    return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
  };
  auto start = now_ms();
  int64_t last = 0;
  int seconds_seen = 0;
  while (now_ms() < start + 2000) {  // bounded: two seconds
    auto before = now_ms();
    auto stamp = parse(gm::now_rfc3339());
    auto after = now_ms();
    CHECK(stamp >= before);
    CHECK(stamp <= after);
    CHECK(stamp >= last);
    if (stamp / 1000 != last / 1000) ++seconds_seen;
    last = stamp;
    std::this_thread::sleep_for(std::chrono::milliseconds(7));
  }
  CHECK(seconds_seen >= 2);
}

TEST_CASE("lower_uuid lower-cases UUIDs and leaves anything else") {
  CHECK(gm::lower_uuid("4DF0BA60-6D02-4AE3-8B53-AF5966874F36") ==
        "4df0ba60-6d02-4ae3-8b53-af5966874f36");
  CHECK(gm::lower_uuid("Inspect") == "Inspect");
  CHECK(gm::lower_uuid("") == "");
}

TEST_CASE("is_uuid and try_parse accept the canonical form only, and pack what parse packs") {
  std::string good = "0A1B2C3D-4E5F-4a6b-8c7d-9e0f1a2b3c4d";
  gm::packed_uuid u;
  REQUIRE(gm::packed_uuid::try_parse(good, u));
  CHECK(u.str() == gm::packed_uuid::parse(good).str());
  CHECK(u.str() == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  CHECK(gm::is_uuid(good));
  std::vector<std::string> bad = {
    "",
    good.substr(1),                            // 35 characters
    good + "0",                                // 37
    "0A1B2C3D4-E5F-4a6b-8c7d-9e0f1a2b3c4d",    // a dash out of place
    "0A1B2C3D-4E5F-4a6b-8c7d-9e0f1a2b3c4g",    // not a hex digit
    "0A1B2C3D-4E5F-4a6b-8c7d-9e0f1a2b3c4\xc3", // not ASCII
    std::string("0A1B2C3D-4E5F-4a6b-8c7d-9e0f1a2b3c\0d", 36),
    "{A1B2C3D-4E5F-4a6b-8c7d-9e0f1a2b3c4}",
  };
  for (auto& s : bad) {
    CHECK_MESSAGE(!gm::is_uuid(s), s);
    CHECK_MESSAGE(!gm::packed_uuid::try_parse(s, u), s);
  }
}
