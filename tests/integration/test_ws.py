"""WebSocket end to end with a real client over 127.0.0.1: the token decides
before the upgrade, ping/pong, subscriptions authorized by the entities'
rules, wallet.updated events in version order on both parties' sessions,
resume with since_seq, and bad frames closed with the right code."""

import json
import os
import random
import select
import socket
import time
import unittest

from harness import NodeTestCase, json_body, main, request, wait_for
from wsclient import Closed, WsClient
from test_wallet import NODE_ENV, call, register


def wallet_id(port, token):
    return json_body(call(port, "GET", "/api/v1/wallet", token)[2])["id"]


def metric(port, name):
    text = request(port, "GET", "/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


class WebSocketTest(NodeTestCase):
    # A small send queue, so that a client that stops reading fills it soon.
    node_env = dict(NODE_ENV, GIGMESH_ENTITY_IDLE_TIMEOUT_MS="60000", GIGMESH_WS_SEND_QUEUE="8")

    def setUp(self):
        self.port = self.node.port
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def connect(self, token, **kw):
        c = WsClient(self.port, token, **kw)
        self.clients.append(c)
        return c

    def test_an_invalid_token_is_refused_before_the_upgrade(self):
        for token in (None, "not.a.token"):
            c = self.connect(token)
            self.assertEqual(c.status, 401, c.head)

    def test_a_plain_get_of_the_endpoint_is_told_to_upgrade(self):
        status, headers, data = request(self.port, "GET", "/ws")
        self.assertEqual(status, 426, data)
        self.assertEqual(headers.get("upgrade"), "websocket")
        self.assertEqual(headers.get("content-type"), "application/problem+json")
        self.assertEqual(json_body(data)["status"], 426)

    def test_ping_pong_with_the_token_in_the_header_or_the_query(self):
        _, token = register(self.port)
        for query in (False, True):
            c = self.connect(token, query_token=query)
            self.assertEqual(c.status, 101, c.head)
            c.send({"op": "ping", "id": "x"})
            self.assertEqual(c.recv(), {"op": "pong", "id": "x"})

    def test_deposit_and_transfer_reach_both_parties_in_version_order(self):
        a, ta = register(self.port)
        b, tb = register(self.port)
        wa, wb = wallet_id(self.port, ta), wallet_id(self.port, tb)
        ca, cb = self.connect(ta), self.connect(tb)
        ca.send({"op": "subscribe", "topic": "wallet:" + wa})
        cb.send({"op": "subscribe", "topic": "wallet:" + wb})
        self.assertEqual(ca.recv()["op"], "subscribed")
        self.assertEqual(cb.recv()["op"], "subscribed")
        # Each change's events arrive within 100 ms of its answer (the event
        # is published when the change commits, as the 201 goes out).
        self.assertEqual(call(self.port, "POST", "/api/v1/wallet/deposit", ta, {"amount": 500})[0], 201)
        answered = time.time()
        e1 = ca.recv()
        lags = [time.time() - answered]
        self.assertEqual(call(self.port, "POST", "/api/v1/wallet/transfer", ta,
                              {"to_user_id": b, "amount": 200})[0], 201)
        answered = time.time()
        e2 = ca.recv()
        lags.append(time.time() - answered)
        eb = cb.recv()
        lags.append(time.time() - answered)
        self.assertLess(max(lags), 0.1, lags)
        self.assertEqual([e["event"] for e in (e1, e2, eb)], ["wallet.updated"] * 3)
        self.assertEqual((e1["data"]["balance"], e2["data"]["balance"]), (500, 300))
        self.assertLess(e1["seq"], e2["seq"])
        self.assertEqual(e2["data"]["version"], e2["seq"])
        self.assertEqual(eb["data"]["balance"], 200)

    def test_resume_with_since_seq_gets_exactly_the_missed_events(self):
        _, token = register(self.port)
        wid = wallet_id(self.port, token)
        c = self.connect(token)
        c.send({"op": "subscribe", "topic": "wallet:" + wid})
        self.assertEqual(c.recv()["seq"], 0)
        call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 1})
        last = c.recv()["seq"]
        c.close()
        for amount in (2, 3):
            call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": amount})
        c2 = self.connect(token)
        c2.send({"op": "subscribe", "topic": "wallet:" + wid, "since_seq": last})
        sub = c2.recv()
        self.assertEqual(sub["op"], "subscribed")
        missed = [c2.recv(), c2.recv()]
        self.assertEqual([m["seq"] for m in missed], [last + 1, last + 2])
        call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 4})
        self.assertEqual(c2.recv()["seq"], last + 3)  # then live, no gap, no repeat

    def test_other_peoples_topics_are_refused_with_an_error(self):
        a, ta = register(self.port)
        b, tb = register(self.port)
        c = self.connect(ta)
        for topic, status in (("wallet:" + wallet_id(self.port, tb), 403), ("user:" + b, 403),
                              ("system:inspect", 403), ("nonsense", 400), ("room:1", 404)):
            c.send({"op": "subscribe", "topic": topic, "id": topic})
            reply = c.recv()
            self.assertEqual((reply["op"], reply["status"], reply["id"]), ("error", status, topic))
        c.send({"op": "subscribe", "topic": "user:" + a})
        self.assertEqual(c.recv()["op"], "subscribed")

    def test_bad_frames_get_errors_or_the_right_close_codes(self):
        _, token = register(self.port)
        c = self.connect(token)
        c.send_frame(1, b"{not json")
        self.assertEqual((c.recv()["op"]), "error")
        c.send({"op": "dance"})
        self.assertEqual(c.recv()["status"], 400)
        c.send({"op": "send", "topic": "room:1", "text": "hi", "id": "c1"})
        self.assertEqual(c.recv()["status"], 404)
        c.send_frame(2, b"\x00\x01")
        with self.assertRaises(Closed) as closed:
            c.recv()
        self.assertEqual(closed.exception.code, 1003)
        big = self.connect(token)
        big.send_frame(1, b"[" + b" " * (70 << 10) + b"]")
        with self.assertRaises(Closed) as closed:
            big.recv()
        self.assertEqual(closed.exception.code, 1009)
        # A 1 MiB frame: the node keeps reading (and discarding) after its
        # close, so the client finishes sending and reads the 1009, never
        # a reset (RFC 6455's closing handshake).
        for _ in range(5):
            huge = self.connect(token)
            huge.send_frame(1, b"[" + b" " * (1 << 20) + b"]")
            with self.assertRaises(Closed) as closed:
                huge.recv()
            self.assertEqual(closed.exception.code, 1009)
        bad_utf8 = self.connect(token)
        bad_utf8.send_frame(1, b'{"op":"ping","id":"\xff"}')
        with self.assertRaises(Closed) as closed:
            bad_utf8.recv()
        self.assertEqual(closed.exception.code, 1007)
        # The node is still healthy.
        self.assertEqual(request(self.port, "GET", "/healthz")[0], 200)

    def test_ops_are_answered_in_the_order_sent(self):
        # A subscribe waits for the wallet and the hub; an unsubscribe sent
        # right after it must not overtake it (it did: the socket ended
        # subscribed after subscribe, unsubscribe, subscribe, unsubscribe).
        _, token = register(self.port)
        topic = "wallet:" + wallet_id(self.port, token)
        c = self.connect(token)
        for _ in range(3):  # this class's send queue holds 8 frames
            c.send({"op": "subscribe", "topic": topic})
            c.send({"op": "unsubscribe", "topic": topic})
        c.send({"op": "ping", "id": "end"})
        ops = [c.recv()["op"] for _ in range(7)]
        self.assertEqual(ops, ["subscribed", "unsubscribed"] * 3 + ["pong"])
        self.assertEqual(call(self.port, "POST", "/api/v1/wallet/deposit", token,
                              {"amount": 5})[0], 201)
        time.sleep(0.2)
        c.send({"op": "ping", "id": "after"})
        self.assertEqual(c.recv(), {"op": "pong", "id": "after"}, "no event after unsubscribing")

    def test_a_malformed_op_gets_an_error_and_the_session_goes_on(self):
        _, token = register(self.port)
        wid = wallet_id(self.port, token)
        c = self.connect(token)
        c.send({"op": "subscribe", "topic": "wallet:" + wid})
        self.assertEqual(c.recv()["op"], "subscribed")
        # A topic that is not a string once killed the session's actor: no
        # answer, no close, no more events.
        for bad in (5, None, True, [], {}, 1.5):
            c.send({"op": "unsubscribe", "topic": bad, "id": 1})
            reply = c.recv()
            self.assertEqual((reply["op"], reply["status"], reply["id"]), ("error", 400, 1), bad)
        c.send_frame(1, b'{"op":"ping","op":"subscribe"}')  # a name twice, as REST refuses
        reply = c.recv()
        self.assertEqual(reply["status"], 400)
        self.assertIn("more than once", reply["detail"])
        self.assertEqual(call(self.port, "POST", "/api/v1/wallet/deposit", token,
                              {"amount": 5})[0], 201)
        self.assertEqual(c.recv()["event"], "wallet.updated")
        # An id in capitals names the same topic (REST takes it too).
        c.send({"op": "unsubscribe", "topic": "wallet:" + wid.upper()})
        self.assertEqual(c.recv(), {"op": "unsubscribed", "topic": "wallet:" + wid})
        c.send({"op": "subscribe", "topic": "wallet:" + wid.upper()})
        reply = c.recv()
        self.assertEqual((reply["op"], reply["topic"]), ("subscribed", "wallet:" + wid))

    def test_handshake_refusals_are_problem_documents(self):
        _, token = register(self.port)
        good = {"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}

        def upgrade(fields=None):
            lines = ["GET /ws HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
                     "Connection: Upgrade", "Authorization: Bearer " + token]
            lines += ["%s: %s" % kv for kv in dict(good, **(fields or {})).items()
                      if kv[1] is not None]
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
                out = b""
                while b"\r\n\r\n" not in out:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    out += chunk
                if out.startswith(b"HTTP/1.1 101"):
                    return out
                s.settimeout(2)
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        out += chunk
                except socket.timeout:
                    pass
                return out

        cases = (({"Sec-WebSocket-Version": "8"}, 426), ({"Sec-WebSocket-Version": None}, 400),
                 ({"Sec-WebSocket-Key": None}, 400), ({"Sec-WebSocket-Key": "abc"}, 400))
        for fields, status in cases:
            out = upgrade(fields)
            head, _, body = out.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 %d" % status), (fields, out))
            self.assertIn(b"application/problem+json", head)
            self.assertIn(b"X-Request-Id", head)
            self.assertEqual(json.loads(body)["status"], status)
            if status == 426:
                self.assertIn(b"Sec-WebSocket-Version: 13", head)
        out = upgrade()
        self.assertTrue(out.startswith(b"HTTP/1.1 101"), out)
        self.assertIn(b"X-Request-Id", out)

    def test_a_client_that_stops_reading_is_closed_when_its_queue_is_full(self):
        _, token = register(self.port)
        wid = wallet_id(self.port, token)
        sessions_before = metric(self.port, "gigmesh_ws_sessions")
        closes_before = metric(self.port, "gigmesh_ws_slow_consumer_closes_total")
        slow = self.connect(token, rcvbuf=4096)
        slow.send({"op": "subscribe", "topic": "wallet:" + wid})
        self.assertEqual(slow.recv()["op"], "subscribed")
        # Stop reading; publish until the node gives up on this client
        # (bounded in count and time).
        deadline = time.time() + 60
        for i in range(20000):
            call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 1})
            if i % 50 == 0 and metric(self.port, "gigmesh_ws_slow_consumer_closes_total") > closes_before:
                break
            if time.time() > deadline:
                break
        self.assertGreater(metric(self.port, "gigmesh_ws_slow_consumer_closes_total"), closes_before)
        # What the kernel still held arrives, then the close (1008).
        with self.assertRaises(Closed) as closed:
            while True:
                slow.recv()
        self.assertIn(closed.exception.code, (1008, None))
        self.assertTrue(wait_for(
            lambda: metric(self.port, "gigmesh_ws_sessions") <= sessions_before, 10, 0.1))
        self.assertEqual(request(self.port, "GET", "/healthz")[0], 200)

    def test_a_token_that_expires_during_a_session_closes_it(self):
        import test_auth
        uid, _ = register(self.port)
        exp = int(time.time()) + 2
        token = test_auth.forge({"sub": uid, "role": "rider", "iat": exp - 2, "exp": exp},
                                secret=NODE_ENV["GIGMESH_JWT_SECRET"])
        c = self.connect(token)
        self.assertEqual(c.status, 101)
        c.sock.settimeout(5)
        error = c.recv()
        self.assertEqual((error["op"], error["status"]), ("error", 401))
        with self.assertRaises(Closed) as closed:
            c.recv()
        self.assertEqual(closed.exception.code, 1008)


