"""Readiness follows PostgreSQL: stopping it turns /readyz into 503 within
seconds, starting it again turns it back to 200 without restarting the node.
Redis going away shows in the details but does not make the node unready;
both clients reconnect by themselves."""

import time
import unittest

from harness import Node, PgServer, RedisServer, json_body, main, wait_for


class ReadinessTest(unittest.TestCase):
    def setUp(self):
        # Cleanups run even if a later step of setUp fails.
        self.pg = PgServer()
        self.addCleanup(self.pg.cleanup)
        self.pg.start()
        self.redis = RedisServer()
        self.addCleanup(self.redis.cleanup)
        self.redis.start()
        self.node = Node(pg_url=self.pg.url, redis_url=self.redis.url)
        self.addCleanup(lambda: self.node.cleanup())
        self.node.start()

    def tearDown(self):
        self.assertEqual(self.node.stop(), 0)

    def readyz(self):
        status, _, body = self.node.get("/readyz")
        return status, (json_body(body) if body else {})

    def test_readyz_follows_postgres_down_and_up(self):
        self.node.wait_ready(30)
        self.pg.stop()
        t0 = time.monotonic()
        self.assertTrue(wait_for(lambda: self.readyz()[0] == 503, 10, 0.1),
                        "readyz still 200 with PostgreSQL stopped")
        took = time.monotonic() - t0
        status, doc = self.readyz()
        self.assertEqual(doc["status"], 503)
        self.assertFalse(doc["checks"]["postgres"]["ok"])
        self.assertTrue(doc["checks"]["postgres"]["error"])
        print("readyz turned 503 %.2f s after PostgreSQL stopped" % took)
        self.pg.start()
        t0 = time.monotonic()
        self.assertTrue(wait_for(lambda: self.readyz()[0] == 200, 15, 0.1),
                        "readyz not back to 200 after PostgreSQL restarted")
        print("readyz back to 200 %.2f s after PostgreSQL restarted" % (time.monotonic() - t0))
        self.assertEqual(self.node.proc.poll(), None)

    def test_redis_down_shows_in_details_and_recovers(self):
        self.node.wait_ready(30)
        self.redis.stop()
        self.assertTrue(wait_for(lambda: not self.readyz()[1]["checks"]["redis"]["ok"], 10, 0.1))
        self.assertEqual(self.readyz()[0], 200)  # PostgreSQL decides readiness
        self.redis.start()
        self.assertTrue(wait_for(lambda: self.readyz()[1]["checks"]["redis"]["ok"], 10, 0.1))

    def test_a_node_started_before_postgres_becomes_ready_when_it_appears(self):
        self.node.wait_ready(30)
        self.assertEqual(self.node.stop(), 0)
        self.node.cleanup()
        self.pg.stop()
        self.node = Node(pg_url=self.pg.url, redis_url=self.redis.url).start()
        time.sleep(0.5)
        self.assertEqual(self.readyz()[0], 503)
        self.pg.start()
        self.node.wait_ready(15)


if __name__ == "__main__":
    main()
