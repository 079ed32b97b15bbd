"""Delivery tasks end to end with a real node, PostgreSQL and WebSocket
clients: the API.md flow (a task created near an available rider is offered
to it within 1 s over `user:{rider}`, accepted, the rider busy, picked up,
no cancel after pickup, completed, the fee paid to the rider as `earning`,
XP up), a decline and an offer timeout each moving the offer to the next
nearest rider and none left making the task `unassigned` (the creator told),
a rider just across a dispatch region border found, cancel before pickup
refunding and freeing the rider, roles, owners and strict input, and kill -9
during dispatch: after the restart no task is accepted twice, no rider holds
two offers, no fee is paid twice, and the tasks that were being offered go
on to an end."""

import json
import signal
import socket
import sys
import threading
import time
import unittest
import uuid

from harness import json_body, main, psql, wait_for
from wsclient import Closed, WsClient
from test_circles import deposit
from test_riders import NAIROBI, inspect, rider
from test_wallet import call, check_ledger, login_admin, register, start_fresh_node

PENDING = "SELECT count(*) FROM transfers WHERE state IN ('reserved', 'credited', 'refused')"
BEFORE_PICKUP = ("pending", "offered", "assigned", "unassigned")
TERMINAL = ("completed", "canceled", "unassigned")


# --- geometry --------------------------------------------------------------

def north(point, meters):
    """The point `meters` north of `point` (a degree of latitude is 111,320 m)."""
    return (point[0] + meters / 111320.0, point[1])


def latlng(point):
    return {"lat": point[0], "lng": point[1]}


# --- REST ------------------------------------------------------------------

def parse(data):
    try:
        return json_body(data)
    except ValueError:
        return {}


def task_body(pickup, fee=500, dropoff=None, **extra):
    body = {"pickup": latlng(pickup), "dropoff": latlng(dropoff or north(pickup, 1500)),
            "fee": fee}
    body.update(extra)
    return body


def post_task(port, token, body, headers=None):
    """POST /tasks as is: (status, headers, body bytes)."""
    return call(port, "POST", "/api/v1/tasks", token, body, headers=headers)


def create_task(test, port, token, pickup, fee=500, **extra):
    """A task created by `token` with its pickup at `pickup`: the task (201)."""
    status, _, data = post_task(port, token, task_body(pickup, fee, **extra))
    test.assertEqual(status, 201, data)
    return json_body(data)


def get_task(port, token, tid):
    status, _, data = call(port, "GET", "/api/v1/tasks/" + tid, token)
    return status, parse(data)


def act(port, token, tid, what, body=None):
    """POST /tasks/{tid}/{what} (accept, decline, pickup, complete, cancel,
    assign): (status, document)."""
    status, _, data = call(port, "POST", "/api/v1/tasks/%s/%s" % (tid, what), token, body)
    return status, parse(data)


def list_tasks(port, token, query=""):
    status, _, data = call(port, "GET", "/api/v1/tasks" + query, token)
    return status, parse(data)


def wallet(port, token):
    return json_body(call(port, "GET", "/api/v1/wallet", token)[2])


def transactions(port, token):
    """The wallet's transactions, newest first, as (type, amount)."""
    status, _, data = call(port, "GET", "/api/v1/wallet/transactions?limit=200", token)
    assert status == 200, data
    return [(t["type"], t["amount"]) for t in json_body(data)["items"]]


def go_online(test, port, token, point):
    status, _, data = call(port, "POST", "/api/v1/riders/me/online", token, latlng(point))
    test.assertEqual(status, 200, data)
    test.assertEqual(json_body(data)["status"], "available")


def nearby_ids(port, dispatcher, point):
    status, _, data = call(port, "GET", "/api/v1/riders/nearby?lat=%f&lng=%f&radius_m=5000"
                           % point, dispatcher)
    return [r["id"] for r in parse(data).get("items", [])] if status == 200 else []


def wait_nearby(test, port, dispatcher, point, ids, timeout=10):
    """Waits until the dispatchers hold every rider of `ids` as available
    near `point` (going online reaches the region's dispatcher after the
    answer), so that a task created next can find them."""
    ok = wait_for(lambda: set(ids) <= set(nearby_ids(port, dispatcher, point)), timeout, 0.05)
    test.assertTrue(ok, "riders not available near %r: %r" % (point, nearby_ids(
        port, dispatcher, point)))


def eventually(test, pred, timeout, msg=""):
    """pred()'s first truthy value within `timeout` seconds; fails the test otherwise."""
    value = wait_for(pred, timeout, 0.05)
    test.assertTrue(value, msg() if callable(msg) else msg)
    return value


def task_becomes(test, port, token, tid, timeout=5, **fields):
    """Waits until GET /tasks/{tid} (as `token`) shows `fields`; returns the task."""
    last = {}

    def check():
        status, doc = get_task(port, token, tid)
        last.clear()
        last.update(doc)
        return status == 200 and all(doc.get(k) == v for k, v in fields.items()) and doc
    return eventually(test, check, timeout, lambda: "task %s never had %r: %r" % (tid, fields, last))


def assert_problem(test, response, status, what=None):
    """A problem+json answer whose `status` is the HTTP status."""
    got, headers, data = response
    test.assertEqual(got, status, (what, data))
    test.assertEqual(headers.get("content-type"), "application/problem+json", what)
    test.assertEqual(json_body(data)["status"], status, what)


