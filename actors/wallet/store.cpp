// Implements the wallet's store: its tables and its activation's read.
#include "actors/wallet/store.hpp"

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

const journal::table_spec& ledger_table() {
  static const journal::table_spec t{
    "ledger_entries",
    {{"id", "uuid"}, {"transfer_id", "uuid"}, {"account", "text"}, {"wallet_id", "uuid"},
     {"type", "text"}, {"amount", "bigint"}, {"delta", "bigint"}, {"balance_after", "bigint"},
     {"wallet_version", "bigint"}, {"reference", "text"}, {"counterparty", "uuid"},
     {"created_at", "timestamptz"}},
    {0}, 0, journal::write_mode::insert_once};
  return t;
}

const journal::table_spec& transfers_table() {
  static const journal::table_spec t{
    "transfers",
    {{"id", "uuid"}, {"from_user", "uuid"}, {"to_user", "uuid"}, {"amount", "bigint"},
     {"note", "text"}, {"state", "text"}, {"version", "bigint"}, {"created_at", "timestamptz"},
     {"updated_at", "timestamptz"}, {"idempotency_key", "text"}},
    {0}, 6, journal::write_mode::upsert_versioned};
  return t;
}

const journal::table_spec& transfer_steps_table() {
  static const journal::table_spec t{
    "transfers",
    {{"id", "uuid"}, {"state", "text"}, {"version", "bigint"}, {"updated_at", "timestamptz"}},
    {0}, 2, journal::write_mode::update_versioned};
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
  // The sagas this wallet drives that have not ended, with their key (the
  // key's row holds the 201's body the saga answers with).
  auto t = c.exec(
    "SELECT t.id, t.to_user, t.amount, coalesce(t.note, ''), t.state, t.created_at, "
    "coalesce(t.idempotency_key, ''), coalesce(k.request_hash, ''), coalesce(k.response, '') "
    "FROM transfers t LEFT JOIN idempotency_keys k "
    "ON k.user_id = t.from_user AND k.key = t.idempotency_key "
    "WHERE t.from_user = $1 AND t.state IN ('reserved', 'credited', 'refused')",
    {uid});
  if (!t.ok()) {
    l.error = t.error;
    return l;
  }
  for (size_t i = 0; i < t.rows.size(); ++i) {
    loaded::pending p;
    p.id = t.value(i, 0);
    p.to_user = t.value(i, 1);
    p.amount = std::stoll(t.value(i, 2, "0"));
    p.note = t.value(i, 3);
    p.state = t.value(i, 4);
    p.created_at = t.value(i, 5);
    p.key = t.value(i, 6);
    p.key_hash = t.value(i, 7);
    p.reply_body = t.value(i, 8);
    if (p.key_hash.empty()) p.key.clear();  // its row is gone: nothing to answer
    l.transfers.push_back(std::move(p));
  }
  return l;
}

} // namespace gm::wallet
