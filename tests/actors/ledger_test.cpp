// The money rules, without actors or a database.
#include <doctest/doctest.h>

#include <limits>

#include "actors/money/ledger.hpp"

using gm::ledger::can_credit;
using gm::ledger::can_debit;
using gm::ledger::check;

TEST_CASE("an amount must be positive to be credited or debited") {
  CHECK(can_credit({0, 0}, 0) == check::not_positive);
  CHECK(can_credit({0, 0}, -1) == check::not_positive);
  CHECK(can_debit({100, 0}, 0) == check::not_positive);
  CHECK(can_debit({100, 0}, -5) == check::not_positive);
  CHECK(can_credit({0, 0}, 1) == check::ok);
}

TEST_CASE("a debit that overdraws is refused; one that empties the wallet is not") {
  CHECK(can_debit({100, 500}, 101) == check::insufficient_funds);  // escrow is not spendable
  CHECK(can_debit({100, 0}, 100) == check::ok);
}

TEST_CASE("a credit that would overflow the balance or the wallet's total is refused") {
  constexpr auto max = std::numeric_limits<int64_t>::max();
  CHECK(can_credit({0, 0}, max) == check::ok);
  CHECK(can_credit({1, 0}, max) == check::overflow);
  CHECK(can_credit({max - 10, 0}, 10) == check::ok);
  CHECK(can_credit({max - 10, 0}, 11) == check::overflow);
  CHECK(can_credit({0, max - 5}, 6) == check::overflow);  // balance + escrow must fit
  CHECK(can_credit({0, max - 5}, 5) == check::ok);
}

TEST_CASE("entry types add or subtract as API.md says") {
  for (auto t : {"deposit", "transfer_in", "earning", "payout", "escrow_release", "escrow_refund"}) {
    CHECK(gm::ledger::adds(t));
  }
  for (auto t : {"withdrawal", "transfer_out", "escrow_lock", "contribution"}) {
    CHECK_FALSE(gm::ledger::adds(t));
  }
}

TEST_CASE("a credit leaves room for the transfers that may still come back") {
  constexpr auto max = std::numeric_limits<int64_t>::max();
  // A sender at the top of the range sent 10 on its way; until the receiver
  // takes it, a credit of even 1 would leave no room for its reversal.
  gm::ledger::balances sender{max - 10, 0, 10};
  CHECK(can_credit(sender, 1) == check::overflow);
  CHECK(can_credit({max - 20, 0, 10}, 10) == check::ok);
  CHECK(can_credit({max - 20, 0, 10}, 11) == check::overflow);
  // A configured bound below int64 applies to the same sum.
  CHECK(can_credit({900, 50, 40}, 10, 1000) == check::ok);
  CHECK(can_credit({900, 50, 40}, 11, 1000) == check::overflow);
  // Corrupt parts (negative, or past the bound) never let a credit through.
  CHECK(can_credit({-1, 0, 0}, 1) == check::overflow);
  CHECK(can_credit({2000, 0, 0}, 1, 1000) == check::overflow);
}

TEST_CASE("a receiver applies a transfer's credit at most once") {
  using gm::ledger::credit_decision;
  using gm::ledger::decide_credit;
  using gm::ledger::step_state;
  // A first attempt that this activation is not handling yet is applied.
  CHECK(decide_credit(false, std::nullopt) == credit_decision::apply);
  // Anything this activation is already looking up or applying waits, even
  // when PostgreSQL still says `reserved`: two lookups that both read
  // `reserved` must not both apply (the credit-twice defect).
  CHECK(decide_credit(true, std::nullopt) == credit_decision::busy);
  CHECK(decide_credit(true, step_state::reserved) == credit_decision::busy);
  CHECK(decide_credit(false, step_state::reserved) == credit_decision::apply);
  CHECK(decide_credit(false, step_state::credited) == credit_decision::already);
  CHECK(decide_credit(false, step_state::settled) == credit_decision::already);
  CHECK(decide_credit(false, step_state::refused) == credit_decision::refused);
  CHECK(decide_credit(false, step_state::reversed) == credit_decision::refused);
  CHECK(decide_credit(false, step_state::none) == credit_decision::unknown);
  CHECK(gm::ledger::parse_step_state("credited") == step_state::credited);
  CHECK(gm::ledger::parse_step_state("bogus") == step_state::none);
}
