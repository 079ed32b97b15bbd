-- Cluster membership and fencing (docs/architecture.md, Cluster).
--
-- Each node's row says where its middleman listens (cluster_address, empty
-- for a node that runs alone) and, with every heartbeat, how many entities
-- of each kind it holds (live). A node is a member while its row is 'up'
-- with its incarnation; the others declare it 'down' when its heartbeat
-- stops, and from that commit on gm_fence() refuses its writes.
ALTER TABLE nodes ADD COLUMN cluster_address text NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN live jsonb NOT NULL DEFAULT '{}';
ALTER TABLE nodes ADD COLUMN down_at timestamptz;

-- Rises with every change of who is up: nodes tag their view with it.
CREATE TABLE cluster_epoch (
  one   boolean PRIMARY KEY DEFAULT true CHECK (one),
  epoch bigint  NOT NULL
);
INSERT INTO cluster_epoch VALUES (true, 1);

-- The journal's first statement in every batch. FOR SHARE holds the row
-- until the batch commits: declaring the node down (an UPDATE of the row)
-- waits for that commit, and every batch after it sees 'down' and fails.
CREATE FUNCTION gm_fence(p_node text, p_incarnation bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM nodes
    WHERE node_id = p_node AND incarnation = p_incarnation AND status = 'up'
    FOR SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node % (incarnation %) is no longer a member of the cluster: its writes are fenced',
      p_node, p_incarnation USING ERRCODE = 'GM001';
  END IF;
END $$;
