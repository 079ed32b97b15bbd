// Money rules, as plain functions: may this amount be credited to or debited
// from these balances? Amounts are int64 minor units; nothing here touches
// an actor or a database, so the unit tests exercise it directly.
#pragma once

#include <cstdint>
#include <string>

namespace gm::ledger {

enum class check { ok, not_positive, overflow, insufficient_funds };

struct balances {
  int64_t balance = 0;
  int64_t escrow = 0;
};

/// Returns whether `amount` may be added to the spendable balance: it must
/// be positive and neither the balance nor the wallet's total (balance plus
/// escrow) may overflow int64.
check can_credit(const balances& b, int64_t amount);

/// Returns whether `amount` may be taken from the spendable balance.
check can_debit(const balances& b, int64_t amount);

/// Returns a sentence for a failed check.
const char* describe(check c);

/// Returns true if entries of `type` add to the wallet (deposit,
/// transfer_in, earning, payout, escrow_release, escrow_refund), false if
/// they subtract.
bool adds(const std::string& type);

} // namespace gm::ledger