def still_open_at(socks, deadline):
    """Reads (and drops) from every socket until its peer closes it; returns
    those still open at `deadline`."""
    open_ = set(socks)
    while open_ and time.time() < deadline:
        ready, _, _ = select.select(list(open_), [], [], max(0.0, deadline - time.time()))
        for s in ready:
            try:
                if not s.recv(65536):
                    open_.discard(s)
            except OSError:
                open_.discard(s)  # reset
    return open_


class HalfOpenTest(NodeTestCase):
    """Short deadlines, so that what never finishes is ended soon."""
    node_env = dict(NODE_ENV, GIGMESH_WS_IDLE_TIMEOUT_MS="1500", GIGMESH_HTTP_READ_TIMEOUT_MS="1000")

    def test_half_open_connections_and_garbage_leave_the_node_healthy(self):
        port = self.node.port
        _, token = register(port)
        ws_before = metric(port, "gigmesh_ws_sessions")
        http_before = metric(port, "gigmesh_http_connections")
        rng = random.Random(7)
        socks = []
        try:
            for i in range(40):
                # An upgrade request cut off before its blank line.
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
                socks.append(s)
                # Upgraded, then silent: never a frame, never a pong.
                socks.append(WsClient(port, token).sock)
                # Upgraded, then half a frame and silence.
                c = WsClient(port, token)
                c.sock.sendall(bytes([0x81, 0x80 | 100]) + os.urandom(4) + b"x" * 10)
                socks.append(c.sock)
                # Upgraded, then the client's side shut without a close frame.
                c = WsClient(port, token)
                c.sock.shutdown(socket.SHUT_WR)
                socks.append(c.sock)
                # Upgraded, then random bytes.
                c = WsClient(port, token)
                c.sock.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000))))
                socks.append(c.sock)
            self.assertGreater(metric(port, "gigmesh_ws_sessions"), ws_before)
            # A well-behaved client is served meanwhile.
            good = WsClient(port, token)
            good.send({"op": "ping", "id": "ok"})
            self.assertEqual(good.recv(), {"op": "pong", "id": "ok"})
            good.close()
            self.assertEqual(request(port, "GET", "/healthz")[0], 200)
            # The node ends every one of them by itself within its deadlines.
            still_open = still_open_at(socks, time.time() + 10)
            self.assertEqual(len(still_open), 0, "%d of %d still open" % (len(still_open), len(socks)))
        finally:
            for s in socks:
                s.close()
        self.assertTrue(wait_for(lambda: metric(port, "gigmesh_ws_sessions") <= ws_before, 10, 0.1))
        self.assertTrue(wait_for(
            lambda: metric(port, "gigmesh_http_connections") <= http_before + 1, 10, 0.1))
        self.assertEqual(request(port, "GET", "/healthz")[0], 200)
        fresh = WsClient(port, token)
        fresh.send({"op": "ping", "id": "after"})
        self.assertEqual(fresh.recv(), {"op": "pong", "id": "after"})
        fresh.close()


if __name__ == "__main__":
    main()
