-- Nodes of the cluster, one row per node id: written at start and by the
-- node's heartbeat, read by the admin API and, later, by cluster membership.
CREATE TABLE nodes (
  node_id        text        PRIMARY KEY,
  address        text        NOT NULL,
  incarnation    bigint      NOT NULL,
  started_at     timestamptz NOT NULL,
  last_heartbeat timestamptz NOT NULL,
  status         text        NOT NULL DEFAULT 'up'
                 CHECK (status IN ('up', 'leaving', 'down'))
);
