"""The inspection console's server side, against a real node: the page is
served; `system:inspect` carries node.stats once a second and actor events
(a kill: killed, crashed, restarted; activations coalesced when many); every
passivate and kill is audited in PostgreSQL and listed; a wallet's balance
is shown beside its ledger's sum; the actor list sorts and pages; the CLI's
top, inspect, tree, kill and audit work against the node. Admins only."""

import re
import json
import os
import subprocess
import time
import unittest

from harness import json_body, main, psql, wait_for
from wsclient import WsClient
from test_circles import deposit
from test_wallet import call, login_admin, register, start_fresh_node


def subscribe(test, port, token, topic="system:inspect"):
    ws = WsClient(port, token, timeout=10)
    test.addCleanup(ws.close)
    test.assertEqual(ws.status, 101, ws.head)
    ws.send({"op": "subscribe", "topic": topic})
    return ws, ws.recv()


def events_until(ws, pred, timeout):
    """Frames read until pred(frame) holds (returned last), within `timeout`."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            m = ws.recv()
        except OSError:
            break
        seen.append(m)
        if pred(m):
            return seen
    return seen


def ctl(port, token, *args, timeout=30):
    env = dict(os.environ, GIGMESH_TOKEN=token, GIGMESH_URL="http://127.0.0.1:%d" % port)
    return subprocess.run([os.environ["GIGMESH_BIN"], "ctl", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


class ConsoleTest(unittest.TestCase):
    start_node = start_fresh_node

    def setUp(self):
        self.node, self.url = self.start_node(GIGMESH_ENTITY_IDLE_TIMEOUT_MS="60000")
        self.port = self.node.port
        self.admin = login_admin(self.port)

    def test_the_page_is_served_with_its_labels(self):
        status, headers, body = call(self.port, "GET", "/console")
        self.assertEqual(status, 200)
        page = body.decode()
        self.assertIn("text/html", headers.get("Content-Type", headers.get("content-type", "")))
        for label in ("Phone or email", "Password", "Sign in", "Actor"):
            self.assertIn(label, page)
        for asset, kind in (("/console/console.js", "javascript"), ("/console/console.css", "css")):
            status, headers, body = call(self.port, "GET", asset)
            self.assertEqual(status, 200, asset)
            self.assertGreater(len(body), 1000, asset)
            self.assertIn(kind, str(headers).lower())

    def test_admins_only(self):
        _, client = register(self.port, "client")
        for method, path in (("GET", "/api/v1/admin/actors"), ("GET", "/api/v1/admin/audit"),
                             ("POST", "/api/v1/admin/actors/wallet/"
                                      "00000000-0000-4000-8000-000000000000/kill")):
            status, _, _ = call(self.port, method, path, client)
            self.assertEqual(status, 403, path)
        _, reply = subscribe(self, self.port, client)
        self.assertEqual((reply.get("op"), reply.get("status")), ("error", 403), reply)

    def test_stats_every_second_and_a_kill_seen_live_and_audited(self):
        uid, tc = register(self.port, "client")
        deposit(self, self.port, tc, 5000)
        ws, reply = subscribe(self, self.port, self.admin)
        self.assertEqual(reply.get("op"), "subscribed", reply)
        # node.stats once a second, with the live wallet among the actors.
        seen = events_until(ws, lambda m: m.get("event") == "node.stats"
                            and m["data"]["actors_by_type"].get("wallet", 0) >= 1, 5)
        stats = seen[-1]
        self.assertEqual(stats.get("event"), "node.stats", seen[-3:])
        data = stats["data"]
        for key in ("node", "actors_by_type", "messages_per_s_by_type", "journal", "ws", "http"):
            self.assertIn(key, data)
        self.assertEqual(data["node"]["status"], "up")
        self.assertGreaterEqual(data["ws"]["sessions"], 1)

        # The wallet, with its balance beside the ledger's sum.
        status, _, body = call(self.port, "GET", "/api/v1/admin/actors/wallet/" + uid, self.admin)
        self.assertEqual(status, 200, body)
        doc = json_body(body)
        self.assertEqual(doc["ledger"]["balance"], 5000)
        self.assertEqual(doc["ledger"]["entries_balance"], 5000)
        self.assertTrue(doc["ledger"]["agrees"], doc["ledger"])
        restarts = doc["restarts"]

        # Kill it from "the console": killed, crashed, restarted arrive live;
        # the restart count goes up; the audit has it, in PostgreSQL too.
        status, _, body = call(self.port, "POST", "/api/v1/admin/actors/wallet/%s/kill" % uid,
                               self.admin, headers={"X-Gigmesh-Client": "console"})
        self.assertEqual(status, 202, body)
        self.assertTrue(json_body(body)["audited"])
        names = set()

        def about_it(m):
            if m.get("data", {}).get("id") == uid:
                names.add(m["event"])
            return {"actor.killed", "actor.crashed", "actor.restarted"} <= names
        events_until(ws, about_it, 5)
        self.assertLessEqual({"actor.killed", "actor.crashed", "actor.restarted"}, names)
        again = wait_for(lambda: (lambda r: r[0] == 200 and json_body(r[2]))(
            call(self.port, "GET", "/api/v1/admin/actors/wallet/" + uid, self.admin)), 5)
        self.assertEqual(again["restarts"], restarts + 1)
        self.assertTrue(again["ledger"]["agrees"])
        status, _, body = call(self.port, "GET", "/api/v1/admin/audit", self.admin)
        self.assertEqual(status, 200, body)
        first = json_body(body)["items"][0]
        self.assertEqual((first["action"], first["target"], first["via"], first["result"]),
                         ("kill", "wallet:" + uid, "console", "accepted"))
        self.assertEqual(psql(self.url, "SELECT count(*) FROM admin_audit WHERE action = 'kill' "
                                        "AND target_id = '%s'" % uid), [["1"]])
        # A passivate of an actor that is not live is audited too (not_live).
        status, _, _ = call(self.port, "POST", "/api/v1/admin/actors/wallet/%s/passivate"
                            % "00000000-0000-4000-8000-000000000000", self.admin)
        self.assertEqual(status, 404)
        results = [i["result"] for i in json_body(
            call(self.port, "GET", "/api/v1/admin/audit", self.admin)[2])["items"]]
        self.assertEqual(results[:2], ["not_live", "accepted"])

    def test_many_activations_are_summed_up_not_streamed(self):
        ws, _ = subscribe(self, self.port, self.admin)
        users = [register(self.port, "client") for _ in range(50)]
        for _, token in users:
            call(self.port, "GET", "/api/v1/wallet", token)
        seen = events_until(ws, lambda m: m.get("event") == "actor.summary" and "wallet" in
                            m["data"]["counts"].get("actor.activated", {}), 8)
        summary = seen[-1]
        self.assertEqual(summary.get("event"), "actor.summary", [m.get("event") for m in seen])
        # More than 20 events in its second; the activations counted by kind.
        self.assertGreater(summary["data"]["events"], 20)
        self.assertIn("wallet", summary["data"]["counts"]["actor.activated"])

    def test_actors_sort_and_page(self):
        for _ in range(6):
            _, token = register(self.port, "client")
            call(self.port, "GET", "/api/v1/wallet", token)
        status, _, body = call(self.port, "GET", "/api/v1/admin/actors?type=wallet&sort=idle",
                               self.admin)
        self.assertEqual(status, 200, body)
        idles = [i["idle_ms"] for i in json_body(body)["items"]]
        self.assertEqual(idles, sorted(idles, reverse=True))
        # Pages, by a key that stands still (restarts: all 0, then by id).
        status, _, body = call(self.port, "GET",
                               "/api/v1/admin/actors?type=wallet&sort=restarts&limit=4", self.admin)
        self.assertEqual(status, 200, body)
        page = json_body(body)
        self.assertGreaterEqual(page["total"], 6)
        self.assertEqual(len(page["items"]), 4)
        self.assertIsNotNone(page["next_cursor"])
        status, _, body = call(self.port, "GET", "/api/v1/admin/actors?type=wallet&sort=restarts"
                               "&limit=4&cursor=" + page["next_cursor"], self.admin)
        rest = json_body(body)["items"]
        self.assertGreaterEqual(len(rest), 2)
        self.assertFalse({i["id"] for i in rest} & {i["id"] for i in page["items"]})
        status, _, body = call(self.port, "GET", "/api/v1/admin/actors?sort=messages", self.admin)
        items = json_body(body)["items"]
        self.assertTrue(all("messages" in i and "mailbox" in i for i in items))
        counts = [i["messages"] for i in items]
        self.assertEqual(counts, sorted(counts, reverse=True))
        self.assertEqual(call(self.port, "GET", "/api/v1/admin/actors?sort=bogus", self.admin)[0], 400)

    def test_what_the_console_shows_is_in_metrics(self):
        _, token = register(self.port, "client")
        for _ in range(3):
            call(self.port, "GET", "/api/v1/wallet", token)
        text = call(self.port, "GET", "/metrics")[2].decode()
        for family in ("gigmesh_entities", "gigmesh_entity_messages_total",
                       "gigmesh_entity_restarts_total"):
            self.assertRegex(text, family + r'\{[^}]*type="wallet"[^}]*\} \d', family)
        # The mailbox-depth histogram: every wallet command observed once.
        count = re.search(r'gigmesh_entity_mailbox_depth_count\{type="wallet"\} (\d+)', text)
        self.assertIsNotNone(count, "no mailbox-depth histogram for wallets")
        self.assertGreaterEqual(int(count.group(1)), 3)
        self.assertIn('gigmesh_entity_mailbox_depth_bucket{type="wallet",le="0"}', text)

    def test_the_cli(self):
        uid, tc = register(self.port, "client")
        deposit(self, self.port, tc, 700)
        r = ctl(self.port, self.admin, "inspect", "wallet:" + uid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("wallet:" + uid, r.stdout)
        self.assertIn("agrees", r.stdout)
        r = ctl(self.port, self.admin, "--json", "inspect", "wallet:" + uid)
        self.assertEqual(json.loads(r.stdout)["ledger"]["balance"], 700)
        r = ctl(self.port, self.admin, "top", "--count", "2", "--interval", "0.3", "--sort", "messages")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("live actors", r.stdout)
        self.assertIn(uid, r.stdout)
        self.assertEqual(r.stdout.count("gigmesh top"), 2)
        r = ctl(self.port, self.admin, "--json", "top", "--count", "1")
        self.assertIn("wallet", json.loads(r.stdout.splitlines()[0])["actors"]["counts_by_type"])
        r = ctl(self.port, self.admin, "tree")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("root", r.stdout)
        self.assertIn("shard:wallet", r.stdout)
        r = ctl(self.port, self.admin, "kill", "wallet:" + uid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("accepted", r.stdout)
        r = ctl(self.port, self.admin, "audit")
        self.assertIn("cli", r.stdout)
        self.assertIn("wallet:" + uid, r.stdout)
        r = ctl(self.port, self.admin, "inspect", "wallet:00000000-0000-4000-8000-000000000000")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not live", r.stderr)
        _, client = register(self.port, "client")
        r = ctl(self.port, client, "tree")
        self.assertEqual(r.returncode, 1)
        self.assertIn("403", r.stderr)


if __name__ == "__main__":
    main()
