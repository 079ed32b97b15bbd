// The wallet's store: the tables wallets write through the journal, and
// what an activating wallet reads (its row and the moves it left pending).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/money/moves.hpp"

namespace gm::journal {
struct table_spec;
}

namespace gm::pg {
class connection;
}

namespace gm::wallet {

/// The wallets table (the ledger and the moves' tables are the money
/// mechanism's: actors/money/moves.hpp).
const journal::table_spec& wallets_table();

/// What an activating wallet reads.
struct loaded {
  bool found = false;
  std::string error;
  std::string wallet_id;
  int64_t balance = 0;
  int64_t escrow = 0;
  int64_t version = 0;
  std::vector<money::pending> moves;
};

/// Reads wallet `uid`'s row and the sagas it drives that have not ended
/// (on a pool thread); `error` says why not.
loaded load_rows(pg::connection& c, const std::string& uid);

} // namespace gm::wallet
