"""Bad configuration stops the node at start with one clear line and a
non-zero exit; a port already taken is named in the error."""

import os
import socket
import subprocess
import tempfile
import unittest

from harness import BIN, DATA, PG_URL, REDIS_URL, Node, main


def run(args=(), env=None, timeout=30):
    full = {k: v for k, v in os.environ.items() if not k.startswith("GIGMESH_")}
    full.update(env or {})
    return subprocess.run([BIN] + list(args), env=full, capture_output=True, text=True,
                          timeout=timeout)


class ConfigTest(unittest.TestCase):
    def assert_refused(self, proc, *words):
        self.assertEqual(proc.returncode, 2, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        for w in words:
            self.assertIn(w, lines[0])

    def test_port_out_of_range(self):
        self.assert_refused(run(env={"GIGMESH_HTTP_PORT": "70000"}), "http_port", "out of range")
        self.assert_refused(run(["--http-port=-5"]), "http_port")

    def test_unreadable_config_file(self):
        self.assert_refused(run(["--config=/nonexistent/x.conf"]), "cannot be read")

    def test_missing_or_short_secret_in_production(self):
        self.assert_refused(run(["--mode=production"]), "jwt_secret")
        self.assert_refused(run(["--mode=production"], {"GIGMESH_JWT_SECRET": "short"}),
                            "at least 32")

    def test_unknown_key_in_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", dir=DATA, delete=False) as f:
            f.write("http_port = 1234\nno_such_key = 1\n")
        try:
            self.assert_refused(run(["--config=" + f.name]), "no_such_key", ":2")
        finally:
            os.unlink(f.name)

    def test_example_config_is_valid(self):
        example = os.path.join(os.path.dirname(__file__), "..", "..", "config",
                               "gigmesh.example.conf")
        node = Node(args=["--config=" + example])
        try:
            node.start().wait_ready()
        finally:
            self.assertEqual(node.stop(), 0)
            node.cleanup()

    def test_help_lists_every_key_with_its_variable(self):
        proc = run(["--help"])
        self.assertEqual(proc.returncode, 0)
        for key in ("GIGMESH_HTTP_PORT", "GIGMESH_PG_URL", "GIGMESH_REDIS_URL"):
            self.assertIn(key, proc.stdout)

    def test_port_in_use_is_named_and_the_node_exits(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            proc = run(env={"GIGMESH_HTTP_HOST": "127.0.0.1", "GIGMESH_HTTP_PORT": str(port),
                            "GIGMESH_PG_URL": PG_URL, "GIGMESH_REDIS_URL": REDIS_URL,
                            "GIGMESH_SUPERVISOR_INTENSITY": "1"})
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("127.0.0.1:%d" % port, proc.stderr)


if __name__ == "__main__":
    main()