def settle_money(test, url, timeout=15):
    """Waits until no money move is left half done in PostgreSQL (the
    journal writes behind), then checks the ledger invariants."""
    eventually(test, lambda: psql(url, PENDING) == [["0"]], timeout,
               lambda: psql(url, "SELECT id, move_type, state FROM transfers WHERE state IN "
                                 "('reserved', 'credited', 'refused')"))
    return check_ledger(test, url)


# --- WebSocket -------------------------------------------------------------

def listen(test, port, token, topic):
    """A WebSocket subscribed to `topic`, closed when the test ends."""
    ws = WsClient(port, token, timeout=10)
    test.addCleanup(ws.close)
    test.assertEqual(ws.status, 101, ws.head)
    ws.send({"op": "subscribe", "topic": topic})
    reply = ws.recv()
    test.assertEqual((reply.get("op"), reply.get("topic")), ("subscribed", topic), reply)
    return ws


def next_event(ws, pred, timeout):
    """The next frame for which pred holds, read within `timeout` seconds
    (frames before it are dropped), or None."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ws.sock.settimeout(left)
        try:
            m = ws.recv()
        except socket.timeout:
            return None
        if pred(m):
            return m


def offered(tid):
    return lambda m: m.get("event") == "task.offered" and m.get("data", {}).get("id") == tid


class TaskTest(unittest.TestCase):
    start_node = start_fresh_node

    def boot(self, **env):
        """A node on a fresh database whose entities stay active for the
        test (as in test_riders.py); returns (node, database url, port)."""
        node, url = self.start_node(**dict({"GIGMESH_ENTITY_IDLE_TIMEOUT_MS": "60000"}, **env))
        return node, url, node.port

    def test_the_flow_end_to_end(self):
        """API.md's flow: a task created 200 m from the only available
        rider is offered to it within 1 s (task.offered on user:{rider});
        the fee is locked in the creator's escrow at once; accept makes the
        task assigned and the rider busy (it cannot go offline), and the
        client watching task:{id} sees task.assigned, task.updated and the
        rider's location; after pickup the creator can no longer cancel;
        completion pays the fee to the rider as `earning`, empties the
        escrow, adds XP and frees the rider; the ledger invariants hold."""
        node, url, port = self.boot()
        creator, tc = register(port, "client")
        rid, tr = register(port, "rider")
        _, td = register(port, "dispatcher")
        deposit(self, port, tc, 5000)
        go_online(self, port, tr, NAIROBI)
        pickup = north(NAIROBI, 200)
        wait_nearby(self, port, td, pickup, [rid])
        rws = listen(self, port, tr, "user:" + rid)

        t0 = time.monotonic()
        task = create_task(self, port, tc, pickup, fee=700, description="two boxes of mangoes")
        offer = next_event(rws, offered(task["id"]), 5)
        took = time.monotonic() - t0
        tid = task["id"]
        self.assertIsNotNone(offer, "no task.offered on user:%s" % rid)
        print("\n  task created -> task.offered at the rider: %.1f ms" % (took * 1000),
              file=sys.stderr)
        self.assertLess(took, 1.0, "the offer took %.3f s" % took)
        self.assertEqual(offer["topic"], "user:" + rid)
        self.assertEqual((offer["data"]["status"], offer["data"]["offered_to"]), ("offered", rid))
        # The creation answer: the task as created, pending or already offered.
        self.assertIn(task["status"], ("pending", "offered"))
        self.assertEqual((task["creator_id"], task["fee"], task["description"]),
                         (creator, 700, "two boxes of mangoes"))
        self.assertAlmostEqual(task["pickup"]["lat"], pickup[0], places=6)
        self.assertAlmostEqual(task["pickup"]["lng"], pickup[1], places=6)
        self.assertIsInstance(task["version"], int)
        # The fee is locked at once.
        w = wallet(port, tc)
        self.assertEqual((w["balance"], w["escrow_balance"]), (4300, 700))
        self.assertEqual(transactions(port, tc)[0], ("escrow_lock", 700))
        # The creator and the rider it is offered to see it offered.
        for token in (tc, tr):
            status, doc = get_task(port, token, tid)
            self.assertEqual(status, 200, doc)
            self.assertEqual((doc["status"], doc["offered_to"], doc["offers"]), ("offered", rid, 1))
            self.assertIn("offer_expires_at", doc)
            self.assertIn("offered_at", doc)
        dispatch_us = psql(url, "SELECT dispatch_us FROM tasks WHERE id = '%s'" % tid)
        print("  dispatch_us in PostgreSQL: %s" % dispatch_us, file=sys.stderr)
        cws = listen(self, port, tc, "task:" + tid)

        # Accept: assigned, the rider busy and carrying it.
        status, doc = act(port, tr, tid, "accept")
        self.assertEqual(status, 200, doc)
        self.assertEqual((doc["status"], doc["rider_id"]), ("assigned", rid))
        self.assertIn("assigned_at", doc)
        self.assertIn("due_at", doc)
        # One event per change (its seq is the task's version): this one is task.assigned.
        want, seen = {"task.assigned assigned"}, set()
        deadline = time.monotonic() + 5
        while not want <= seen:
            m = next_event(cws, lambda m: "event" in m, deadline - time.monotonic())
            if m is None:
                break
            self.assertEqual(m["topic"], "task:" + tid)
            seen.add(m["event"] + " " + m["data"]["status"])
        self.assertLessEqual(want, seen, "events on task:%s" % tid)
        st, me = rider(port, tr, rid)
        self.assertEqual((st, me["status"], me.get("task_id")), (200, "busy", tid), me)
        self.assertEqual(rider(port, tc, rid)[1]["status"], "busy")
        assert_problem(self, call(port, "POST", "/api/v1/riders/me/offline", tr), 409)
        # The carrying rider's location reaches the task's topic; the ping is acked.
        moved = north(NAIROBI, 100)
        rws.send({"op": "location", "lat": moved[0], "lng": moved[1], "id": "p1"})
        ack = next_event(rws, lambda m: m.get("op") in ("ack", "error"), 5)
        self.assertEqual((ack or {}).get("op"), "ack", ack)
        self.assertEqual(ack["id"], "p1")
        where = next_event(cws, lambda m: m.get("event") == "rider.location", 5)
        self.assertIsNotNone(where, "no rider.location on task:" + tid)
        self.assertEqual(where["topic"], "task:" + tid)
        self.assertAlmostEqual(where["data"]["lat"], moved[0], places=6)

        # Pickup; the creator can no longer cancel.
        status, doc = act(port, tr, tid, "pickup")
        self.assertEqual((status, doc.get("status")), (200, "picked_up"), doc)
        self.assertIn("picked_up_at", doc)
        assert_problem(self, call(port, "POST", "/api/v1/tasks/%s/cancel" % tid, tc), 409)
        self.assertEqual(wallet(port, tc)["escrow_balance"], 700)

        # Complete: the fee reaches the rider as earning; XP; the rider free again.
        status, doc = act(port, tr, tid, "complete", {})
        self.assertEqual((status, doc.get("status")), (200, "completed"), doc)
        self.assertIn("completed_at", doc)
        self.assertIsInstance(doc["on_time"], bool)
        eventually(self, lambda: wallet(port, tr)["balance"] == 700, 10,
                   lambda: wallet(port, tr))
        self.assertIn(("earning", 700), transactions(port, tr))
        eventually(self, lambda: (lambda w: (w["balance"], w["escrow_balance"]) == (4300, 0))(
            wallet(port, tc)), 10, lambda: wallet(port, tc))
        self.assertIn(("escrow_release", 700), transactions(port, tc))
        st, me = rider(port, tr, rid)
        xp = 10 + (5 if doc["on_time"] else 0)
        self.assertEqual((me["status"], me["completed_tasks"], me["xp"], me["level"]),
                         ("available", 1, xp, 1), me)
        self.assertGreaterEqual(me["xp"], 10)
        self.assertIsNone(me.get("task_id"))
        # The public profile shows the rider's level and completed tasks
        # (and, as every public profile, no phone or email).
        def profile():
            s, _, b = call(port, "GET", "/api/v1/users/" + rid, tc)
            return json.loads(b) if s == 200 else {}
        prof = eventually(self, lambda: profile().get("completed_tasks") == 1 and profile(), 5,
                          profile)
        self.assertEqual(prof["level"], 1)
        self.assertNotIn("phone", prof)
        self.assertNotIn("email", prof)
        status, doc = get_task(port, tc, tid)
        self.assertEqual((doc["status"], doc["rider_id"]), ("completed", rid))
        eventually(self, lambda: psql(url, "SELECT status, rider_id FROM tasks WHERE id = '%s'"
                                      % tid) == [["completed", rid]], 5)
        settle_money(self, url)

    def test_decline_and_timeout_move_the_offer_to_the_next_nearest(self):
        """Three riders 100 m, 400 m and 900 m from the pickup: the nearest
        gets the offer; its decline moves it to the second; the second lets
        it time out (1.5 s) and the third gets it; the first two are never
        offered it again; the third declines and, no one being left, the
        task is unassigned and its creator told (notification.new
        task.unassigned); the creator's cancel then refunds the fee."""
        node, url, port = self.boot(GIGMESH_DISPATCH_OFFER_TIMEOUT_MS="1500")
        creator, tc = register(port, "client")
        _, td = register(port, "dispatcher")
        deposit(self, port, tc, 2000)
        pickup = NAIROBI
        riders = [register(port, "rider") for _ in range(3)]
        (a, ta), (b, tb), (c, tcr) = riders
        for (rid, token), meters in zip(riders, (100, 400, 900)):
            go_online(self, port, token, north(pickup, meters))
        wait_nearby(self, port, td, pickup, [a, b, c])
        self.assertEqual(nearby_ids(port, td, pickup)[:3], [a, b, c])
        phones = {rid: listen(self, port, token, "user:" + rid) for rid, token in riders}
        mine = listen(self, port, tc, "user:" + creator)

        tid = create_task(self, port, tc, pickup, fee=300)["id"]
        self.assertIsNotNone(next_event(phones[a], offered(tid), 5), "the nearest got no offer")
        task_becomes(self, port, tc, tid, status="offered", offered_to=a)

        # A declines: B, the next nearest, gets it.
        status, doc = act(port, ta, tid, "decline")
        self.assertEqual((status, doc.get("id")), (200, tid), doc)
        self.assertIsNotNone(next_event(phones[b], offered(tid), 5), "the second got no offer")
        t_b = time.monotonic()
        task_becomes(self, port, tc, tid, status="offered", offered_to=b, offers=2)
        self.assertEqual(get_task(port, tb, tid)[0], 200)

        # B lets it time out: C gets it about 1.5 s later.
        self.assertIsNotNone(next_event(phones[c], offered(tid), 6), "the third got no offer")
        waited = time.monotonic() - t_b
        print("\n  offer timeout 1.5 s: the next rider got it %.2f s later" % waited,
              file=sys.stderr)
        self.assertGreater(waited, 1.2)
        self.assertLess(waited, 3.5)
        task_becomes(self, port, tc, tid, status="offered", offered_to=c, offers=3)
        self.assertIn(act(port, tb, tid, "accept")[0], (403, 404, 409))
        self.assertIn(act(port, ta, tid, "accept")[0], (403, 404, 409))

        # C declines: nobody is left (A and B are not asked again).
        self.assertEqual(act(port, tcr, tid, "decline")[0], 200)
        doc = task_becomes(self, port, tc, tid, status="unassigned")
        self.assertEqual(doc["offers"], 3)
        self.assertIsNone(doc.get("rider_id"))
        note = next_event(mine, lambda m: m.get("event") == "notification.new", 5)
        self.assertIsNotNone(note, "the creator was not told")
        self.assertEqual((note["topic"], note["data"]["type"], note["data"]["task_id"]),
                         ("user:" + creator, "task.unassigned", tid))
        for rid in (a, b):
            self.assertIsNone(next_event(phones[rid], offered(tid), 0.3),
                              "%s was offered the task again" % rid)
        eventually(self, lambda: psql(url, "SELECT status FROM tasks WHERE id = '%s'" % tid)
                   == [["unassigned"]], 5)
        tried = psql(url, "SELECT tried FROM tasks WHERE id = '%s'" % tid)[0][0]
        self.assertEqual(sorted(tried.strip("{}").split(",")), sorted([a, b, c]))
        for rid, token in riders:
            st, me = rider(port, token, rid)
            self.assertEqual(me["status"], "available", me)

        # The creator cancels the unassigned task: refunded.
        status, doc = act(port, tc, tid, "cancel")
        self.assertEqual((status, doc.get("status")), (200, "canceled"), doc)
        eventually(self, lambda: (lambda w: (w["balance"], w["escrow_balance"]) == (2000, 0))(
            wallet(port, tc)), 10, lambda: wallet(port, tc))
        self.assertEqual(transactions(port, tc)[0], ("escrow_refund", 300))
        settle_money(self, url)

    def test_a_rider_just_across_a_region_border_is_found(self):
        """Regions are S2 level-10 cells, each with its dispatcher: with a
        border found by bisection (as test_riders.py does), a task whose
        pickup is 20 m on one side is offered to the only available rider,
        20 m on the other side, in the neighbouring region."""
        node, url, port = self.boot()
        admin = login_admin(port)
        _, td = register(port, "dispatcher")
        _, tc = register(port, "client")
        deposit(self, port, tc, 1000)
        probe_id, probe = register(port, "rider")
        lat = NAIROBI[0]
        go_online(self, port, probe, NAIROBI)

        def region_at(lng):
            status, _, data = call(port, "POST", "/api/v1/riders/me/location", probe,
                                   {"lat": lat, "lng": lng})
            self.assertEqual(status, 202, data)
            return inspect(port, admin, "rider", probe_id)["region"]

        west, east = NAIROBI[1], NAIROBI[1] + 0.2
        home = region_at(west)
        self.assertNotEqual(region_at(east), home)
        while east - west > 0.00001:
            mid = (west + east) / 2
            if region_at(mid) == home:
                west = mid
            else:
                east = mid
        self.assertEqual(call(port, "POST", "/api/v1/riders/me/offline", probe)[0], 200)
        # The pickup 20 m west of the border, the rider 20 m east of it.
        pickup = (lat, west - 0.00018)
        across_id, across = register(port, "rider")
        go_online(self, port, across, (lat, east + 0.00018))
        self.assertNotEqual(inspect(port, admin, "rider", across_id)["region"], home)
        wait_nearby(self, port, td, pickup, [across_id])
        self.assertEqual(nearby_ids(port, td, pickup), [across_id])
        ws = listen(self, port, across, "user:" + across_id)
        tid = create_task(self, port, tc, pickup, fee=250)["id"]
        self.assertIsNotNone(next_event(ws, offered(tid), 5), "the rider across the border "
                                                              "got no offer")
        task_becomes(self, port, tc, tid, status="offered", offered_to=across_id)
        status, doc = act(port, across, tid, "accept")
        self.assertEqual((status, doc.get("rider_id")), (200, across_id), doc)

    def test_cancel_before_pickup_refunds_and_frees_the_rider(self):
        """An accepted task canceled by its creator before pickup: 200
        canceled, the fee back in the creator's balance (escrow_refund),
        the rider available again (and offered the next task); the rider
        can no longer pick it up or complete it, and a second cancel
        refunds nothing more."""
        node, url, port = self.boot()
        creator, tc = register(port, "client")
        rid, tr = register(port, "rider")
        _, td = register(port, "dispatcher")
        deposit(self, port, tc, 3000)
        go_online(self, port, tr, NAIROBI)
        pickup = north(NAIROBI, 300)
        wait_nearby(self, port, td, pickup, [rid])
        tid = create_task(self, port, tc, pickup, fee=800)["id"]
        task_becomes(self, port, tc, tid, status="offered", offered_to=rid)
        status, doc = act(port, tr, tid, "accept")
        self.assertEqual((status, doc.get("status")), (200, "assigned"), doc)
        self.assertEqual(rider(port, tr, rid)[1]["status"], "busy")
        self.assertEqual(wallet(port, tc)["escrow_balance"], 800)

        status, doc = act(port, tc, tid, "cancel")
        self.assertEqual((status, doc.get("status")), (200, "canceled"), doc)
        self.assertIn("canceled_at", doc)
        eventually(self, lambda: rider(port, tr, rid)[1]["status"] == "available", 5,
                   lambda: rider(port, tr, rid))
        self.assertIsNone(rider(port, tr, rid)[1].get("task_id"))
        eventually(self, lambda: (lambda w: (w["balance"], w["escrow_balance"]) == (3000, 0))(
            wallet(port, tc)), 10, lambda: wallet(port, tc))
        self.assertEqual(transactions(port, tc)[0], ("escrow_refund", 800))
        # Too late for the rider; a second cancel changes nothing.
        self.assertEqual(act(port, tr, tid, "complete", {})[0], 409)
        self.assertIn(act(port, tr, tid, "pickup")[0], (403, 404, 409))
        assert_problem(self, call(port, "POST", "/api/v1/tasks/%s/cancel" % tid, tc), 409)
        self.assertEqual(get_task(port, tc, tid)[1]["status"], "canceled")
        self.assertEqual(rider(port, tr, rid)[1]["completed_tasks"], 0)
        settle_money(self, url)
        w = wallet(port, tc)
        self.assertEqual((w["balance"], w["escrow_balance"]), (3000, 0))
        # The rider is back in its dispatcher: the next task is offered to it.
        wait_nearby(self, port, td, pickup, [rid])
        nid = create_task(self, port, tc, pickup, fee=100)["id"]
        task_becomes(self, port, tc, nid, status="offered", offered_to=rid)

    def test_authorization_and_bad_input(self):
        """Who may do what, and strict input: riders and hustlers cannot
        create tasks; every malformed or out-of-range body is refused with
        its status as problem+json before any money moves; a fee the wallet
        cannot cover is 409 with nothing locked; strangers see 404; only the
        rider offered a task may accept it; dispatchers list every task
        (filtered by status) and may assign one by hand; unknown ids are
        404; an Idempotency-Key creates one task."""
        node, url, port = self.boot()
        creator, tc = register(port, "client")
        other, to = register(port, "client")
        _, td = register(port, "dispatcher")
        _, th = register(port, "hustler")
        (r1, t1), (r2, t2), (r3, t3) = [register(port, "rider") for _ in range(3)]
        deposit(self, port, tc, 10000)
        pickup = NAIROBI
        good = task_body(pickup, 500)
        for token in (t1, th):
            assert_problem(self, post_task(port, token, good), 403)

        def with_(**fields):
            return dict(good, **fields)
        cases = [
            (with_(pickup={"lat": 91, "lng": 36.8}), 422, "lat 91"),
            (with_(pickup={"lat": -1.3, "lng": -181}), 422, "lng -181"),
            (with_(dropoff={"lat": -90.5, "lng": 36.8}), 422, "dropoff lat -90.5"),
            (with_(fee=0), 422, "fee 0"),
            (with_(fee=-5), 422, "fee -5"),
            (with_(fee=1.5), 400, "fee 1.5"),
            (with_(fee="100"), 400, "fee a string"),
            (with_(fee=9223372036854775808), 422, "fee past int64"),
            (with_(pickup="x"), 400, "pickup a string"),
            (with_(pickup={"lat": "1", "lng": 36.8}), 400, "lat a string"),
            (with_(pickup={"lat": -1.3}), 422, "pickup without lng"),
            (with_(pickup={"lat": -1.3, "lng": 36.8, "alt": 3}), 422, "pickup with a member more"),
            (with_(x=1), 422, "unknown field"),
            ({k: v for k, v in good.items() if k != "fee"}, 422, "no fee"),
            ({k: v for k, v in good.items() if k != "dropoff"}, 422, "no dropoff"),
            (with_(description="x" * 501), 422, "description of 501 bytes"),
            ("not json", 400, "not JSON"),
            ("[1]", 400, "not an object"),
        ]
        for body, status, what in cases:
            assert_problem(self, post_task(port, tc, body), status, what)
        # The fee must be covered: 409, nothing locked.
        assert_problem(self, post_task(port, tc, task_body(pickup, 20000)), 409)
        w = wallet(port, tc)
        self.assertEqual((w["balance"], w["escrow_balance"]), (10000, 0))
        self.assertEqual(transactions(port, tc), [("deposit", 10000)])

        # R1 100 m from the pickup, R2 600 m: R1 is offered the task.
        go_online(self, port, t1, north(pickup, 100))
        go_online(self, port, t2, north(pickup, 600))
        wait_nearby(self, port, td, pickup, [r1, r2])
        tid = create_task(self, port, tc, pickup, fee=500)["id"]
        task_becomes(self, port, tc, tid, status="offered", offered_to=r1)
        # Strangers see nothing; only the rider offered it may accept it.
        for token in (to, t2):
            assert_problem(self, call(port, "GET", "/api/v1/tasks/" + tid, token), 404)
        self.assertIn(act(port, t2, tid, "accept")[0], (403, 404))
        self.assertIn(act(port, t2, tid, "decline")[0], (403, 404))
        self.assertIn(act(port, tc, tid, "pickup")[0], (403, 404))
        self.assertIn(act(port, to, tid, "cancel")[0], (403, 404))
        self.assertEqual(get_task(port, td, tid)[0], 200)
        # Lists: dispatchers see every task, others their own.
        status, page = list_tasks(port, td)
        self.assertEqual(status, 200, page)
        self.assertIn(tid, [t["id"] for t in page["items"]])
        self.assertIn("next_cursor", page)
        status, page = list_tasks(port, td, "?status=offered")
        self.assertEqual(status, 200, page)
        self.assertIn(tid, [t["id"] for t in page["items"]])
        self.assertEqual({t["status"] for t in page["items"]}, {"offered"})
        status, page = list_tasks(port, td, "?status=completed")
        self.assertEqual((status, page["items"]), (200, []))
        assert_problem(self, call(port, "GET", "/api/v1/tasks?status=bogus", td), 400)
        self.assertEqual([t["id"] for t in list_tasks(port, tc)[1]["items"]], [tid])
        self.assertEqual(list_tasks(port, to)[1]["items"], [])

        # Manual assignment: dispatchers only, to an online rider that is not busy.
        assert_problem(self, call(port, "POST", "/api/v1/tasks/%s/assign" % tid, tc,
                                  {"rider_id": r2}), 403)
        assert_problem(self, call(port, "POST", "/api/v1/tasks/%s/assign" % tid, td,
                                  {"rider_id": other}), 422)
        assert_problem(self, call(port, "POST", "/api/v1/tasks/%s/assign" % tid, td,
                                  {"rider_id": r3}), 409)  # offline
        status, doc = act(port, td, tid, "assign", {"rider_id": r2})
        self.assertEqual(status, 200, doc)
        self.assertEqual((doc["status"], doc["rider_id"]), ("assigned", r2))
        st, me = rider(port, td, r2)
        self.assertEqual((me["status"], me.get("task_id")), ("busy", tid), me)
        self.assertIn(act(port, t1, tid, "accept")[0], (403, 404, 409))  # the offer is gone
        assert_problem(self, call(port, "POST", "/api/v1/tasks/%s/assign" % tid, td,
                                  {"rider_id": r1}), 409)  # assigned already
        self.assertEqual(get_task(port, t2, tid)[1]["rider_id"], r2)
        second = create_task(self, port, tc, north(pickup, 50), fee=500)["id"]
        assert_problem(self, call(port, "POST", "/api/v1/tasks/%s/assign" % second, td,
                                  {"rider_id": r2}), 409)  # busy

        # Unknown ids.
        for path in ("/api/v1/tasks/" + str(uuid.uuid4()), "/api/v1/tasks/nope"):
            assert_problem(self, call(port, "GET", path, tc), 404, path)
            assert_problem(self, call(port, "GET", path, td), 404, path)
        assert_problem(self, call(port, "POST", "/api/v1/tasks/%s/accept" % uuid.uuid4(), t1),
                       404)
        assert_problem(self, call(port, "POST", "/api/v1/tasks/nope/cancel", tc), 404)

        # One Idempotency-Key, one task and one lock.
        key = {"Idempotency-Key": "task-" + uuid.uuid4().hex}
        body = task_body(north(pickup, 80), 500)
        first = post_task(port, tc, body, key)
        again = post_task(port, tc, body, key)
        self.assertEqual((first[0], again[0]), (201, 201), (first[2], again[2]))
        self.assertEqual(json_body(first[2])["id"], json_body(again[2])["id"])
        w = wallet(port, tc)
        self.assertEqual((w["balance"], w["escrow_balance"]), (8500, 1500))
        self.assertEqual(len(list_tasks(port, tc)[1]["items"]), 3)
        settle_money(self, url)

    def test_kill_9_during_dispatch(self):
        """Six riders (two that accept and deliver, four that never answer)
        and eight tasks of fee 100 created one after another; once two are
        completed and others are being offered, the node is killed (-9) and
        started again on the same database; riders reconnect (now the four
        decline at once). Every task then reaches an end (completed,
        unassigned) within 25 s: the tasks that were being offered went on.
        No task is accepted by two riders, no rider holds two offers, no
        two riders carry the same task, and no fee is paid twice: earnings
        equal the completed tasks one to one and rider by rider, refunds the
        canceled ones, the escrow the open ones; the ledger invariants
        hold."""
        node, url, port = self.boot(GIGMESH_DISPATCH_OFFER_TIMEOUT_MS="2000",
                                    GIGMESH_SAGA_SWEEP_INTERVAL_MS="500")
        creator, tc = register(port, "client")
        _, td = register(port, "dispatcher")
        deposit(self, port, tc, 10000)
        riders = [register(port, "rider") for _ in range(6)]
        places = {rid: north(NAIROBI, 50 + 100 * i) for i, (rid, _) in enumerate(riders)}
        for rid, token in riders:
            go_online(self, port, token, places[rid])
        wait_nearby(self, port, td, NAIROBI, [rid for rid, _ in riders])
        fleet = Fleet(riders, workers=[riders[0][0], riders[1][0]])
        self.addCleanup(fleet.disconnect)
        fleet.connect(self, port, delay=0.4, idle_decline=False)

        tasks = []
        for i in range(8):
            tasks.append(create_task(self, port, tc, (NAIROBI[0], NAIROBI[1] + i * 0.0001),
                                     fee=100)["id"])
            time.sleep(0.4)

        def statuses():
            out = {}
            for tid in tasks:
                status, doc = get_task(port, tc, tid)
                if status != 200:
                    return None
                out[tid] = doc
            return out
        snapshot = {}

        def ready_to_kill():
            s = statuses()
            snapshot.clear()
            snapshot.update(s or {})
            with fleet.lock:
                done = len(fleet.completed)
            return done >= 2 and any(d["status"] == "offered" for d in snapshot.values())
        eventually(self, ready_to_kill, 20, lambda: "completed %r, tasks %r" % (
            fleet.completed, {t: d["status"] for t, d in snapshot.items()}))
        node.stop(signal.SIGKILL)
        fleet.disconnect()
        before = {t: d["status"] for t, d in snapshot.items()}
        with fleet.lock:
            done_before = dict(fleet.completed)
            offers_before = len(fleet.offers)
        print("\n  kill -9 with tasks %r; %d completed, %d offers made"
              % (sorted(before.values()), len(done_before), offers_before), file=sys.stderr)

        # What the crash left in PostgreSQL: no rider holds two offers, no
        # task is carried by two riders.
        self.assertEqual(psql(url, "SELECT offered_to FROM tasks WHERE status = 'offered' "
                                   "GROUP BY offered_to HAVING count(*) > 1"), [])
        self.assertEqual(psql(url, "SELECT task_id FROM riders WHERE task_id IS NOT NULL "
                                   "GROUP BY task_id HAVING count(*) > 1"), [])
        held = psql(url, "SELECT id, offered_to FROM tasks WHERE status = 'offered'")

        node.start().wait_ready()
        port = node.port
        # The riders that held an offer at the crash answer it at once: it
        # may still stand (200) or have moved on; either way at most one
        # rider ever gets a task (checked below).
        for tid, rid in held:
            if rid not in fleet.tokens:
                continue
            status, _ = act(port, fleet.tokens[rid], tid, "accept")
            self.assertIn(status, (200, 403, 404, 409), (tid, rid))
            if status == 200:
                fleet.note_accept(tid, rid)
        for rid, token in riders:
            status, _, data = call(port, "POST", "/api/v1/riders/me/location", token,
                                   latlng(places[rid]))
            self.assertEqual(status, 202, data)
        after_restart = fleet.gen
        fleet.connect(self, port, delay=0, idle_decline=True)

        # Every task reaches an end. Tasks a rider was carrying at the crash
        # are delivered by it here; a violation PostgreSQL shows twice in a
        # row (not a write on its way) fails the test.
        final, busy_before, doubled_before = {}, set(), None
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            s = statuses() or {}
            final = {t: d["status"] for t, d in s.items()}
            if len(final) == len(tasks) and all(v in TERMINAL for v in final.values()):
                break
            busy = {t for t, v in final.items() if v in ("assigned", "picked_up")}
            for tid in busy & busy_before:
                fleet.deliver(port, tid, s[tid]["rider_id"], final[tid])
            busy_before = busy
            self.assertEqual(psql(url, "SELECT task_id FROM riders WHERE task_id IS NOT NULL "
                                       "GROUP BY task_id HAVING count(*) > 1"), [])
            doubled = psql(url, "SELECT offered_to FROM tasks WHERE status = 'offered' "
                                "GROUP BY offered_to HAVING count(*) > 1")
            self.assertFalse(doubled and doubled == doubled_before,
                             "riders holding two offers: %r" % doubled)
            doubled_before = doubled
            time.sleep(0.5)
        fleet.disconnect()
        self.assertTrue(final and all(v in TERMINAL for v in final.values()),
                        "tasks left after the restart: %r\n%s" % (final, psql(
                            url, "SELECT id, status, offered_to, offers, offered_at FROM tasks")))
        with fleet.lock:
            accepted = {t: list(r) for t, r in fleet.accepted.items()}
            completed = dict(fleet.completed)
            restarted_offers = [o for o in fleet.offers if o[0] == after_restart]
        print("  after the restart: %r; %d offers made" % (
            sorted(final.values()), len(restarted_offers)), file=sys.stderr)
        for tid in tasks:
            self.assertLessEqual(len(accepted.get(tid, [])), 1,
                                 "task %s accepted by %r" % (tid, accepted.get(tid)))
        for gen in {o[0] for o in fleet.offers}:
            pairs = [(o[1], o[2]) for o in fleet.offers if o[0] == gen]
            self.assertEqual(len(pairs), len(set(pairs)), "a rider offered a task twice")

        # PostgreSQL catches up with what the API says.
        def pg_tasks():
            return {r[0]: (r[1], r[2]) for r in psql(
                url, "SELECT id, status, coalesce(rider_id::text, '') FROM tasks")}
        eventually(self, lambda: {t: v[0] for t, v in pg_tasks().items()} == final, 10,
                   lambda: (pg_tasks(), final))
        rows = pg_tasks()
        done = {t for t, v in final.items() if v == "completed"}
        # Every acknowledged acceptance and completion stands, by its rider.
        for tid, rid in completed.items():
            self.assertEqual(rows[tid], ("completed", rid), tid)
        for tid, rids in accepted.items():
            self.assertEqual(rows[tid], ("completed", rids[0]), tid)
        self.assertGreaterEqual(len(done), len(done_before))

        # Money: the open tasks' fees are in escrow; cancel them (refunds).
        open_tasks = [t for t, v in final.items() if v not in ("completed", "canceled")]
        eventually(self, lambda: wallet(port, tc)["escrow_balance"] == 100 * len(open_tasks), 10,
                   lambda: (wallet(port, tc), final))
        for tid in open_tasks:
            status, doc = act(port, tc, tid, "cancel")
            self.assertEqual((status, doc.get("status")), (200, "canceled"), doc)
        eventually(self, lambda: (lambda w: (w["balance"], w["escrow_balance"]) ==
                                  (10000 - 100 * len(done), 0))(wallet(port, tc)), 10,
                   lambda: wallet(port, tc))
        settle_money(self, url, timeout=30)
        self.assertEqual(psql(url, "SELECT count(*) FROM tasks WHERE status = 'canceled'"),
                         [[str(len(open_tasks))]])

        def moves(kind):
            return int(psql(url, "SELECT count(DISTINCT transfer_id) FROM ledger_entries "
                                 "WHERE type = '%s'" % kind)[0][0])
        self.assertEqual(moves("escrow_lock"), len(tasks))
        self.assertEqual(moves("earning"), len(done), "earnings are not the completed tasks")
        self.assertEqual(moves("escrow_release"), len(done))
        self.assertEqual(moves("escrow_refund"), len(open_tasks),
                         "refunds are not the canceled tasks")
        self.assertEqual(psql(url, "SELECT count(*) FROM ledger_entries WHERE type IN "
                                   "('earning', 'escrow_release', 'escrow_refund', 'escrow_lock') "
                                   "AND amount <> 100"), [["0"]])
        earned = {r[0]: (int(r[1]), int(r[2])) for r in psql(url, """
            SELECT w.user_id, count(DISTINCT e.transfer_id), sum(e.amount)
            FROM ledger_entries e JOIN wallets w ON e.account = w.id::text
            WHERE e.type = 'earning' GROUP BY w.user_id""")}
        for rid, token in riders:
            n = sum(1 for t in done if rows[t][1] == rid)
            self.assertEqual(earned.get(rid, (0, 0)), (n, 100 * n), "earnings of %s" % rid)
            self.assertEqual(wallet(port, token)["balance"], 100 * n, rid)
            st, me = rider(port, token, rid)
            self.assertEqual((me["status"], me["completed_tasks"]), ("available", n), me)
            self.assertGreaterEqual(me["xp"], 10 * n)
        eventually(self, lambda: psql(url, "SELECT count(*) FROM riders WHERE task_id IS NOT "
                                           "NULL") == [["0"]], 5,
                   lambda: psql(url, "SELECT user_id, status, task_id FROM riders"))
        self.assertEqual(node.stop(), 0, node.read_log()[-2000:])


