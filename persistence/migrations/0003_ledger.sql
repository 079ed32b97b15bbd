-- Money: an append-only double-entry ledger, the transfer sagas, and the
-- idempotency keys of money POSTs. Rows reach these tables through the
-- write-behind journal (persistence/journal.cpp), which only ever inserts
-- ledger entries and upserts the others when the version is newer.

-- One row per posting. Every movement writes entries under one transfer_id
-- that sum to zero once it is complete: a deposit credits the wallet and
-- debits the external (sandbox provider) account; a transfer debits the
-- source when it is reserved and credits the destination when it is credited.
CREATE TABLE ledger_entries (
  id             uuid        PRIMARY KEY,
  transfer_id    uuid        NOT NULL,
  account        text        NOT NULL,  -- a wallet id, or 'external:sandbox'
  -- No foreign key: entries come from the wallet entity that owns the row,
  -- through the journal; a per-row RI check would cost more than the insert.
  wallet_id      uuid,                  -- NULL for system accounts
  type           text        NOT NULL CHECK (type IN (
                   'deposit', 'withdrawal', 'transfer_in', 'transfer_out',
                   'escrow_lock', 'escrow_release', 'escrow_refund',
                   'contribution', 'payout', 'earning', 'external')),
  amount         bigint      NOT NULL CHECK (amount > 0),
  delta          bigint      NOT NULL,  -- signed effect on the account
  balance_after  bigint,
  wallet_version bigint,                -- the wallet's version after this entry
  reference      text,
  counterparty   uuid,                  -- the other party's user id
  created_at     timestamptz NOT NULL
);
CREATE INDEX ledger_entries_wallet ON ledger_entries (wallet_id, wallet_version DESC);

-- A transfer between two wallets is a saga: reserved (source debited) →
-- credited (destination credited) → settled, or reversed. Each step is
-- written by the wallet that performs it with a higher version.
CREATE TABLE transfers (
  id         uuid        PRIMARY KEY,
  from_user  uuid        NOT NULL,
  to_user    uuid        NOT NULL,
  amount     bigint      NOT NULL CHECK (amount > 0),
  note       text,
  state      text        NOT NULL CHECK (state IN ('reserved', 'credited', 'settled', 'reversed')),
  version    bigint      NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX transfers_pending ON transfers (from_user) WHERE state IN ('reserved', 'credited');

-- Idempotency keys are scoped to the user; the first successful answer is
-- kept and returned to repeats with the same body.
CREATE TABLE idempotency_keys (
  user_id      uuid        NOT NULL,
  key          text        NOT NULL,
  request_hash text        NOT NULL,
  status       integer     NOT NULL,
  response     text        NOT NULL,
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (user_id, key)
);
