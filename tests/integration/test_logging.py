"""Logs: JSON lines in production mode and readable lines in dev, the
request id on lines about a request, and no secret anywhere."""

import json
import unittest

from harness import Node, main, raw_exchange, request

SECRET = "s3cr3t-value-that-must-never-be-logged-0123456789"


class LoggingTest(unittest.TestCase):
    def run_node(self, mode):
        env = {"GIGMESH_MODE": mode, "GIGMESH_JWT_SECRET": SECRET,
               "GIGMESH_LOG_LEVEL": "debug"}
        node = Node(env=env)
        self.addCleanup(node.cleanup)  # even if the node never becomes ready
        node.start().wait_ready()
        # A rejected request is logged with its request id.
        out = raw_exchange(node.port, b"BROKEN\r\n\r\n")
        rid = [l.split(b":", 1)[1].strip().decode() for l in out.split(b"\r\n")
               if l.lower().startswith(b"x-request-id:")][0]
        request(node.port, "GET", "/healthz")
        self.assertEqual(node.stop(), 0)
        log = node.read_log()
        node.cleanup()
        self.assertNotIn(SECRET, log)
        return log, rid

    def test_production_logs_are_json_lines_with_request_ids(self):
        log, rid = self.run_node("production")
        lines = [json.loads(l) for l in log.splitlines() if l.strip()]
        self.assertTrue(lines)
        for l in lines:
            for field in ("ts", "level", "logger", "msg"):
                self.assertIn(field, l)
        about = [l for l in lines if l.get("request_id") == rid]
        self.assertTrue(about, "no line carries request id %s" % rid)
        self.assertIn("rejected", about[0]["msg"])

    def test_dev_logs_are_readable_lines_with_request_ids(self):
        log, rid = self.run_node("dev")
        self.assertFalse(log.lstrip().startswith("{"))
        self.assertIn("[req %s] rejected" % rid, log)


if __name__ == "__main__":
    main()
