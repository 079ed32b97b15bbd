// The gig contract's rules (actors/contract/rules.hpp), without actors.
#include <doctest/doctest.h>

#include "actors/contract/rules.hpp"

using namespace gm::contract;

namespace {

contract in(const std::string& status) {
  contract c;
  c.id = "k1";
  c.client_id = "client";
  c.hustler_id = "hustler";
  c.agreed_price = 3000;
  c.status = status;
  return c;
}

verdict v(const contract& c, action a, party p) {
  return can(c, a, p).v;
}

} // namespace

TEST_CASE("the caller's part in a contract") {
  auto c = in("active");
  CHECK(party_of(c, "client", "client") == party::client);
  CHECK(party_of(c, "hustler", "hustler") == party::hustler);
  CHECK(party_of(c, "someone", "admin") == party::admin);
  CHECK(party_of(c, "someone", "client") == party::stranger);
}

TEST_CASE("a contract not opened, or whose lock failed, is not there for anyone") {
  for (auto s : {"", "opening", "void"}) {
    auto c = in(s);
    CHECK_FALSE(shown(c));
    CHECK(v(c, action::deliver, party::hustler) == verdict::not_found);
    CHECK(v(c, action::resolve, party::admin) == verdict::not_found);
  }
  CHECK(v(in("active"), action::deliver, party::stranger) == verdict::not_found);
}

TEST_CASE("the happy path: deliver (hustler), approve (client)") {
  auto c = in("active");
  CHECK(can(c, action::deliver, party::hustler).ok());
  CHECK(v(c, action::deliver, party::client) == verdict::forbidden);
  CHECK(v(c, action::deliver, party::admin) == verdict::forbidden);
  CHECK(v(c, action::approve, party::client) == verdict::conflict);  // not delivered
  CHECK(status_after(action::deliver, "") == "delivered");
  c.status = "delivered";
  CHECK(v(c, action::deliver, party::hustler) == verdict::conflict);
  CHECK(v(c, action::approve, party::hustler) == verdict::forbidden);
  CHECK(can(c, action::approve, party::client).ok());
  CHECK(move_of(action::approve, "") == "release");
  CHECK(status_after(action::approve, "") == "completed");
  c.status = "completed";
  CHECK(v(c, action::approve, party::client) == verdict::conflict);  // double approve
}

TEST_CASE("disputes: either party, from active or delivered; an admin resolves each way") {
  for (auto s : {"active", "delivered"}) {
    auto c = in(s);
    CHECK(can(c, action::dispute, party::client).ok());
    CHECK(can(c, action::dispute, party::hustler).ok());
    CHECK(v(c, action::dispute, party::admin) == verdict::forbidden);
    CHECK(v(c, action::resolve, party::admin) == verdict::conflict);  // not disputed
  }
  auto c = in("disputed");
  CHECK(v(c, action::dispute, party::client) == verdict::conflict);
  CHECK(v(c, action::approve, party::client) == verdict::conflict);  // frozen
  CHECK(v(c, action::resolve, party::client) == verdict::forbidden);
  CHECK(can(c, action::resolve, party::admin).ok());
  CHECK(move_of(action::resolve, "hustler") == "release");
  CHECK(status_after(action::resolve, "hustler") == "completed");
  CHECK(move_of(action::resolve, "client") == "refund");
  CHECK(status_after(action::resolve, "client") == "refunded");
  CHECK(move_of(action::dispute, "") == "");
  CHECK(v(in("completed"), action::dispute, party::hustler) == verdict::conflict);
}

TEST_CASE("a move under way blocks every step") {
  auto c = in("delivered");
  c.settling = "release";
  CHECK(v(c, action::approve, party::client) == verdict::conflict);
  CHECK(v(c, action::dispute, party::hustler) == verdict::conflict);
  CHECK_FALSE(auto_release_due(c, INT64_MAX));
}

TEST_CASE("reviews: each party once, after the contract ended") {
  auto c = in("delivered");
  CHECK(v(c, action::review, party::client) == verdict::conflict);
  for (auto s : {"completed", "refunded"}) {
    auto d = in(s);
    CHECK(can(d, action::review, party::client).ok());
    CHECK(v(d, action::review, party::admin) == verdict::forbidden);
    d.client_reviewed = true;
    CHECK(v(d, action::review, party::client) == verdict::conflict);
    CHECK(can(d, action::review, party::hustler).ok());
  }
}

TEST_CASE("the delivery deadline") {
  auto c = in("delivered");
  c.auto_release_at_ms = auto_release_at(1000, 500);
  CHECK(c.auto_release_at_ms == 1500);
  CHECK_FALSE(auto_release_due(c, 1499));
  CHECK(auto_release_due(c, 1500));
  c.status = "disputed";  // a dispute stops the clock
  CHECK_FALSE(auto_release_due(c, 2000));
  CHECK(auto_release_at(INT64_MAX - 10, 500) == INT64_MAX);
}

TEST_CASE("steps by name") {
  action a;
  CHECK(parse_action("approve", a));
  CHECK(a == action::approve);
  CHECK_FALSE(parse_action("review", a));  // its own command
  CHECK_FALSE(parse_action("", a));
}
