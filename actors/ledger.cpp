// Implements the money rules.
#include "actors/ledger.hpp"

#include <limits>

namespace gm::ledger {

check can_credit(const balances& b, int64_t amount) {
  if (amount <= 0) return check::not_positive;
  constexpr auto max = std::numeric_limits<int64_t>::max();
  if (b.balance > max - amount) return check::overflow;
  if (b.escrow > max - amount - b.balance) return check::overflow;
  return check::ok;
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

} // namespace gm::ledger
