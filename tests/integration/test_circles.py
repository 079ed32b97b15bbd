"""Savings circles end to end against a real node and PostgreSQL: a circle
of 3 runs every round to completed through the money mechanism (moves from
wallets into the pot and out of it), the rules refuse what they must
(early payout, double contribution, no funds, roles, strangers), due dates
mark late contributions, auto_payout pays by itself, and kill -9 during
mixed money load (transfers, contributions, payouts) leaves no contribution
counted without its money, no payout made twice, and the SQL invariants
holding with the pots."""

import signal
import threading
import time
import unittest

from harness import Node, json_body, main, psql, wait_for
from wsclient import WsClient
from test_wallet import (NODE_ENV, call, check_ledger, fresh_database, login_admin, register,
                         start_fresh_node)

PENDING = "SELECT count(*) FROM transfers WHERE state IN ('reserved', 'credited', 'refused')"


def deposit(test, port, token, amount):
    status, _, data = call(port, "POST", "/api/v1/wallet/deposit", token, {"amount": amount})
    test.assertEqual(status, 201, data)


def balance(port, token):
    return json_body(call(port, "GET", "/api/v1/wallet", token)[2])["balance"]


def new_circle(test, port, token, **fields):
    body = dict({"name": "Chama", "contribution_amount": 100, "frequency": "weekly",
                 "max_members": 3}, **fields)
    status, _, data = call(port, "POST", "/api/v1/circles", token, body)
    test.assertEqual(status, 201, data)
    return json_body(data)


def started_circle(test, port, members, **fields):
    """A circle created by members[0], joined by the others, started."""
    c = new_circle(test, port, members[0][1], **dict({"max_members": len(members)}, **fields))
    for _, token in members[1:]:
        status, _, data = call(port, "POST", "/api/v1/circles/%s/join" % c["id"], token)
        test.assertEqual(status, 200, data)
    status, _, data = call(port, "POST", "/api/v1/circles/%s/start" % c["id"], members[0][1])
    test.assertEqual(status, 200, data)
    return json_body(data)


