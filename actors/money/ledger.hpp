// Money rules, as plain functions: may this amount be credited to or debited
// from these balances? Amounts are int64 minor units; nothing here touches
// an actor or a database, so the unit tests exercise it directly.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace gm::ledger {

enum class check { ok, not_positive, overflow, insufficient_funds };

struct balances {
  int64_t balance = 0;
  int64_t escrow = 0;
  /// Money this account has sent on its way but that may still come back:
  /// the sum of its transfers reserved and not yet credited at their
  /// receiver. A reversal returns it, so a credit must leave room for it.
  int64_t outgoing = 0;
};

/// Returns whether `amount` may be added to the spendable balance: it must
/// be positive, and the balance, plus what may still come back from
/// transfers in flight, plus escrow, must stay at most `max` (a configured
/// bound, at most int64's maximum). Since every credit leaves room for the
/// reversals that may follow, a reversal never overflows (it is applied
/// without a check).
check can_credit(const balances& b, int64_t amount,
                 int64_t max = std::numeric_limits<int64_t>::max());

/// Returns whether `amount` may be taken from the spendable balance.
check can_debit(const balances& b, int64_t amount);

/// Returns a sentence for a failed check.
const char* describe(check c);

/// Returns true if entries of `type` add to the wallet (deposit,
/// transfer_in, earning, payout, escrow_release, escrow_refund), false if
/// they subtract.
bool adds(const std::string& type);

/// Where a transfer's saga stands, as its `transfers` row says.
enum class step_state { none, reserved, credited, refused, settled, reversed };

/// Returns the state named `s` (`none` for anything else).
step_state parse_step_state(const std::string& s);

/// What a receiver does with a request to credit a transfer, given what it
/// knows of that transfer: whether this activation is applying it now, and
/// the state PostgreSQL holds (read when the request may be a repeat).
enum class credit_decision {
  apply,        // not credited before: apply it (once)
  already,      // credited before: answer ok, change nothing
  refused,      // refused before: answer the refusal again
  busy,         // being applied or looked up now: the sender retries later
  unknown,      // the transfer is not (yet) known: the sender retries later
};

/// Returns the receiver's decision. `in_flight`: this activation is already
/// handling a credit of this transfer (a lookup or an uncommitted apply);
/// `looked_up`: the state read from PostgreSQL, or nullopt if the request
/// is a first attempt and was not looked up.
credit_decision decide_credit(bool in_flight, std::optional<step_state> looked_up);

} // namespace gm::ledger
