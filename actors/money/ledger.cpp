// Implements the money rules.
#include "actors/money/ledger.hpp"

#include <limits>

namespace gm::ledger {

check can_credit(const balances& b, int64_t amount, int64_t max) {
  if (amount <= 0) return check::not_positive;
  // Each step subtracts only from what is known to be at most `max`, so
  // nothing here overflows.
  int64_t room = max;
  for (auto part : {b.balance, b.outgoing, b.escrow}) {
    if (part < 0 || part > room) return check::overflow;
    room -= part;
  }
  return amount > room ? check::overflow : check::ok;
}

check can_debit(const balances& b, int64_t amount) {
  if (amount <= 0) return check::not_positive;
  if (b.balance < amount) return check::insufficient_funds;
  return check::ok;
}

const char* describe(check c) {
  switch (c) {
    case check::ok: return "ok";
    case check::not_positive: return "amount must be a positive integer of minor units";
    case check::overflow: return "the resulting balance would exceed the largest amount a wallet can hold";
    case check::insufficient_funds: return "insufficient funds";
  }
  return "invalid amount";
}

bool adds(const std::string& type) {
  return type == "deposit" || type == "transfer_in" || type == "earning" || type == "payout" ||
         type == "escrow_release" || type == "escrow_refund";
}

step_state parse_step_state(const std::string& s) {
  if (s == "reserved") return step_state::reserved;
  if (s == "credited") return step_state::credited;
  if (s == "refused") return step_state::refused;
  if (s == "settled") return step_state::settled;
  if (s == "reversed") return step_state::reversed;
  return step_state::none;
}

credit_decision decide_credit(bool in_flight, std::optional<step_state> looked_up) {
  if (in_flight) return credit_decision::busy;
  if (!looked_up) return credit_decision::apply;
  switch (*looked_up) {
    case step_state::reserved: return credit_decision::apply;
    case step_state::credited:
    case step_state::settled: return credit_decision::already;
    case step_state::refused:
    case step_state::reversed: return credit_decision::refused;
    case step_state::none: break;
  }
  return credit_decision::unknown;
}

} // namespace gm::ledger
