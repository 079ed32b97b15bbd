// The wallet's store: the tables wallets write through the journal, and
// what an activating wallet reads (its row and the sagas it left pending).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gm::journal {
struct table_spec;
}

namespace gm::pg {
class connection;
}

namespace gm::wallet {

/// The tables wallets write through the journal.
const journal::table_spec& wallets_table();
const journal::table_spec& ledger_table();
/// A transfer's full image (its reserve) and its later steps (a partial
/// image: state and version).
const journal::table_spec& transfers_table();
const journal::table_spec& transfer_steps_table();

/// What an activating wallet reads.
struct loaded {
  bool found = false;
  std::string error;
  std::string wallet_id;
  int64_t balance = 0;
  int64_t escrow = 0;
  int64_t version = 0;
  struct pending {
    std::string id, to_user, note, state, created_at, key, key_hash, reply_body;
    int64_t amount = 0;
  };
  std::vector<pending> transfers;
};

/// Reads wallet `uid`'s row and the sagas it drives that have not ended
/// (on a pool thread); `error` says why not.
loaded load_rows(pg::connection& c, const std::string& uid);

} // namespace gm::wallet
