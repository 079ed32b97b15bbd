"""Chat rooms end to end, with a real node, PostgreSQL and WebSocket
clients: members and authorization, messages numbered 1..N without gaps
whichever way they are sent (REST or the WebSocket `send` op), history,
resume with since_seq from the hub's memory and from PostgreSQL (also after
a restart, and with messages arriving during the catch-up), read markers
and unread counts, text bounds, and kill -9 while messages flow."""

import json
import signal
import sys
import threading
import time
import unittest
import uuid

from harness import Node, json_body, main, psql, wait_for
from wsclient import Closed, WsClient
from test_wallet import NODE_ENV, call, fresh_database, login_admin, register, start_fresh_node


def new_room(test, port, token, name="general", member_ids=None):
    body = {"name": name}
    if member_ids is not None:
        body["member_ids"] = member_ids
    status, _, data = call(port, "POST", "/api/v1/rooms", token, body)
    test.assertEqual(status, 201, data)
    return json_body(data)


def post(port, token, room_id, text):
    status, _, data = call(port, "POST", "/api/v1/rooms/%s/messages" % room_id, token,
                           {"text": text})
    return status, json_body(data)


def history(port, token, room_id, query=""):
    status, _, data = call(port, "GET", "/api/v1/rooms/%s/messages%s" % (room_id, query), token)
    return status, json_body(data)


def all_history(test, port, token, room_id):
    """Every message of the room, oldest first, paging with before_seq."""
    out, query = [], "?limit=200"
    while True:
        status, doc = history(port, token, room_id, query)
        test.assertEqual(status, 200, doc)
        out.extend(doc["items"])
        if doc["next_before_seq"] is None:
            return list(reversed(out))
        query = "?limit=200&before_seq=%d" % doc["next_before_seq"]


def events_until(test, client, room_id, count, timeout=30):
    """Reads frames until `count` message.received events of the room came;
    returns them (acks and other frames are skipped)."""
    got, deadline = [], time.time() + timeout
    while len(got) < count:
        test.assertLess(time.time(), deadline, "only %d of %d events came" % (len(got), count))
        m = client.recv()
        if m.get("event") == "message.received" and m.get("topic") == "room:" + room_id:
            got.append(m)
    return got


def subscribe(test, client, room_id, since=None):
    op = {"op": "subscribe", "topic": "room:" + room_id}
    if since is not None:
        op["since_seq"] = since
    client.send(op)
    reply = client.recv()
    test.assertEqual(reply.get("op"), "subscribed", reply)
    return reply


def send_many(test, client, room_id, texts):
    """Sends every text over the WebSocket at once, then reads the acks;
    returns {client id: seq}."""
    ids = []
    for t in texts:
        cid = uuid.uuid4().hex[:8]
        ids.append(cid)
        client.send({"op": "send", "topic": "room:" + room_id, "text": t, "id": cid})
    acks = {}
    while len(acks) < len(ids):
        m = client.recv()
        if m.get("op") == "ack":
            acks[m["id"]] = m["seq"]
        elif m.get("op") == "error":
            test.fail("send refused: %s" % m)
    test.assertEqual([acks[i] for i in ids], sorted(acks.values()),
                     "acks of one session come in the order it sent")
    return acks


