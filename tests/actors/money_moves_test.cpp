// The money mechanism's plans and derived ids (actors/money/moves.hpp).
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "actors/money/moves.hpp"
#include "common/ids.hpp"

using namespace gm::money;

TEST_CASE("every move type has one plan, and its source drives it") {
  std::set<std::string> types;
  for (auto& p : plans()) {
    CHECK(types.insert(p.type).second);
    CHECK(plan_of(p.type) == &p);
    // A refund must not repeat the source's first leg (the ledger's unique
    // (move, account, type) backstop would refuse it).
    CHECK(std::string{p.back_entry} != p.out_entry);
  }
  CHECK(plan_of("escrow") == nullptr);
  CHECK(plan_of("") == nullptr);
  // Escrow is a wallet's second account: a lock and a refund stay within
  // one wallet (from one account of it to the other), a release leaves it.
  for (auto name : {"escrow_lock", "escrow_release", "escrow_refund"}) {
    auto* e = plan_of(name);
    REQUIRE(e != nullptr);
    CHECK(std::string{e->from_kind} == "wallet");
    CHECK(std::string{e->to_kind} == "wallet");
    CHECK(std::string{e->from_account} != e->to_account);
    CHECK(std::string{e->out_entry} == name);
  }
  CHECK(std::string{plan_of("escrow_lock")->to_account} == "escrow");
  CHECK(std::string{plan_of("escrow_release")->from_account} == "escrow");
  CHECK(std::string{plan_of("escrow_refund")->to_account} == "available");
  auto* t = plan_of("transfer");
  REQUIRE(t != nullptr);
  CHECK(std::string{t->from_kind} == "wallet");
  CHECK(std::string{t->in_entry} == "transfer_in");
  CHECK(t->ok_status == 201);
  auto* c = plan_of("contribution");
  REQUIRE(c != nullptr);
  CHECK(std::string{c->to_kind} == "circle");
  CHECK(std::string{c->to_account} == "pot");
  auto* p = plan_of("payout");
  REQUIRE(p != nullptr);
  CHECK(std::string{p->from_kind} == "circle");
  CHECK(p->ok_status == 200);
}

TEST_CASE("a derived id is a uuid, the same for the same name, different for another") {
  auto a = derived_id("circle:1:round:1:member:u");
  CHECK(gm::is_uuid(a));
  CHECK(a == derived_id("circle:1:round:1:member:u"));
  CHECK(a != derived_id("circle:1:round:2:member:u"));
  CHECK(a[14] == '8');  // version 8
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(derived_id("round:" + std::to_string(i)));
  CHECK(seen.size() == 10000);
}
