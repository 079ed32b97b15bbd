-- What operators did to live actors (the console, the CLI, the admin API):
-- every passivate and kill, who asked, through what, and what came of it.
-- Written by the gateway's admin routes after the shard answered, before
-- the caller is answered.
CREATE TABLE IF NOT EXISTS admin_audit (
  id          uuid        PRIMARY KEY,
  at          timestamptz NOT NULL,
  user_id     uuid        NOT NULL,
  action      text        NOT NULL CHECK (action IN ('passivate', 'kill')),
  target_type text        NOT NULL,
  target_id   text        NOT NULL,
  via         text        NOT NULL,
  result      text        NOT NULL CHECK (result IN ('accepted', 'not_live', 'failed')),
  node_id     text        NOT NULL,
  detail      text
);
CREATE INDEX IF NOT EXISTS admin_audit_at ON admin_audit (at DESC, id);
