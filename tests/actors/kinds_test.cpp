// The list of kinds: what main, the admin routes and WebSocket topics read,
// and the announcement of typed commands (without a database).
#include <doctest/doctest.h>

#include <vector>

#include <caf/all.hpp>

#include "actors/kinds.hpp"
#include "actors/money/moves.hpp"
#include "actors/user/user.hpp"
#include "actors/wallet/wallet.hpp"

TEST_CASE("the list of kinds names each kind's type and topic once") {
  CHECK(gm::actors::runs_kind("wallet"));
  CHECK(gm::actors::runs_kind("user"));
  CHECK_FALSE(gm::actors::runs_kind("savings_circle"));
  REQUIRE(gm::actors::kind_of_topic("wallet") != nullptr);
  CHECK(gm::actors::kind_of_topic("wallet")->type == "wallet");
  CHECK(gm::actors::kind_of_topic("system") == nullptr);  // the gateway's, not a kind's
  for (auto& k : gm::actors::kinds()) {
    CHECK(k.make);
    CHECK(k.announce);
    CHECK((k.topic.empty() || k.may_see));
  }
}

TEST_CASE("every kind's commands are announced, so they cross a serializer by name") {
  caf::actor_system_config cfg;
  gm::actors::announce_commands(cfg);
  caf::actor_system sys{cfg};
  auto msg = caf::make_message(gm::money::credit_cmd{"t1", "transfer", "u1", 42, "note", true, false});
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE_FALSE(sink(msg));
  caf::message back;
  caf::binary_deserializer source{sys, buf};
  REQUIRE_FALSE(source(back));
  REQUIRE(back.match_elements<gm::money::credit_cmd>());
  auto& c = back.get_as<gm::money::credit_cmd>(0);
  CHECK(c.move_id == "t1");
  CHECK(c.type == "transfer");
  CHECK(c.amount == 42);
  CHECK(c.maybe_repeat);
  CHECK_FALSE(c.last);
  auto user = caf::make_message(gm::user::update_cmd{"A", "", "", true, false, false});
  buf.clear();
  caf::binary_serializer sink2{sys, buf};
  REQUIRE_FALSE(sink2(user));
  caf::binary_deserializer source2{sys, buf};
  REQUIRE_FALSE(source2(back));
  CHECK(back.match_elements<gm::user::update_cmd>());
}
