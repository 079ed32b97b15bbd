// The wallet's commands: one struct each, with `inspect` (actors/commands.hpp).
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
/// Saga step, source → destination, sent only once the reserve has
/// committed; applied at most once. `maybe_repeat`: look the transfer up
/// first; `last`: the source has nothing to record after this step.
struct credit_cmd {
  std::string transfer_id;
  std::string from_user;
  int64_t amount = 0;
  std::string note;
  bool maybe_repeat = false;
  bool last = false;
};
/// Activate and resume the sagas this wallet left pending → ok.
struct resume_cmd {};

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
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, credit_cmd& x) {
  return f(caf::meta::type_name("gm_w_credit"), x.transfer_id, x.from_user, x.amount, x.note,
           x.maybe_repeat, x.last);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resume_cmd&) {
  return f(caf::meta::type_name("gm_w_resume"));
}

} // namespace gm::wallet
