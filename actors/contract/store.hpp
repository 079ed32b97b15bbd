// The gig contract's store: the tables contracts write through the journal
// (their own row, their gig's closing, reviews), and what an activating
// contract reads.
#pragma once

#include <string>

#include "actors/contract/rules.hpp"

namespace gm::journal {
struct table_spec;
struct row;
}

namespace gm::pg {
class connection;
}

namespace gm::contract {

const journal::table_spec& contracts_table();
const journal::table_spec& gig_close_table();
const journal::table_spec& reviews_table();

/// The contract's row at `version`.
journal::row contract_row(const contract& c, int64_t version);

/// Closes the contract's gig (once): its accepted proposal and contract.
journal::row gig_close_row(const contract& c);

/// A review of `reviewee` by `reviewer`.
journal::row review_row(const contract& c, const std::string& id, const std::string& reviewer,
                        const std::string& reviewee, int32_t rating, const std::string* text,
                        const std::string& created_at);

struct loaded {
  bool found = false;  // a row exists (any status)
  std::string error;
  contract c;
  int64_t version = 0;
};

/// Reads contract `id` (on a pool thread); `error` says why not.
loaded load_rows(pg::connection& c, const std::string& id);

} // namespace gm::contract
