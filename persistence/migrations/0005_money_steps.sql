-- The money mechanism's steps no longer rely on one journal committing in
-- order (docs/architecture.md, Money): the source's reserve commits before
-- the receiver is asked, the receiver records its own decision, and the
-- source ends the saga.
--
--   reserved (source, v1) ──▶ credited (receiver, v2) ──▶ settled (source, v3)
--            ├─────────────▶ settled  (receiver, v3: the source has no key to record)
--            └─────────────▶ refused  (receiver, v2) ──▶ reversed (source, v3)
--
-- The receiver writes its decision; a repeat of its step reads it and
-- answers the same. A saga resumed after a crash finds its
-- Idempotency-Key here, so the key's stored answer is the final outcome.
-- Written to be applied again safely (IF [NOT] EXISTS).
ALTER TABLE transfers DROP CONSTRAINT IF EXISTS transfers_state_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_state_check
  CHECK (state IN ('reserved', 'credited', 'refused', 'settled', 'reversed'));
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS idempotency_key text;
DROP INDEX IF EXISTS transfers_pending;
CREATE INDEX transfers_pending ON transfers (from_user)
  WHERE state IN ('reserved', 'credited', 'refused');

-- A backstop for "each step applies at most once per transfer and account":
-- a second posting of the same kind to the same account under one transfer
-- is refused by PostgreSQL, and the journal fails the entity that wrote it
-- (its rows are parked below) instead of the whole batch.
CREATE UNIQUE INDEX IF NOT EXISTS ledger_entries_step ON ledger_entries (transfer_id, account, type);

-- Rows PostgreSQL refused for good (a constraint, a value it cannot store).
-- The journal keeps them here, with the owning entity and the error, rather
-- than retry them forever (which held every later write on the node) or
-- drop them: an operator can read what was refused and why.
CREATE TABLE IF NOT EXISTS journal_refused (
  id         bigserial   PRIMARY KEY,
  owner      text        NOT NULL,  -- kind:id of the entity that wrote the row
  table_name text        NOT NULL,
  row_image  text        NOT NULL,  -- the row's values as a PostgreSQL array literal
  error      text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
