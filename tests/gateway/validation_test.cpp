// The shared body validation: 400 for what is not JSON of the right shape,
// 422 for rules, the field always named.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gateway/validation.hpp"

using namespace gm::gateway;

namespace {

body_schema sample() {
  field_rule phone{"phone", json_type::string, true, 1, 16, INT64_MIN, INT64_MAX, {}, "e164"};
  field_rule role{"role", json_type::string, true, 1, 32, INT64_MIN, INT64_MAX,
                  {"rider", "client"}, ""};
  field_rule amount{"amount", json_type::integer, false, 0, 0, 1, INT64_MAX, {}, ""};
  field_rule name{"name", json_type::string, false, 1, 5, INT64_MIN, INT64_MAX, {}, ""};
  return body_schema{{phone, role, amount, name}};
}

/// Returns {status, detail} of the problem, or {0, ""} if the body passed.
std::pair<int, std::string> check(const std::string& body) {
  request rq;
  rq.body = body;
  response bad;
  auto doc = validate_body(rq, sample(), bad);
  if (doc) return {0, ""};
  auto p = nlohmann::json::parse(bad.body);
  CHECK(p["status"] == bad.status);
  CHECK(p.contains("errors"));
  return {bad.status, p["detail"].get<std::string>()};
}

} // namespace

TEST_CASE("a valid body passes") {
  CHECK(check(R"({"phone":"+254700000001","role":"rider","amount":5,"name":"ab"})").first == 0);
  CHECK(check(R"({"phone":"+254700000001","role":"client"})").first == 0);
}

TEST_CASE("not JSON, not an object, or invalid UTF-8 is 400") {
  CHECK(check("").first == 400);
  CHECK(check("{").first == 400);
  CHECK(check("[1,2]").first == 400);
  CHECK(check("\"text\"").first == 400);
  CHECK(check("{\"phone\":\"\xff\xfe\",\"role\":\"rider\"}").first == 400);
}

TEST_CASE("a wrong type is 400 naming the field") {
  auto [status, detail] = check(R"({"phone":254700000001,"role":"rider"})");
  CHECK(status == 400);
  CHECK(detail.find("phone") != std::string::npos);
  CHECK(check(R"({"phone":"+254700000001","role":"rider","amount":"5"})").first == 400);
  CHECK(check(R"({"phone":"+254700000001","role":"rider","amount":5.5})").first == 400);
  CHECK(check(R"({"phone":"+254700000001","role":"rider","amount":5.0})").first == 400);
  CHECK(check(R"({"phone":"+254700000001","role":"rider","amount":true})").first == 400);
}

TEST_CASE("rule violations are 422 naming the field") {
  auto expect = [](const std::string& body, const std::string& field) {
    auto [status, detail] = check(body);
    CHECK(status == 422);
    CHECK_MESSAGE(detail.find(field) != std::string::npos, detail);
  };
  expect(R"({"role":"rider"})", "phone");                                   // missing
  expect(R"({"phone":"0700","role":"rider"})", "phone");                    // not E.164
  expect(R"({"phone":"+254700000001","role":"admin"})", "role");            // not allowed
  expect(R"({"phone":"+254700000001","role":"rider","amount":0})", "amount");    // below min
  expect(R"({"phone":"+254700000001","role":"rider","amount":-5})", "amount");
  expect(R"({"phone":"+254700000001","role":"rider","amount":9223372036854775808})", "amount");
  // Past uint64 the parser holds the number as a double: still out of range.
  expect(R"({"phone":"+254700000001","role":"rider","amount":18446744073709551616})", "amount");
  expect(R"({"phone":"+254700000001","role":"rider","amount":-99999999999999999999})", "amount");
  expect(R"({"phone":"+254700000001","role":"rider","name":"toolong"})", "name");
  expect(R"({"phone":"+254700000001","role":"rider","extra":1})", "extra");  // unknown
}

TEST_CASE("E.164 and email formats") {
  CHECK(is_e164("+254700000001"));
  CHECK_FALSE(is_e164("254700000001"));
  CHECK_FALSE(is_e164("+0700000001"));
  CHECK_FALSE(is_e164("+2547000a0001"));
  CHECK_FALSE(is_e164("+1234567890123456"));
  CHECK(is_email("a@b.co"));
  CHECK_FALSE(is_email("a@b"));
  CHECK_FALSE(is_email("@b.co"));
  CHECK_FALSE(is_email("a b@c.de"));
  CHECK_FALSE(is_email("a@@b.co"));
}

TEST_CASE("a string holding U+0000 is 422 naming the field") {
  // Valid JSON, but PostgreSQL text cannot store it: a row with it would be
  // refused by the journal's batch, so it must never get past the gateway.
  auto [status, detail] = check(R"({"phone":"+254700000001","role":"rider","name":"a\u0000b"})");
  CHECK(status == 422);
  CHECK(detail.find("name") != std::string::npos);
  CHECK(detail.find("U+0000") != std::string::npos);
  CHECK(check(R"({"phone":"+254700000001","role":"rider\u0000"})").first == 422);
  CHECK(check(R"({"phone":"+254700000001","role":"rider","name":"a\u0001b"})").first == 0);
}

