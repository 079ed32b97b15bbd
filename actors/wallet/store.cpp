// Implements the wallet's store: its tables and its activation's read.
#include "actors/wallet/store.hpp"

#include "actors/money/moves.hpp"
#include "actors/wallet/wallet.hpp"
#include "persistence/journal.hpp"
#include "persistence/pg.hpp"

namespace gm::wallet {

const journal::table_spec& wallets_table() {
  static const journal::table_spec t{
    "wallets",
    {{"id", "uuid"}, {"balance", "bigint"}, {"escrow_balance", "bigint"}, {"currency", "text"},
     {"version", "bigint"}},
    {0}, 4, journal::write_mode::update_versioned};
  return t;
}

loaded load_rows(pg::connection& c, const std::string& uid) {
  loaded l;
  auto w = c.exec("SELECT id, balance, escrow_balance, version FROM wallets WHERE user_id = $1",
                  {uid});
  if (!w.ok()) {
    l.error = w.error;
    return l;
  }
  if (w.rows.empty()) return l;
  l.found = true;
  l.wallet_id = w.value(0, 0);
  l.balance = std::stoll(w.value(0, 1, "0"));
  l.escrow = std::stoll(w.value(0, 2, "0"));
  l.version = std::stoll(w.value(0, 3, "0"));
  // The moves this wallet drives that have not ended.
  if (!money::load_pending(c, type, uid, l.moves, l.error)) return l;
  return l;
}

} // namespace gm::wallet
