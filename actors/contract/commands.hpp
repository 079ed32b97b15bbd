// The gig contract's commands: one struct each, with `inspect`
// (actors/commands.hpp). `user` and `role` are the caller's (the gateway's
// authenticated user); `key`/`hash` an Idempotency-Key and its request's
// digest.
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace gm::contract {

/// → the contract (its parties and admins; others not_found).
struct get_cmd {
  std::string user;
  std::string role;
};

/// Accept proposal `proposal_id` of gig `gig_id` (sent to the gig's
/// contract, id_of_gig): the contract reads both, checks that `user` owns
/// the gig, locks the proposed price from the client's wallet into its
/// escrow, and is active → 201 the contract. insufficient_funds: nothing
/// changed.
struct open_cmd {
  std::string user;  // the client
  std::string gig_id;
  std::string proposal_id;
  std::string key;
  std::string hash;
};

/// A step of the contract's life (rules.hpp): deliver (`text` the note),
/// approve, dispute (`text` the reason), resolve (`release_to` hustler or
/// client) → the contract.
struct act_cmd {
  std::string user;
  std::string role;
  std::string what;
  std::string text;
  std::string release_to;
  std::string key;
  std::string hash;
};

/// Review the other party once the contract ended → 201 the review.
struct review_cmd {
  std::string user;
  std::string role;
  int32_t rating = 0;
  std::string text;
  bool has_text = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_cmd& x) {
  return f(caf::meta::type_name("gm_k_get"), x.user, x.role);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, open_cmd& x) {
  return f(caf::meta::type_name("gm_k_open"), x.user, x.gig_id, x.proposal_id, x.key, x.hash);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, act_cmd& x) {
  return f(caf::meta::type_name("gm_k_act"), x.user, x.role, x.what, x.text, x.release_to, x.key,
           x.hash);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, review_cmd& x) {
  return f(caf::meta::type_name("gm_k_review"), x.user, x.role, x.rating, x.text, x.has_text);
}

} // namespace gm::contract