class CircleTest(unittest.TestCase):

    start_node = start_fresh_node

    def test_a_circle_of_three_runs_every_round_to_completed(self):
        node, url = self.start_node()
        port = node.port
        members = [register(port) for _ in range(3)]
        for _, token in members:
            deposit(self, port, token, 1000)
        c = new_circle(self, port, members[0][1])
        self.assertEqual((c["status"], c["members_count"], c["pot"]), ("forming", 1, 0))
        cid = c["id"]
        # Forming: contributions and payouts are refused; the creator alone
        # cannot start it; only the creator may.
        self.assertEqual(call(port, "POST", "/api/v1/circles/%s/contribute" % cid,
                              members[0][1])[0], 409)
        self.assertEqual(call(port, "POST", "/api/v1/circles/%s/start" % cid,
                              members[0][1])[0], 409)
        for _, token in members[1:]:
            self.assertEqual(call(port, "POST", "/api/v1/circles/%s/join" % cid, token)[0], 200)
        self.assertEqual(call(port, "POST", "/api/v1/circles/%s/join" % cid,
                              members[1][1])[0], 409)  # a member already (and full)
        self.assertEqual(call(port, "POST", "/api/v1/circles/%s/start" % cid,
                              members[1][1])[0], 403)
        status, _, data = call(port, "POST", "/api/v1/circles/%s/start" % cid, members[0][1])
        self.assertEqual(status, 200, data)
        c = json_body(data)
        self.assertEqual((c["status"], c["current_round"]), ("active", 1))
        order = c["recipients_in_order"]
        self.assertEqual(sorted(order), sorted(u for u, _ in members))
        self.assertEqual(c["next_recipient_id"], order[0])
        late_comer, late_token = register(port)
        self.assertEqual(call(port, "POST", "/api/v1/circles/%s/join" % cid, late_token)[0], 409)
        # A stranger sees nothing of an active circle.
        self.assertEqual(call(port, "GET", "/api/v1/circles/%s" % cid, late_token)[0], 404)
        self.assertEqual(call(port, "GET", "/api/v1/circles/%s/members" % cid,
                              late_token)[0], 404)
        self.assertEqual(call(port, "POST", "/api/v1/circles/%s/contribute" % cid,
                              late_token)[0], 403)
        tokens = dict(members)
        for rnd in (1, 2, 3):
            # Early payout: not everyone has paid.
            self.assertEqual(call(port, "POST", "/api/v1/circles/%s/payout" % cid,
                                  members[0][1])[0], 409)
            for uid, token in members:
                status, _, data = call(port, "POST", "/api/v1/circles/%s/contribute" % cid, token)
                self.assertEqual(status, 200, data)
                doc = json_body(data)
                self.assertEqual((doc["round"], doc["amount"], doc["user_id"], doc["late"]),
                                 (rnd, 100, uid, False))
                # Once per round.
                status, _, data = call(port, "POST", "/api/v1/circles/%s/contribute" % cid, token)
                self.assertEqual(status, 409, data)
            status, _, data = call(port, "GET", "/api/v1/circles/%s/members" % cid, members[2][1])
            self.assertEqual(status, 200, data)
            self.assertTrue(all(m["paid_current_round"] for m in json_body(data)["items"]))
            # Only the creator (or an admin) pays out.
            self.assertEqual(call(port, "POST", "/api/v1/circles/%s/payout" % cid,
                                  members[1][1])[0], 403)
            status, _, data = call(port, "POST", "/api/v1/circles/%s/payout" % cid,
                                   members[0][1], headers={"Idempotency-Key": "pay-%d" % rnd})
            self.assertEqual(status, 200, data)
            payout = json_body(data)
            self.assertEqual((payout["round"], payout["amount"], payout["recipient_id"]),
                             (rnd, 300, order[rnd - 1]))
            # The same key answers the same payout and pays nothing more.
            again = call(port, "POST", "/api/v1/circles/%s/payout" % cid, members[0][1],
                         headers={"Idempotency-Key": "pay-%d" % rnd})
            self.assertEqual((again[0], json_body(again[2])), (200, payout))
        c = json_body(call(port, "GET", "/api/v1/circles/%s" % cid, members[0][1])[2])
        self.assertEqual((c["status"], c["pot"]), ("completed", 0))
        self.assertEqual(call(port, "POST", "/api/v1/circles/%s/contribute" % cid,
                              members[0][1])[0], 409)
        # Everyone paid 300 and received 300 once: balances end where they began.
        self.assertTrue(wait_for(lambda: psql(url, PENDING) == [["0"]], 20, 0.1))
        for uid, token in members:
            self.assertEqual(balance(port, token), 1000)
            status, _, data = call(port, "GET", "/api/v1/wallet/transactions", token)
            types = [t["type"] for t in json_body(data)["items"]]
            self.assertEqual((types.count("contribution"), types.count("payout")), (3, 1), types)
        received = psql(url, "SELECT count(*), count(DISTINCT user_id) FROM circle_members "
                             "WHERE circle_id = '%s' AND received_payout" % cid)
        self.assertEqual(received, [["3", "3"]])
        self.assertEqual(psql(url, "SELECT count(*) FROM ledger_entries WHERE account = "
                                   "'circle:%s'" % cid), [["12"]])  # 9 in, 3 out
        mine = json_body(call(port, "GET", "/api/v1/circles", members[1][1])[2])["items"]
        self.assertEqual([x["id"] for x in mine], [cid])
        check_ledger(self, url)
        self.assertEqual(node.stop(), 0)

    def test_a_contribution_without_funds_is_refused_and_moves_nothing(self):
        node, url = self.start_node()
        port = node.port
        members = [register(port) for _ in range(2)]
        deposit(self, port, members[0][1], 50)
        c = started_circle(self, port, members)
        for _, token in members:
            status, _, data = call(port, "POST", "/api/v1/circles/%s/contribute" % c["id"], token,
                                   headers={"Idempotency-Key": "c-1"})
            self.assertEqual(status, 409, data)
            self.assertIn("insufficient", json_body(data)["detail"])
        self.assertEqual(balance(port, members[0][1]), 50)
        self.assertEqual(json_body(call(port, "GET", "/api/v1/circles/%s" % c["id"],
                                        members[0][1])[2])["pot"], 0)
        # The key is bound to that refusal, even once the money is there.
        deposit(self, port, members[0][1], 100)
        status, _, data = call(port, "POST", "/api/v1/circles/%s/contribute" % c["id"],
                               members[0][1], headers={"Idempotency-Key": "c-1"})
        self.assertEqual(status, 409, data)
        status, _, data = call(port, "POST", "/api/v1/circles/%s/contribute" % c["id"],
                               members[0][1], headers={"Idempotency-Key": "c-2"})
        self.assertEqual(status, 200, data)
        check_ledger(self, url)
        self.assertEqual(node.stop(), 0)

    def test_only_members_see_the_circle_topic_and_its_events(self):
        node, _ = self.start_node()
        port = node.port
        members = [register(port) for _ in range(2)]
        for _, token in members:
            deposit(self, port, token, 1000)
        c = started_circle(self, port, members)
        topic = "circle:" + c["id"]
        stranger = WsClient(port, register(port)[1])
        self.addCleanup(stranger.close)
        stranger.send({"op": "subscribe", "topic": topic, "id": "s"})
        answer = stranger.recv()
        self.assertEqual((answer["op"], answer["status"]), ("error", 404), answer)
        ws = WsClient(port, members[1][1])
        self.addCleanup(ws.close)
        ws.send({"op": "subscribe", "topic": topic})
        self.assertEqual(ws.recv()["op"], "subscribed")
        status, _, data = call(port, "POST", "/api/v1/circles/%s/contribute" % c["id"],
                               members[0][1])
        self.assertEqual(status, 200, data)
        events = {}
        while "contribution.received" not in events:
            frame = ws.recv()
            events[frame["event"]] = frame
        got = events["contribution.received"]["data"]
        self.assertEqual((got["user_id"], got["amount"], got["round"]), (members[0][0], 100, 1))
        ws.close()
        stranger.close()
        code = node.stop()
        self.assertEqual(code, 0, node.read_log()[-3000:])

    def test_bad_input_is_refused_with_problems(self):
        node, _ = self.start_node()
        port = node.port
        _, token = register(port)
        good = {"name": "C", "contribution_amount": 100, "frequency": "daily", "max_members": 5}
        for bad in ({"contribution_amount": 0}, {"contribution_amount": -5},
                    {"contribution_amount": 1.5}, {"contribution_amount": "100"},
                    {"frequency": "hourly"}, {"max_members": 1}, {"max_members": 101},
                    {"name": ""}, {"name": "x" * 101}, {"payout_order": "alphabetical"},
                    {"auto_payout": "yes"}, {"contribution_amount": 9223372036854775808}):
            status, headers, data = call(port, "POST", "/api/v1/circles", token, dict(good, **bad))
            self.assertIn(status, (400, 422), (bad, data))
            self.assertEqual(json_body(data)["status"], status)
        self.assertEqual(call(port, "GET", "/api/v1/circles/not-a-uuid", token)[0], 404)
        self.assertEqual(call(port, "GET", "/api/v1/circles/%s" % "0" * 1, token)[0], 404)
        missing = "00000000-0000-4000-8000-000000000000"
        self.assertEqual(call(port, "GET", "/api/v1/circles/%s" % missing, token)[0], 404)
        self.assertEqual(call(port, "POST", "/api/v1/circles/%s/join" % missing, token)[0], 404)
        self.assertEqual(call(port, "GET", "/api/v1/circles")[0], 401)
        self.assertEqual(node.stop(), 0)

    def test_a_late_contribution_is_marked_late_and_auto_payout_pays_by_itself(self):
        # A "day" of 300 ms: a daily round is due 300 ms after the start.
        node, url = self.start_node(GIGMESH_CIRCLE_DAY_MS="300")
        port = node.port
        members = [register(port) for _ in range(2)]
        for _, token in members:
            deposit(self, port, token, 1000)
        c = started_circle(self, port, members, frequency="daily", auto_payout=True)
        cid = c["id"]
        status, _, data = call(port, "POST", "/api/v1/circles/%s/contribute" % cid, members[0][1])
        self.assertEqual(status, 200, data)
        self.assertFalse(json_body(data)["late"])
        time.sleep(0.5)
        status, _, data = call(port, "POST", "/api/v1/circles/%s/contribute" % cid, members[1][1])
        self.assertEqual(status, 200, data)
        self.assertTrue(json_body(data)["late"])
        # The last contribution of the round pays the recipient by itself.
        def round_two():
            doc = json_body(call(port, "GET", "/api/v1/circles/%s" % cid, members[0][1])[2])
            return doc["current_round"] == 2 and doc["pot"] == 0
        self.assertTrue(wait_for(round_two, 10, 0.1))
        items = json_body(call(port, "GET", "/api/v1/circles/%s/members" % cid,
                               members[0][1])[2])["items"]
        late = {m["user_id"]: m["late_count"] for m in items}
        self.assertEqual(late, {members[0][0]: 0, members[1][0]: 1})
        self.assertEqual([m["received_payout"] for m in items], [True, False])
        self.assertTrue(wait_for(lambda: psql(url, PENDING) == [["0"]], 20, 0.1))
        check_ledger(self, url)
        self.assertEqual(node.stop(), 0)

    def test_members_who_have_not_paid_are_reminded_before_and_after_the_due_date(self):
        # A day of 2 s: a daily round is due 2 s after the start, and the
        # reminder goes out half a second before.
        node, url = self.start_node(GIGMESH_CIRCLE_DAY_MS="2000", GIGMESH_SAGA_SWEEP_INTERVAL_MS="300")
        port = node.port
        members = [register(port) for _ in range(3)]
        deposit(self, port, members[0][1], 1000)
        c = started_circle(self, port, members, frequency="daily")
        status, _, data = call(port, "POST", "/api/v1/circles/%s/contribute" % c["id"],
                               members[0][1])
        self.assertEqual(status, 200, data)
        listeners = {}
        for uid, token in members:
            ws = WsClient(port, token, timeout=8)
            self.addCleanup(ws.close)
            ws.send({"op": "subscribe", "topic": "user:" + uid})
            self.assertEqual(ws.recv()["op"], "subscribed")
            listeners[uid] = ws
        for uid, _ in members[1:]:
            first, second = listeners[uid].recv(), listeners[uid].recv()
            self.assertEqual((first["event"], second["event"]),
                             ("notification.new", "notification.new"))
            self.assertEqual((first["data"]["type"], second["data"]["type"]),
                             ("circle.contribution_due", "circle.contribution_overdue"))
            self.assertEqual((first["data"]["circle_id"], first["data"]["round"]), (c["id"], 1))
            self.assertLess(first["seq"], second["seq"])
        self.assertEqual(psql(url, "SELECT reminded_round, overdue_round FROM circles "
                                   "WHERE id = '%s'" % c["id"]), [["1", "1"]])
        # The member who paid heard nothing.
        listeners[members[0][0]].send({"op": "ping", "id": "p"})
        self.assertEqual(listeners[members[0][0]].recv()["op"], "pong")
        for ws in listeners.values():
            ws.close()
        self.assertEqual(node.stop(), 0)

    def test_a_due_date_that_passes_while_the_node_is_down_is_noticed_after_restart(self):
        url = fresh_database()
        env = dict(NODE_ENV, GIGMESH_CIRCLE_DAY_MS="1500", GIGMESH_SAGA_SWEEP_INTERVAL_MS="300")
        node = Node(pg_url=url, env=env)
        self.addCleanup(node.cleanup)
        node.start().wait_ready()
        members = [register(node.port) for _ in range(2)]
        c = started_circle(self, node.port, members, frequency="daily")
        self.assertEqual(node.stop(), 0)
        time.sleep(2)  # both moments pass while no node runs
        node.start().wait_ready()
        ws = WsClient(node.port, members[1][1], timeout=8)
        self.addCleanup(ws.close)
        # since_seq 0: a notice published before the subscription is replayed.
        ws.send({"op": "subscribe", "topic": "user:" + members[1][0], "since_seq": 0})
        self.assertEqual(ws.recv()["op"], "subscribed")
        # The sweep activates the circle, which says once that the round is
        # overdue (the reminder's moment passed too: one notice, not two).
        note = ws.recv()
        self.assertEqual((note["event"], note["data"]["type"], note["data"]["round"]),
                         ("notification.new", "circle.contribution_overdue", 1))
        self.assertEqual(psql(url, "SELECT reminded_round, overdue_round FROM circles "
                                   "WHERE id = '%s'" % c["id"]), [["1", "1"]])
        ws.send({"op": "ping", "id": "p"})
        self.assertEqual(ws.recv()["op"], "pong")
        ws.close()
        self.assertEqual(node.stop(), 0)

    def test_kill_9_during_transfers_contributions_and_payouts(self):
        # Mixed money load on one node: transfers between members, and
        # circles whose members contribute and whose creators pay out, while
        # the node is killed. After a restart every answered 2xx is in the
        # ledger, no contribution is counted without its money, no round is
        # paid twice, and the invariants hold with the pots.
        url = fresh_database()
        node = Node(pg_url=url, env=dict(NODE_ENV, GIGMESH_SAGA_SWEEP_INTERVAL_MS="500"))
        self.addCleanup(node.cleanup)
        node.start().wait_ready()
        port = node.port
        circles = []
        for _ in range(6):
            members = [register(port) for _ in range(5)]
            for _, token in members:
                deposit(self, port, token, 1_000_000)
            circles.append((started_circle(self, port, members, contribution_amount=1000),
                            members))
        users = [m for _, ms in circles for m in ms]
        acked = []  # (kind, id) of answered 2xx movements
        stop = threading.Event()
        deadline = time.time() + 30
        lock = threading.Lock()

        def run_circle(c, members):
            cid = c["id"]
            for _ in range(200):
                if stop.is_set() or time.time() > deadline:
                    return
                for uid, token in members:
                    try:
                        status, _, data = call(port, "POST", "/api/v1/circles/%s/contribute" % cid,
                                               token, timeout=5)
                    except OSError:
                        return
                    if status == 200:
                        with lock:
                            acked.append(("contribution", json_body(data)["id"]))
                try:
                    status, _, data = call(port, "POST", "/api/v1/circles/%s/payout" % cid,
                                           members[0][1], timeout=5)
                except OSError:
                    return
                if status == 200:
                    with lock:
                        acked.append(("payout", json_body(data)["id"]))
                    if json_body(call(port, "GET", "/api/v1/circles/%s" % cid,
                                      members[0][1])[2])["status"] == "completed":
                        return

        def run_transfers(i):
            for n in range(100000):
                if stop.is_set() or time.time() > deadline:
                    return
                uid, token = users[(i + n) % len(users)]
                to = users[(i + n + 1) % len(users)][0]
                try:
                    status, _, data = call(port, "POST", "/api/v1/wallet/transfer", token,
                                           {"to_user_id": to, "amount": 7}, timeout=5)
                except OSError:
                    return
                if status == 201:
                    with lock:
                        acked.append(("transfer", json_body(data)["id"]))

        threads = [threading.Thread(target=run_circle, args=x) for x in circles]
        threads += [threading.Thread(target=run_transfers, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        # Killed a third of the way through the circles' 150 contributions.
        self.assertTrue(wait_for(lambda: sum(1 for k, _ in acked if k == "contribution") >= 50,
                                 30, 0.01))
        node.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(30)
        kinds = {k: sum(1 for x, _ in acked if x == k) for k in ("transfer", "contribution",
                                                                 "payout")}
        print("\n  kill -9 after %s acknowledged; %s moves half done in PostgreSQL"
              % (kinds, psql(url, PENDING)[0][0]))
        node.start().wait_ready()
        self.assertTrue(wait_for(lambda: psql(url, PENDING) == [["0"]], 40, 0.2),
                        node.read_log()[-3000:])
        # Every answered movement is in the ledger: a transfer's entry id, a
        # contribution's or payout's move id.
        entries = {r[0] for r in psql(url, "SELECT id FROM ledger_entries")}
        moves = {r[0] for r in psql(url, "SELECT DISTINCT transfer_id FROM ledger_entries")}
        missing = [(k, i) for k, i in acked if i not in (entries if k == "transfer" else moves)]
        self.assertEqual(missing, [], "acknowledged movements missing after kill -9")
        # A member counts as paid for a round exactly when the pot has that
        # member's contribution to it.
        for c, members in circles:
            for uid, _ in members:
                paid = int(psql(url, "SELECT paid_round FROM circle_members WHERE circle_id = "
                                     "'%s' AND user_id = '%s'" % (c["id"], uid))[0][0])
                into_pot = int(psql(url, "SELECT count(*) FROM ledger_entries e JOIN transfers t "
                                         "ON t.id = e.transfer_id WHERE e.account = 'circle:%s' "
                                         "AND e.delta > 0 AND t.from_user = '%s'"
                                         % (c["id"], uid))[0][0])
                self.assertEqual(paid, into_pot, (c["id"], uid))
            # No round paid out twice: one payout per round, to its recipient.
            payouts = psql(url, "SELECT count(*), count(DISTINCT to_user) FROM transfers "
                                "WHERE from_user = '%s' AND move_type = 'payout' "
                                "AND state = 'settled'" % c["id"])
            received = psql(url, "SELECT count(*) FROM circle_members WHERE circle_id = '%s' "
                                 "AND received_payout" % c["id"])
            self.assertEqual(payouts[0][0], payouts[0][1])
            self.assertEqual(payouts[0][0], received[0][0])
        check_ledger(self, url)
        self.assertEqual(node.stop(), 0)


if __name__ == "__main__":
    main()
