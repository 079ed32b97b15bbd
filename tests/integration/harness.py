"""Test harness: real gigmesh processes, real PostgreSQL and Redis servers,
plain HTTP clients over 127.0.0.1. Everything started here is stopped by PID.

The shared test servers come from scripts/test (GIGMESH_TEST_PG_URL,
GIGMESH_TEST_REDIS_URL); tests that stop a server start their own."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get("GIGMESH_BIN", "")
PG_URL = os.environ.get("GIGMESH_TEST_PG_URL", "")
REDIS_URL = os.environ.get("GIGMESH_TEST_REDIS_URL", "")
DATA = os.environ.get("GIGMESH_TEST_DATA", tempfile.gettempdir())
PGBIN = os.environ.get("GIGMESH_PGBIN", "/usr/lib/postgresql/15/bin")


def require_env():
    missing = [n for n, v in (("GIGMESH_BIN", BIN), ("GIGMESH_TEST_PG_URL", PG_URL),
                              ("GIGMESH_TEST_REDIS_URL", REDIS_URL)) if not v]
    if missing:
        sys.exit("missing %s: run the tests through scripts/test" % ", ".join(missing))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, interval=0.05):
    """Returns pred()'s first truthy value within timeout seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


class Node:
    """One gigmesh process on an ephemeral port, its log in a file."""

    def __init__(self, pg_url=None, redis_url=None, args=(), env=None, preexec=None):
        self.preexec = preexec  # run in the child before exec (e.g. resource limits)
        self.dir = tempfile.mkdtemp(prefix="node-", dir=DATA)
        self.port_file = os.path.join(self.dir, "port")
        self.log_path = os.path.join(self.dir, "node.log")
        self.pg_url = pg_url or PG_URL
        self.redis_url = redis_url or REDIS_URL
        self.args = list(args)
        self.extra_env = env or {}
        self.proc = None
        self.port = None

    def start(self, timeout=20):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIGMESH_")}
        env.update({
            "GIGMESH_PG_URL": self.pg_url,
            "GIGMESH_REDIS_URL": self.redis_url,
            "GIGMESH_HTTP_HOST": "127.0.0.1",
            "GIGMESH_HTTP_PORT": "0",
            "GIGMESH_PORT_FILE": self.port_file,
            "GIGMESH_HEALTH_INTERVAL_MS": "200",
        })
        env.update(self.extra_env)
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)  # a restart must not read the old port
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN] + self.args, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=self.preexec)
        ok = wait_for(lambda: os.path.exists(self.port_file) or self.proc.poll() is not None,
                      timeout)
        if not ok or self.proc.poll() is not None:
            raise RuntimeError("node did not start:\n" + self.read_log())
        with open(self.port_file) as f:
            self.port = int(f.read().strip())
        return self

    def wait_ready(self, timeout=30):
        if not wait_for(lambda: self.get("/readyz")[0] == 200, timeout, 0.1):
            raise RuntimeError("node not ready:\n" + self.read_log())
        return self

    def get(self, path, headers=None):
        return request(self.port, "GET", path, headers=headers)

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Returns the exit code after sending sig and waiting."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def cleanup(self):
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


class NodeTestCase(unittest.TestCase):
    """Tests sharing one node, started with `node_env`; it must exit 0 at
    the end, and is cleaned up even if it never becomes ready."""

    node_env = {}

    @classmethod
    def setUpClass(cls):
        cls.node = Node(env=cls.node_env)
        # Runs even if setUpClass fails (then tearDownClass does not).
        cls.addClassCleanup(cls.node.cleanup)
        cls.node.start().wait_ready()

    @classmethod
    def tearDownClass(cls):
        code = cls.node.stop()
        cls.node_log = cls.node.read_log()
        assert code == 0, "node exited %r" % code


def request(port, method, path, body=None, headers=None, timeout=10):
    """Returns (status, headers dict lower-cased, body bytes) or (None, {}, b'')."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        conn.close()
        return resp.status, hdrs, data
    except (OSError, http.client.HTTPException):
        return None, {}, b""


def raw_exchange(port, payload, timeout=5, half_close=False):
    """Sends raw bytes and returns everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
        except ConnectionResetError:
            chunks.append(b"<RESET>")
        return b"".join(chunks)


def psql(url, sql):
    """Returns the rows of sql as a list of lists of strings (psql -A -t)."""
    out = subprocess.run(["psql", url, "-AtqX", "-F", "\t", "-c", sql], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    return [line.split("\t") for line in out.splitlines() if line]


class PgServer:
    """A private PostgreSQL that a test may stop and start again."""

    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="pg-", dir=DATA)
        shutil.chown(self.data, "postgres", "postgres")
        self.port = free_port()
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port
        self._as_postgres("%s/initdb -D %s -U postgres --auth=trust --no-locale -E UTF8"
                          % (PGBIN, self.data))

    def _as_postgres(self, cmd):
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", cmd], check=True,
                       capture_output=True, timeout=120)

    def start(self):
        self._as_postgres(
            "%s/pg_ctl -D %s -l %s/log -w -t 60 -o \"-p %d -c unix_socket_directories='' "
            "-c listen_addresses=127.0.0.1\" start" % (PGBIN, self.data, self.data, self.port))
        return self

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._as_postgres("%s/pg_ctl -D %s -m fast -w -t 30 stop" % (PGBIN, self.data))

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.data, ignore_errors=True)


class RedisServer:
    """A private Redis that a test may stop and start again."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=DATA)
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(lambda: _port_open(self.port), 10):
            raise RuntimeError("redis did not start")
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def json_body(data):
    return json.loads(data.decode("utf-8"))


def main():
    require_env()
    unittest.main(verbosity=2)
