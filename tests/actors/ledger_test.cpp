// The money rules, without actors or a database.
#include <doctest/doctest.h>

#include <limits>

#include "actors/ledger.hpp"

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