TEST_CASE("null for an optional field is the field left out") {
  request rq;
  rq.body = R"({"phone":"+254700000001","role":"rider","name":null,"amount":null})";
  response bad;
  auto doc = validate_body(rq, sample(), bad);
  REQUIRE(doc);
  CHECK_FALSE(doc->contains("name"));
  CHECK_FALSE(doc->contains("amount"));
  CHECK(doc->value("name", std::string{"absent"}) == "absent");
  CHECK(check(R"({"phone":null,"role":"rider"})").first == 422);
}

TEST_CASE("a member name given twice is 400 naming it") {
  auto [status, detail] = check(R"({"phone":"+254700000001","role":"rider","amount":5,"amount":-5})");
  CHECK(status == 400);
  CHECK(detail.find("amount") != std::string::npos);
  // The same name in different objects is no repeat (and nested objects are
  // a type error for these fields anyway).
  CHECK(check(R"({"phone":"+254700000001","role":"rider","name":"ab"})").first == 0);
}

TEST_CASE("parse_json names the first member given twice in one object") {
  std::string repeated;
  auto doc = parse_json(R"({"a":{"b":1,"b":2},"c":3})", repeated);
  CHECK(doc.is_object());
  CHECK(repeated == "b");
  repeated.clear();
  parse_json(R"({"a":{"b":1},"c":{"b":2}})", repeated);
  CHECK(repeated.empty());
  CHECK(parse_json("{\"a\":", repeated).is_discarded());
}

TEST_CASE("parse_json finds a repeat among many members, and refuses what json::parse refuses") {
  std::string body = "{";
  for (int i = 0; i < 40; ++i) body += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  std::string repeated;
  auto doc = parse_json(body + "\"k41\":[{\"x\":1,\"x\":2}]}", repeated);
  CHECK(doc.is_object());
  CHECK(repeated == "x");  // the first repeat met, in the inner object
  repeated.clear();
  parse_json(body + "\"k39\":0}", repeated);
  CHECK(repeated == "k39");
  repeated.clear();
  CHECK(parse_json(body + "\"k40\":0}", repeated)["k40"] == 0);
  CHECK(repeated.empty());
  for (const char* bad : {"{\"a\":1} x", "{\"a\":\"\xff\"}", "", "{\"a\":01}", "[1,]"}) {
    CAPTURE(bad);
    CHECK(parse_json(bad, repeated).is_discarded());
  }
  CHECK(parse_json(R"({"a":[1,{"b":null}],"c":1.5e3,"d":true})", repeated) ==
        nlohmann::json::parse(R"({"a":[1,{"b":null}],"c":1.5e3,"d":true})"));
}

TEST_CASE("the flat fast way reads what nlohmann reads, and gives up on everything else") {
  using nlohmann::json;
  // Bodies built from pieces, many of them wrong or beyond the fast way,
  // then mutated at random. Whatever the fast way accepts, nlohmann must
  // read as the same document with the same types; the flat bodies phones
  // send must take it.
  const char* names[] = {"\"a\"", "\"amount\"", "\"to_user_id\"", "\"n\\u0041\"", "\"\"",
                         "\"caf\xc3\xa9\"", "a", "\"x y\""};
  const char* values[] = {"\"abc\"", "\"\"", "\"caf\\u00e9\"", "\"tab\there\"", "\"\x7f\"",
                          "\"\xc3\xa9\"", "\"q\\\"q\"", "0", "-0", "01", "-", "7",
                          "123456789012345678", "1234567890123456789", "-9223372036854775808",
                          "-123456789012345678", "1.5", "1e3", "2E2", "true", "false", "null",
                          "nul", "tru", "[1]", "{}", "{\"x\":1}", "\"00000000-0000-0000-0000-0000000000ab\""};
  const char* spaces[] = {"", "", "", " ", "\t", "\n", "\r", "\f", "  "};
  const char noise[] = "{}[]\":,-0.e\\ a";
  uint64_t seed = 42;
  auto next = [&seed](size_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>((seed >> 33) % n);
  };
  int fast = 0, general = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body = spaces[next(9)];
    body += next(50) == 0 ? "[" : "{";
    size_t members = next(6) == 0 ? 17 + next(3) : next(5);
    for (size_t m = 0; m < members; ++m) {
      if (m > 0) body += next(40) == 0 ? ";" : ",";
      body += spaces[next(9)];
      if (members > 16) {
        body += "\"k" + std::to_string(m) + "\"";
      } else {
        body += names[next(next(3) == 0 ? 8 : 3)];
      }
      body += spaces[next(9)];
      body += next(40) == 0 ? "=" : ":";
      body += spaces[next(9)];
      body += values[next(sizeof values / sizeof *values)];
      body += spaces[next(9)];
    }
    body += next(50) == 0 ? "" : "}";
    body += spaces[next(9)];
    if (next(4) == 0) {
      size_t at = next(body.size() + 1);
      if (next(2) == 0 && at < body.size()) {
        body.erase(at, 1);
      } else {
        body.insert(at, 1, noise[next(sizeof noise - 1)]);
      }
    }
    CAPTURE(body);
    json flat = "untouched";
    if (!parse_flat_json(body, flat)) {
      CHECK(flat == "untouched");
      ++general;
      continue;
    }
    ++fast;
    auto reference = json::parse(body, nullptr, false);
    REQUIRE_FALSE(reference.is_discarded());
    CHECK(flat == reference);
    REQUIRE(flat.is_object());
    REQUIRE(flat.size() == reference.size());  // no name was repeated
    for (auto it = flat.begin(); it != flat.end(); ++it) {
      CHECK(it->type() == reference[it.key()].type());
    }
    std::string repeated;
    CHECK(parse_json(body, repeated) == reference);
    CHECK(repeated.empty());
  }
  CHECK(fast > 2000);
  CHECK(general > 2000);
  json doc;
  CHECK(parse_flat_json(R"({"to_user_id":"00000000-0000-0000-0000-0000000000ab","amount":120})", doc));
  CHECK(doc["amount"].is_number_unsigned());
  CHECK(parse_flat_json(R"( { "amount" : -5 , "note" : "rent" } )", doc));
  CHECK(doc["amount"].get<int64_t>() == -5);
  CHECK(doc["amount"].is_number_integer());
  CHECK_FALSE(doc["amount"].is_number_unsigned());
}

