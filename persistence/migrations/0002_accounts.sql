-- Accounts: users, their wallets (created with the user, balance 0), and
-- refresh tokens (stored hashed, grouped in families for reuse detection).
CREATE TABLE users (
  id            uuid        PRIMARY KEY,
  phone         text        NOT NULL UNIQUE,
  email         text,
  full_name     text        NOT NULL,
  password_hash text        NOT NULL,
  role          text        NOT NULL
                CHECK (role IN ('rider', 'hustler', 'client', 'dispatcher', 'admin')),
  bio           text        NOT NULL DEFAULT '',
  location      text,
  version       bigint      NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique regardless of case.
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE wallets (
  id             uuid        PRIMARY KEY,
  user_id        uuid        NOT NULL UNIQUE REFERENCES users (id),
  balance        bigint      NOT NULL DEFAULT 0 CHECK (balance >= 0),
  escrow_balance bigint      NOT NULL DEFAULT 0 CHECK (escrow_balance >= 0),
  currency       text        NOT NULL DEFAULT 'KES',
  version        bigint      NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE refresh_tokens (
  token_hash text        PRIMARY KEY,  -- SHA-256 of the token, hex
  family_id  uuid        NOT NULL,
  user_id    uuid        NOT NULL REFERENCES users (id),
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at    timestamptz,               -- rotated: presenting it again is reuse
  revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