class ChatTest(unittest.TestCase):
    start_node = start_fresh_node

    def setUp(self):
        self.node, self.url = self.start_node(GIGMESH_CHAT_MAX_TEXT="4000")
        self.port = self.node.port
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def ws(self, token):
        c = WsClient(self.node.port, token, timeout=15)
        self.assertEqual(c.status, 101, c.head)
        self.clients.append(c)
        return c

    def test_rooms_members_history_and_authorization_over_rest(self):
        a, ta = register(self.port)
        b, tb = register(self.port, "hustler")
        c, tc = register(self.port)
        out, tout = register(self.port)
        # Bad input: 400 for a wrong type, 422 for a broken rule.
        for body, status in (({"name": "x", "member_ids": "nope"}, 400),
                             ({"name": "x", "member_ids": ["not-a-uuid"]}, 422),
                             ({"name": "x", "member_ids": [str(uuid.uuid4())]}, 422),
                             ({"name": ""}, 422), ({"member_ids": [b]}, 422)):
            st, _, data = call(self.port, "POST", "/api/v1/rooms", ta, body)
            self.assertEqual(st, status, (body, data))
            self.assertEqual(json_body(data)["status"], status)
        # The creator first; invited members once each, in the order given.
        room = new_room(self, self.port, ta, "riders", [b, a, b.upper()])
        self.assertEqual(room["members"], [a, b])
        self.assertEqual(room["name"], "riders")
        rid = room["id"]
        st, _, data = call(self.port, "GET", "/api/v1/rooms/" + rid, tb)
        self.assertEqual(st, 200, data)
        self.assertEqual(json_body(data)["members"], [a, b])
        # An outsider sees nothing: 404 on every room route but join.
        for method, path, body in (("GET", "/api/v1/rooms/" + rid, None),
                                   ("GET", "/api/v1/rooms/%s/messages" % rid, None),
                                   ("POST", "/api/v1/rooms/%s/messages" % rid, {"text": "hi"}),
                                   ("POST", "/api/v1/rooms/%s/read" % rid, {"seq": 0}),
                                   ("GET", "/api/v1/rooms/" + str(uuid.uuid4()), None),
                                   ("GET", "/api/v1/rooms/nonsense", None)):
            st, _, data = call(self.port, method, path, tout, body)
            self.assertEqual(st, 404, (method, path, data))
            self.assertEqual(json_body(data)["status"], 404)
        # Messages: seq from 1, the reply is the message.
        st, m1 = post(self.port, ta, rid, "habari")
        self.assertEqual(st, 201, m1)
        self.assertEqual((m1["seq"], m1["sender_id"], m1["room_id"], m1["text"]),
                         (1, a, rid, "habari"))
        for i in range(2, 8):
            st, m = post(self.port, tb if i % 2 else ta, rid, "m%d" % i)
            self.assertEqual((st, m["seq"]), (201, i), m)
        # Join: then a member (a second join is harmless).
        for _ in range(2):
            st, _, data = call(self.port, "POST", "/api/v1/rooms/%s/join" % rid, tc)
            self.assertEqual(st, 200, data)
            self.assertEqual(json_body(data)["members"], [a, b, c])
        # History: newest first, paged with before_seq.
        st, page = history(self.port, tc, rid, "?limit=3")
        self.assertEqual(st, 200, page)
        self.assertEqual([m["seq"] for m in page["items"]], [7, 6, 5])
        st, page = history(self.port, tc, rid, "?limit=3&before_seq=%d" % page["next_before_seq"])
        self.assertEqual([m["seq"] for m in page["items"]], [4, 3, 2])
        st, page = history(self.port, tc, rid, "?before_seq=2")
        self.assertEqual(([m["seq"] for m in page["items"]], page["next_cursor"]), ([1], None))
        self.assertEqual(page["items"][0], m1)
        for q in ("?before_seq=0", "?before_seq=x", "?limit=0", "?before_seq=-3"):
            st, doc = history(self.port, tc, rid, q)
            self.assertEqual(st, 400, (q, doc))
        # Text: 1..4,000 characters (not bytes), valid, no U+0000, not blank.
        self.assertEqual(post(self.port, ta, rid, "\U0001F600" * 4000)[0], 201)
        for text in ("a" * 4001, "\U0001F600" * 4001, "", "   \n", "a\u0000b"):
            st, doc = post(self.port, ta, rid, text)
            self.assertEqual(st, 422, (text[:10], doc))
        st, _, data = call(self.port, "POST", "/api/v1/rooms/%s/messages" % rid, ta,
                           b'{"text": "\xff\xfe"}')
        self.assertEqual(st, 400, data)
        st, _, data = call(self.port, "POST", "/api/v1/rooms/%s/messages" % rid, ta,
                           {"text": 5})
        self.assertEqual(st, 400, data)

    def test_read_markers_and_my_rooms_with_unread_counts(self):
        a, ta = register(self.port)
        b, tb = register(self.port)
        r1 = new_room(self, self.port, ta, "one", [b])["id"]
        r2 = new_room(self, self.port, tb, "two", [a])["id"]
        for i in range(5):
            post(self.port, ta, r1, "a%d" % i)
        post(self.port, tb, r1, "b")
        for i in range(3):
            post(self.port, tb, r2, "b%d" % i)

        def mine(token):
            st, _, data = call(self.port, "GET", "/api/v1/rooms", token)
            self.assertEqual(st, 200, data)
            return {r["id"]: r for r in json_body(data)["items"]}

        # Your own messages are read: a has read r1 up to 5, b up to 6.
        ra, rb = mine(ta), mine(tb)
        self.assertEqual(set(ra), {r1, r2})
        self.assertEqual((ra[r1]["unread"], ra[r1]["last_seq"]), (1, 6))
        self.assertEqual(ra[r2]["unread"], 3)
        self.assertEqual(rb[r1]["unread"], 0)
        st, _, data = call(self.port, "POST", "/api/v1/rooms/%s/read" % r2, ta, {"seq": 2})
        self.assertEqual(st, 200, data)
        self.assertEqual(json_body(data), {"room_id": r2, "read_seq": 2, "last_seq": 3, "unread": 1})
        # Markers never move back; past the last message is refused.
        st, _, data = call(self.port, "POST", "/api/v1/rooms/%s/read" % r2, ta, {"seq": 1})
        self.assertEqual(json_body(data)["read_seq"], 2)
        st, _, data = call(self.port, "POST", "/api/v1/rooms/%s/read" % r2, ta, {"seq": 4})
        self.assertEqual(st, 422, data)
        self.assertEqual(mine(ta)[r2]["unread"], 1)
        st, _, data = call(self.port, "GET", "/api/v1/rooms/" + r2, ta)
        self.assertEqual((json_body(data)["read_seq"], json_body(data)["unread"]), (2, 1))
        # The markers outlive the room's passivation (400 ms idle) and a restart.
        time.sleep(1.5)
        self.node.stop()
        self.node.start().wait_ready()
        self.port = self.node.port
        ra = mine(ta)
        self.assertEqual((ra[r1]["unread"], ra[r2]["unread"]), (1, 1))
        self.assertEqual(mine(tb)[r1]["unread"], 0)

    def test_three_members_over_websocket_and_rest_at_once_see_one_order(self):
        users = [register(self.port) for _ in range(3)]
        rid = new_room(self, self.port, users[0][1], "trio", [u for u, _ in users[1:]])["id"]
        readers = [self.ws(t) for _, t in users]
        senders = [self.ws(t) for _, t in users]
        for r in readers:
            self.assertEqual(subscribe(self, r, rid)["seq"], 0)
        per_way = 40
        total = 3 * 2 * per_way
        seqs, lock, errors = {}, threading.Lock(), []

        def over_ws(i):
            try:
                texts = ["ws-%d-%d" % (i, k) for k in range(per_way)]
                acks = send_many(self, senders[i], rid, texts)
                with lock:
                    for t, seq in zip(texts, sorted(acks.values())):
                        seqs[t] = seq
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        def over_rest(i):
            try:
                for k in range(per_way):
                    text = "rest-%d-%d" % (i, k)
                    st, m = post(self.port, users[i][1], rid, text)
                    assert st == 201, m
                    with lock:
                        seqs[text] = m["seq"]
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=f, args=(i,)) for i in range(3)
                   for f in (over_ws, over_rest)]
        for t in threads:
            t.start()
        seen = [events_until(self, r, rid, total) for r in readers]
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        # Every member saw every message once, in one order: seq 1..N.
        orders = [[(e["seq"], e["data"]["text"]) for e in s] for s in seen]
        self.assertEqual([s for s, _ in orders[0]], list(range(1, total + 1)))
        self.assertEqual(orders[0], orders[1])
        self.assertEqual(orders[0], orders[2])
        # The ack, the REST reply and the event of a message carry one seq.
        self.assertEqual({text: seq for seq, text in orders[0]}, seqs)
        for e in seen[0]:
            self.assertEqual(e["seq"], e["data"]["seq"])
        self.assertEqual([m["seq"] for m in all_history(self, self.port, users[0][1], rid)],
                         list(range(1, total + 1)))

    def test_an_outsider_gets_op_errors(self):
        a, ta = register(self.port)
        _, tout = register(self.port)
        rid = new_room(self, self.port, ta)["id"]
        c = self.ws(tout)
        for op, status in (({"op": "send", "topic": "room:" + rid, "text": "hi", "id": "s"}, 404),
                           ({"op": "subscribe", "topic": "room:" + rid, "id": "s"}, 404),
                           ({"op": "send", "topic": "room:" + str(uuid.uuid4()), "text": "hi",
                             "id": "s"}, 404),
                           ({"op": "send", "topic": "room:" + rid, "id": "s"}, 400),
                           ({"op": "send", "topic": "wallet:" + a, "text": "hi", "id": "s"}, 400)):
            c.send(op)
            reply = c.recv()
            self.assertEqual((reply["op"], reply["status"], reply["id"]), ("error", status, "s"),
                             (op, reply))
        # A member's bad text is an error too, and the session goes on.
        m = self.ws(ta)
        m.send({"op": "send", "topic": "room:" + rid, "text": "", "id": "e"})
        self.assertEqual((m.recv()["op"]), "error")
        m.send({"op": "send", "topic": "room:" + rid, "text": "ok", "id": "k"})
        self.assertEqual(m.recv(), {"op": "ack", "id": "k", "seq": 1})
        self.assertEqual(history(self.port, tout, rid)[0], 404)

    def resume(self, token, rid, since, expect_last, sender=None, during=0):
        """Resumes with since_seq; while it catches up, `sender` sends
        `during` more. Checks it gets exactly since+1.. with no gap and no
        repeat, then one live message."""
        c = self.ws(token)
        got = []
        t = None
        if during:
            t = threading.Thread(target=send_many, args=(self, sender, rid,
                                                         ["during-%d" % i for i in range(during)]))
        c.send({"op": "subscribe", "topic": "room:" + rid, "since_seq": since})
        if t:
            t.start()
        reply = c.recv()
        self.assertEqual(reply["op"], "subscribed", reply)
        got = events_until(self, c, rid, expect_last - since + during)
        if t:
            t.join()
        self.assertEqual([e["seq"] for e in got], list(range(since + 1, expect_last + during + 1)))
        return c, expect_last + during

    def test_resume_after_500_missed_from_memory_and_from_postgres_after_a_restart(self):
        a, ta = register(self.port)
        b, tb = register(self.port)
        rid = new_room(self, self.port, ta, "resume", [b])["id"]
        c = self.ws(ta)
        subscribe(self, c, rid)
        sender = self.ws(tb)
        send_many(self, sender, rid, ["first"])
        last = events_until(self, c, rid, 1)[0]["seq"]
        c.close()
        send_many(self, sender, rid, ["missed-%d" % i for i in range(500)])
        # The hub keeps the last 64 events: the rest comes from PostgreSQL,
        # while another 100 arrive during the catch-up.
        c2, top = self.resume(ta, rid, last, last + 500, sender, during=100)
        send_many(self, sender, rid, ["live"])
        e = events_until(self, c2, rid, 1)[0]
        self.assertEqual((e["seq"], e["data"]["text"]), (top + 1, "live"))
        c2.close()
        # Only from memory: the last few.
        c3, _ = self.resume(ta, rid, top - 5, top + 1)
        c3.close()
        # After a restart the hub knows nothing: all from PostgreSQL.
        for s in self.clients:
            s.close()
        self.node.stop()
        self.node.start().wait_ready()
        self.port = self.node.port
        sender = self.ws(tb)
        c4, _ = self.resume(ta, rid, last, top + 1)
        send_many(self, sender, rid, ["after restart"])
        self.assertEqual(events_until(self, c4, rid, 1)[0]["seq"], top + 2)
        # subscribed names the room's current seq even before anything new.
        c5 = self.ws(ta)
        self.assertEqual(subscribe(self, c5, rid)["seq"], top + 2)

    def test_kill_9_while_messages_flow_loses_no_acknowledged_message(self):
        users = [register(self.port) for _ in range(3)]
        rooms = [new_room(self, self.port, users[0][1], "k%d" % i, [u for u, _ in users[1:]])["id"]
                 for i in range(2)]
        acked, lock = [], threading.Lock()
        stop = threading.Event()

        def flow(i):
            c = None
            try:
                c = WsClient(self.port, users[i][1], timeout=5)
                n = 0
                while not stop.is_set() and n < 5000:
                    rid = rooms[n % 2]
                    text = "u%d-%d" % (i, n)
                    for k in range(10):  # ten in flight at a time
                        c.send({"op": "send", "topic": "room:" + rid, "text": "%s-%d" % (text, k),
                                "id": "%s|%s-%d" % (rid, text, k)})
                    got = 0
                    while got < 10:
                        m = c.recv()
                        if m.get("op") == "ack":
                            rid_, t = m["id"].split("|", 1)
                            with lock:
                                acked.append((rid_, m["seq"], t))
                        got += 1
                    n += 1
            except (Closed, OSError, ValueError):
                pass  # the node died under us
            finally:
                if c:
                    c.close()

        threads = [threading.Thread(target=flow, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        self.assertTrue(wait_for(lambda: len(acked) > 600, 30), len(acked))
        self.node.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join()
        self.node.start().wait_ready()
        self.port = self.node.port
        print("acknowledged before the kill:", len(acked), file=sys.stderr)
        for rid in rooms:
            rows = psql(self.url, "SELECT seq, text FROM room_messages WHERE room_id = '%s' "
                                  "ORDER BY seq" % rid)
            stored = {int(seq): text for seq, text in rows}
            # No gaps: 1..max.
            self.assertEqual(sorted(stored), list(range(1, len(stored) + 1)))
            for rid_, seq, text in acked:
                if rid_ == rid:
                    self.assertEqual(stored.get(seq), text, (rid, seq))
            # The room goes on from there.
            st, m = post(self.port, users[1][1], rid, "after")
            self.assertEqual((st, m["seq"]), (201, len(stored) + 1), m)


if __name__ == "__main__":
    main()