TEST_CASE("date-time format: RFC 3339 with a zone and a real day") {
  body_schema s{{string_field("at", true, 1, 40, "date-time")}};
  auto status = [&s](const std::string& at) {
    request rq;
    rq.body = nlohmann::json{{"at", at}}.dump();
    response bad;
    return validate_body(rq, s, bad) ? 0 : bad.status;
  };
  CHECK(status("2027-01-31T18:00:00Z") == 0);
  CHECK(status("2027-01-31T18:00:00.123Z") == 0);
  CHECK(status("2027-01-31T18:00:00+03:00") == 0);
  CHECK(status("2028-02-29T00:00:00Z") == 0);  // a leap day
  CHECK(status("2027-02-29T00:00:00Z") == 422);
  CHECK(status("2027-04-31T00:00:00Z") == 422);
  CHECK(status("2027-01-31T24:00:00Z") == 422);
  CHECK(status("2027-01-31T18:00:00") == 422);  // no zone
  CHECK(status("2027-01-31") == 422);
  CHECK(status("tomorrow") == 422);
  CHECK(status("2027-01-31T18:00:00Zjunk") == 422);
  CHECK(status("2027-01-31T18:00:00.Z") == 422);
}

TEST_CASE("a list of strings: its type, its length and each item are checked") {
  auto schema = gm::gateway::make_schema(
    {gm::gateway::string_list_field("ids", false, 2, 36, "uuid")});
  auto run = [&](const std::string& body) {
    request rq;
    rq.body = body;
    response bad;
    auto doc = validate_body(rq, *schema, bad);
    return doc ? 0 : bad.status;
  };
  CHECK(run("{}") == 0);
  CHECK(run(R"({"ids": []})") == 0);
  CHECK(run(R"({"ids": ["8d7f5c1e-9a7b-4c1d-8e2f-0a1b2c3d4e5f"]})") == 0);
  CHECK(run(R"({"ids": "8d7f5c1e-9a7b-4c1d-8e2f-0a1b2c3d4e5f"})") == 400);  // not a list
  CHECK(run(R"({"ids": [1]})") == 400);                                      // not strings
  CHECK(run(R"({"ids": ["nope"]})") == 422);                                 // not uuids
  CHECK(run(R"({"ids": ["", "x"]})") == 422);
  CHECK(run(R"({"ids": ["a", "b", "c"]})") == 422);                          // too many
}

TEST_CASE("a number: integers and fractions within its bounds") {
  auto schema = gm::gateway::make_schema({gm::gateway::number_field("lat", true, -90, 90)});
  auto run = [&](const std::string& body) {
    request rq;
    rq.body = body;
    response bad;
    auto doc = validate_body(rq, *schema, bad);
    return doc ? 0 : bad.status;
  };
  CHECK(run(R"({"lat": -1.2921})") == 0);
  CHECK(run(R"({"lat": 90})") == 0);
  CHECK(run(R"({"lat": -90.0})") == 0);
  CHECK(run(R"({"lat": 90.000001})") == 422);
  CHECK(run(R"({"lat": 1e400})") == 400);  // not a number JSON can hold: malformed
  CHECK(run(R"({"lat": "1"})") == 400);
  CHECK(run(R"({})") == 422);
}
