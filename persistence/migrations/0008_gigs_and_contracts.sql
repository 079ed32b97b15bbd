-- The gig marketplace: gigs and proposals (read models the gateway writes
-- with SQL), contracts (the gig contract entity's rows, through the
-- journal), reviews, and the escrow moves of the money mechanism.

-- Escrow is a wallet's second account (ledger_entries.account
-- 'escrow:' || wallet id, wallet_id the wallet): a lock moves money from
-- its available balance into it, a refund back, a release to the
-- hustler's wallet.
ALTER TABLE transfers DROP CONSTRAINT IF EXISTS transfers_move_type_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_move_type_check
  CHECK (move_type IN ('transfer', 'contribution', 'payout',
                       'escrow_lock', 'escrow_release', 'escrow_refund'));

-- A gig a client posts. `status` turns 'closed' when a proposal is
-- accepted: the contract entity writes that (with close_version 1, once)
-- in the same batch as the contract becoming active. `search` is
-- PostgreSQL's own full-text index of the title (weight A) and the
-- description (weight B), stemmed as English.
CREATE TABLE IF NOT EXISTS gigs (
  id            uuid        PRIMARY KEY,
  seq           bigserial   NOT NULL UNIQUE,  -- list order and cursor (newest first)
  client_id     uuid        NOT NULL,
  title         text        NOT NULL,
  description   text        NOT NULL,
  category      text        NOT NULL,
  budget_min    bigint      NOT NULL CHECK (budget_min > 0),
  budget_max    bigint      NOT NULL CHECK (budget_max >= budget_min),
  deadline      timestamptz,
  status        text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  contract_id   uuid,
  proposal_id   uuid,        -- the accepted proposal
  close_version bigint      NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL,
  search        tsvector GENERATED ALWAYS AS (
                  setweight(to_tsvector('english', title), 'A') ||
                  setweight(to_tsvector('english', description), 'B')) STORED
);
CREATE INDEX IF NOT EXISTS gigs_search ON gigs USING gin (search);
CREATE INDEX IF NOT EXISTS gigs_category ON gigs (category, seq DESC);
CREATE INDEX IF NOT EXISTS gigs_client ON gigs (client_id);

-- One proposal per hustler per gig.
CREATE TABLE IF NOT EXISTS proposals (
  id             uuid        PRIMARY KEY,
  gig_id         uuid        NOT NULL REFERENCES gigs (id) ON DELETE CASCADE,
  hustler_id     uuid        NOT NULL,
  cover_letter   text        NOT NULL,
  proposed_price bigint      NOT NULL CHECK (proposed_price > 0),
  delivery_days  integer     NOT NULL CHECK (delivery_days BETWEEN 1 AND 365),
  created_at     timestamptz NOT NULL,
  UNIQUE (gig_id, hustler_id)
);

-- A gig contract (actors/contract/): one per gig (its id is derived from
-- the gig's). 'opening' while the client's escrow is being locked and
-- 'void' if it could not be: neither is shown. `settling` names the escrow
-- move a decision asked for and that has not ended (a release or a
-- refund), so that activation finishes it after a crash.
CREATE TABLE IF NOT EXISTS contracts (
  id               uuid        PRIMARY KEY,
  gig_id           uuid        NOT NULL,
  proposal_id      uuid        NOT NULL,
  client_id        uuid        NOT NULL,
  hustler_id       uuid        NOT NULL,
  title            text        NOT NULL,
  agreed_price     bigint      NOT NULL CHECK (agreed_price > 0),
  delivery_days    integer     NOT NULL,
  status           text        NOT NULL CHECK (status IN ('opening', 'void', 'active', 'delivered',
                                                          'disputed', 'completed', 'refunded')),
  settling         text        NOT NULL DEFAULT '' CHECK (settling IN ('', 'lock', 'release', 'refund')),
  settle_by        uuid,        -- who asked for the move `settling` names (NULL: the deadline)
  delivery_note    text,
  dispute_reason   text,
  disputed_by      uuid,
  resolution       text        CHECK (resolution IN ('hustler', 'client', 'auto')),
  delivered_at     timestamptz,
  auto_release_at  timestamptz,
  completed_at     timestamptz,
  client_reviewed  boolean     NOT NULL DEFAULT false,
  hustler_reviewed boolean     NOT NULL DEFAULT false,
  version          bigint      NOT NULL,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS contracts_client ON contracts (client_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS contracts_hustler ON contracts (hustler_id, created_at DESC, id DESC);
-- The contract sweep: deadlines passed, moves left pending.
CREATE INDEX IF NOT EXISTS contracts_due ON contracts (auto_release_at) WHERE status = 'delivered';
CREATE INDEX IF NOT EXISTS contracts_unsettled ON contracts (updated_at)
  WHERE settling <> '' OR status = 'opening';

-- One review per party per contract, after it ended.
CREATE TABLE IF NOT EXISTS reviews (
  contract_id uuid        NOT NULL,
  reviewer_id uuid        NOT NULL,
  id          uuid        NOT NULL UNIQUE,
  reviewee_id uuid        NOT NULL,
  rating      integer     NOT NULL CHECK (rating BETWEEN 1 AND 5),
  text        text,
  created_at  timestamptz NOT NULL,
  PRIMARY KEY (contract_id, reviewer_id)
);
CREATE INDEX IF NOT EXISTS reviews_reviewee ON reviews (reviewee_id);
