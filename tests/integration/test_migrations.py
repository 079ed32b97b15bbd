"""Two nodes starting at once against an empty database: both become ready,
each migration is applied exactly once, both nodes register themselves."""

import unittest
import uuid

from harness import PG_URL, Node, main, psql


class MigrationsTest(unittest.TestCase):
    def test_two_nodes_starting_at_once_apply_migrations_once(self):
        name = "gm_mig_" + uuid.uuid4().hex[:10]
        psql(PG_URL, "CREATE DATABASE %s" % name)
        url = PG_URL.rsplit("/", 1)[0] + "/" + name
        nodes = [Node(pg_url=url, env={"GIGMESH_NODE_ID": "node-%d" % i}) for i in (1, 2)]
        try:
            for n in nodes:
                n.start()
            for n in nodes:
                n.wait_ready(30)
            rows = psql(url, "SELECT version, count(*) FROM schema_migrations GROUP BY version")
            self.assertTrue(rows)
            self.assertTrue(all(count == "1" for _, count in rows), rows)
            registered = psql(url, "SELECT node_id, status FROM nodes ORDER BY node_id")
            self.assertEqual(registered, [["node-1", "up"], ["node-2", "up"]])
            # A restart applies nothing twice.
            self.assertEqual(nodes[0].stop(), 0)
            nodes[0].start().wait_ready(30)
            again = psql(url, "SELECT count(*) FROM schema_migrations")
            self.assertEqual(again[0][0], str(len(rows)))
        finally:
            for n in nodes:
                n.stop()
                n.cleanup()
            psql(PG_URL, "DROP DATABASE %s" % name)


if __name__ == "__main__":
    main()
