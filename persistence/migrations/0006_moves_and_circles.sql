-- Money between any two accounts (actors/money/moves.hpp), and the first
-- kind besides the wallet that holds money: the savings circle and its pot.
--
-- A row of `transfers` is now any move of the one saga mechanism. Its
-- `move_type` names the move's plan (which kinds own the two accounts and
-- which ledger entry types each leg writes); from_user and to_user hold the
-- ids of the entities that own the source and the destination (a user's id
-- for a wallet, a circle's id for its pot). Rows written before this
-- migration, and wallet transfers, are 'transfer'.
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS move_type text NOT NULL DEFAULT 'transfer';
ALTER TABLE transfers DROP CONSTRAINT IF EXISTS transfers_move_type_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_move_type_check
  CHECK (move_type IN ('transfer', 'contribution', 'payout'));
-- A move the destination refused comes back to its source as an entry of
-- the plan's refund type: transfer_in for a transfer (as before), and
-- 'reversal' for the others (a contribution, a payout), whose own types
-- would repeat the source's first leg.
ALTER TABLE ledger_entries DROP CONSTRAINT IF EXISTS ledger_entries_type_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_type_check CHECK (type IN (
  'deposit', 'withdrawal', 'transfer_in', 'transfer_out',
  'escrow_lock', 'escrow_release', 'escrow_refund',
  'contribution', 'payout', 'earning', 'external', 'reversal'));

-- Whose Idempotency-Key `idempotency_key` is, when it is not the source's
-- owner (an admin paying out a circle's pot); NULL: from_user's.
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS key_user uuid;

-- A savings circle (actors/circle/): the entity owns this row; the journal
-- writes it with a higher version on every change. `pot` is a ledger
-- account ('circle:' || id in ledger_entries.account).
CREATE TABLE IF NOT EXISTS circles (
  id                  uuid        PRIMARY KEY,
  name                text        NOT NULL,
  creator_id          uuid        NOT NULL,
  contribution_amount bigint      NOT NULL CHECK (contribution_amount > 0),
  frequency           text        NOT NULL CHECK (frequency IN ('daily', 'weekly', 'monthly')),
  max_members         integer     NOT NULL CHECK (max_members BETWEEN 2 AND 100),
  payout_order        text        NOT NULL DEFAULT 'join' CHECK (payout_order IN ('join', 'random')),
  auto_payout         boolean     NOT NULL DEFAULT false,
  status              text        NOT NULL CHECK (status IN ('forming', 'active', 'completed')),
  current_round       integer     NOT NULL DEFAULT 0,
  pot                 bigint      NOT NULL DEFAULT 0 CHECK (pot >= 0),
  started_at          timestamptz,
  version             bigint      NOT NULL,
  created_at          timestamptz NOT NULL
);

-- One row per member; written by the circle with the circle's version.
-- paid_round: the last round this member paid (0: none); position: the
-- payout order, fixed at start (0 while forming).
CREATE TABLE IF NOT EXISTS circle_members (
  circle_id       uuid        NOT NULL,  -- no foreign key: see ledger_entries
  user_id         uuid        NOT NULL,
  joined          integer     NOT NULL,  -- 1 for the creator, then in join order
  position        integer     NOT NULL DEFAULT 0,
  paid_round      integer     NOT NULL DEFAULT 0,
  received_payout boolean     NOT NULL DEFAULT false,
  late_count      integer     NOT NULL DEFAULT 0,
  version         bigint      NOT NULL,
  joined_at       timestamptz NOT NULL,
  PRIMARY KEY (circle_id, user_id)
);
CREATE INDEX IF NOT EXISTS circle_members_user ON circle_members (user_id);