class Fleet:
    """The riders' phones for the kill -9 test: one WebSocket each on
    user:{rider}, read by a thread that records every task.offered
    (generation, rider, task, time). Workers accept, pick up and complete
    what they are offered (`delay` seconds between the steps); the others
    ignore offers (they time out) or, with `idle_decline`, decline them.
    A generation ends with disconnect(): its threads stop acting."""

    def __init__(self, riders, workers):
        self.riders = riders
        self.tokens = dict(riders)
        self.workers = set(workers)
        self.lock = threading.Lock()
        self.offers = []      # (generation, rider, task, monotonic time)
        self.accepted = {}    # task -> riders whose accept was answered 200
        self.completed = {}   # task -> rider whose complete was answered 200
        self.gen = 0
        self.port = None
        self.delay = 0
        self.idle_decline = False
        self.phones = []

    def connect(self, test, port, delay, idle_decline):
        self.port, self.delay, self.idle_decline = port, delay, idle_decline
        for rid, token in self.riders:
            ws = WsClient(port, token, timeout=10)
            test.assertEqual(ws.status, 101, ws.head)
            # since_seq 0: an offer made between the restart and this
            # subscription is replayed from the hub.
            ws.send({"op": "subscribe", "topic": "user:" + rid, "since_seq": 0})
            reply = ws.recv()
            test.assertEqual(reply.get("op"), "subscribed", reply)
            ws.sock.settimeout(0.5)
            t = threading.Thread(target=self.read, args=(rid, ws, self.gen), daemon=True)
            self.phones.append((ws, t))
            t.start()

    def disconnect(self):
        self.gen += 1
        for ws, _ in self.phones:
            ws.close()
        for _, t in self.phones:
            t.join(5)
        self.phones = []

    def read(self, rid, ws, gen):
        while self.gen == gen:
            try:
                m = ws.recv()
            except socket.timeout:
                continue
            except (Closed, OSError, ValueError):
                return  # the node died, or the phone was closed
            if m.get("event") != "task.offered":
                continue
            tid = m["data"]["id"]
            with self.lock:
                self.offers.append((gen, rid, tid, time.monotonic()))
            if rid in self.workers:
                threading.Thread(target=self.work, args=(rid, tid, gen), daemon=True).start()
            elif self.idle_decline:
                act(self.port, self.tokens[rid], tid, "decline")

    def note_accept(self, tid, rid):
        with self.lock:
            self.accepted.setdefault(tid, []).append(rid)

    def work(self, rid, tid, gen):
        port, token = self.port, self.tokens[rid]
        status, _ = act(port, token, tid, "accept")
        if status != 200:
            return
        self.note_accept(tid, rid)
        for step, body in (("pickup", None), ("complete", {})):
            time.sleep(self.delay)
            if self.gen != gen:
                return  # the node this began with is gone
            status, _ = act(port, token, tid, step, body)
            if status != 200:
                return
        with self.lock:
            self.completed[tid] = rid

    def deliver(self, port, tid, rid, status):
        """Finishes a task its rider was carrying at the crash."""
        token = self.tokens[rid]
        if status == "assigned" and act(port, token, tid, "pickup")[0] != 200:
            return
        if act(port, token, tid, "complete", {})[0] == 200:
            with self.lock:
                self.completed[tid] = rid


if __name__ == "__main__":
    main()
