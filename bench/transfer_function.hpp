// The transfer of the service-per-request baselines (pg_transfer_baseline,
// pg_transfer_service): one PostgreSQL transaction, a PL/pgSQL function
// (debit with a funds check, credit, two ledger entries, a transfers row)
// that returns the source's balance after the debit.
#pragma once

namespace gm::bench {

inline const char* const transfer_function_sql = R"SQL(
DROP FUNCTION IF EXISTS bench_transfer(uuid, uuid, bigint);
DROP FUNCTION IF EXISTS bench_transfer(uuid, uuid, bigint, uuid, uuid, uuid);
CREATE FUNCTION bench_transfer(p_from uuid, p_to uuid, p_amount bigint, t uuid,
                               p_out uuid, p_in uuid)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  src wallets%ROWTYPE;
  dst wallets%ROWTYPE;
BEGIN
  -- Lock both wallets in one order, so concurrent transfers wait instead of
  -- deadlocking (what a careful service-per-request implementation does).
  PERFORM 1 FROM wallets WHERE user_id IN (p_from, p_to) ORDER BY user_id FOR UPDATE;
  UPDATE wallets SET balance = balance - p_amount, version = version + 1
    WHERE user_id = p_from AND balance >= p_amount RETURNING * INTO src;
  IF NOT FOUND THEN RAISE EXCEPTION 'insufficient funds' USING ERRCODE = 'P0001'; END IF;
  UPDATE wallets SET balance = balance + p_amount, version = version + 1
    WHERE user_id = p_to RETURNING * INTO dst;
  IF NOT FOUND THEN RAISE EXCEPTION 'no such wallet' USING ERRCODE = 'P0002'; END IF;
  INSERT INTO ledger_entries (id, transfer_id, account, wallet_id, type, amount, delta,
                              balance_after, wallet_version, counterparty, created_at)
  VALUES (p_out, t, src.id::text, src.id, 'transfer_out', p_amount, -p_amount,
          src.balance, src.version, p_to, now()),
         (p_in, t, dst.id::text, dst.id, 'transfer_in', p_amount, p_amount,
          dst.balance, dst.version, p_from, now());
  INSERT INTO transfers (id, from_user, to_user, amount, state, version, created_at, updated_at)
  VALUES (t, p_from, p_to, p_amount, 'settled', 3, now(), now());
  RETURN src.balance;
END $$;
)SQL";

} // namespace gm::bench
