"""Read deadlines: idle keep-alive connections, requests that never finish
arriving, and clients that stop reading are closed after
http_read_timeout_ms, while a client waiting on a slow answer is not."""

import socket
import time
import unittest

from harness import NodeTestCase, main, request


def closed_within(sock, seconds):
    """Returns the seconds until the server closed sock, or None."""
    sock.settimeout(seconds)
    t0 = time.monotonic()
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return time.monotonic() - t0
    except socket.timeout:
        return None
    except ConnectionResetError:
        return time.monotonic() - t0


class DeadlineTest(NodeTestCase):
    node_env = {"GIGMESH_HTTP_READ_TIMEOUT_MS": "500"}

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.node.port), timeout=5)

    def test_an_idle_keep_alive_connection_is_closed(self):
        with self.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            took = closed_within(s, 5)  # reads the answer, then waits for the close
            self.assertIsNotNone(took, "idle connection was never closed")
            self.assertLess(took, 2.5)

    def test_a_request_that_never_finishes_is_cut_off(self):
        with self.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no blank line
            took = closed_within(s, 5)
            self.assertIsNotNone(took, "slow request was never cut off")
            self.assertLess(took, 2.5)

    def test_a_client_that_keeps_sending_slowly_is_cut_off(self):
        with self.connect() as s:
            t0 = time.monotonic()
            try:
                for ch in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100:
                    s.sendall(bytes([ch]))
                    time.sleep(0.1)
                closed = False
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            if not closed:
                closed = closed_within(s, 3) is not None
            self.assertTrue(closed)
            self.assertLess(time.monotonic() - t0, 4)

    def test_a_client_that_stops_reading_is_closed_and_the_node_stays_up(self):
        s = self.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # Far more pipelined answers than the socket buffers hold, never
        # read: the node's write stalls, and it must drop the connection.
        one = b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
        s.settimeout(0.5)
        sent = 0
        try:
            while sent < 20000:
                s.sendall(one * 100)
                sent += 100
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass  # the node stopped reading: its pipeline is full
        time.sleep(2.5)
        status, _, body = request(self.node.port, "GET", "/healthz")
        self.assertEqual(status, 200)
        # Drain what was buffered: the stream must end (the node closed it)
        # long before all the answers asked for could have arrived.
        s.settimeout(5)
        got, ended = 0, False
        give_up = time.monotonic() + 10
        try:
            while time.monotonic() < give_up:
                chunk = s.recv(1 << 20)
                if not chunk:
                    ended = True
                    break
                got += len(chunk)
        except ConnectionResetError:
            ended = True
        except socket.timeout:
            pass
        s.close()
        self.assertTrue(ended, "the node kept a stalled client's connection open")
        _, _, doc = request(self.node.port, "GET", "/api/openapi.json")
        self.assertLess(got, sent * len(doc))


if __name__ == "__main__":
    main()
