// The wallet's commands: one struct each, with `inspect` (actors/commands.hpp).
// The money mechanism's own (credit, start, resume) are in
// actors/money/moves.hpp.
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace gm::wallet {

// ---- commands (actors/commands.hpp) ----------------------------------------

/// → {id, balance, escrow_balance, currency, version}.
struct get_cmd {};
/// A movement against the sandbox provider → 201 body: the transaction.
/// `key`/`hash`: the Idempotency-Key and the digest of its request ("" if none).
struct deposit_cmd {
  int64_t amount = 0;
  std::string reference;
  std::string key;
  std::string hash;
};
struct withdraw_cmd {
  int64_t amount = 0;
  std::string reference;
  std::string key;
  std::string hash;
};
/// → the source's transaction once the destination has the money. Senders
/// leave `to_loaded` false; the wallet shard sets it when the destination
/// has loaded (so it exists), and the source then skips asking.
struct transfer_cmd {
  std::string to_user;
  int64_t amount = 0;
  std::string note;
  std::string key;
  std::string hash;
  bool to_loaded = false;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_cmd&) {
  return f(caf::meta::type_name("gm_w_get"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, deposit_cmd& x) {
  return f(caf::meta::type_name("gm_w_deposit"), x.amount, x.reference, x.key, x.hash);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, withdraw_cmd& x) {
  return f(caf::meta::type_name("gm_w_withdraw"), x.amount, x.reference, x.key, x.hash);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transfer_cmd& x) {
  return f(caf::meta::type_name("gm_w_transfer"), x.to_user, x.amount, x.note, x.key, x.hash,
           x.to_loaded);
}
} // namespace gm::wallet
