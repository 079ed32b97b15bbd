"""The gig marketplace end to end against a real node and PostgreSQL: gigs
and proposals (full-text search, paging, owners' rules, roles), contracts
with escrow through the money mechanism (accept locks, approve releases,
dispute freezes, an admin resolves each way), the delivery deadline
releasing by itself across a restart, reviews once per party and the
profile's rating, notifications and topic authorization over WebSocket,
and kill -9 under mixed load leaving no escrow half moved and the SQL
invariants holding."""

import random
import signal
import sys
import threading
import time
import unittest
import uuid

from harness import Node, json_body, main, psql, wait_for
from wsclient import WsClient
from test_circles import deposit
from test_wallet import (NODE_ENV, call, check_ledger, fresh_database, login_admin, register,
                         start_fresh_node)


def wallet(port, token):
    return json_body(call(port, "GET", "/api/v1/wallet", token)[2])


def post_gig(test, port, token, **fields):
    body = dict({"title": "Logo design for a bakery", "description": "A clean logo, two drafts.",
                 "category": "design", "budget_min": 1000, "budget_max": 5000}, **fields)
    status, _, data = call(port, "POST", "/api/v1/gigs", token, body)
    test.assertEqual(status, 201, data)
    return json_body(data)


def propose(test, port, token, gig_id, price=3000, days=5):
    status, _, data = call(port, "POST", "/api/v1/gigs/%s/proposals" % gig_id, token,
                           {"cover_letter": "I design logos.", "proposed_price": price,
                            "delivery_days": days})
    test.assertEqual(status, 201, data)
    return json_body(data)


def accept(port, token, gig_id, pid, key=None):
    headers = {"Idempotency-Key": key} if key else None
    return call(port, "POST", "/api/v1/gigs/%s/accept/%s" % (gig_id, pid), token, headers=headers)


def step(port, token, cid, what, body=None, key=None):
    headers = {"Idempotency-Key": key} if key else None
    return call(port, "POST", "/api/v1/contracts/%s/%s" % (cid, what), token, body, headers=headers)


def types_of(port, token):
    status, _, data = call(port, "GET", "/api/v1/wallet/transactions?limit=200", token)
    assert status == 200, data
    return [t["type"] for t in json_body(data)["items"]]


def check_escrow(test, url):
    """Every wallet's escrow is the sum of its escrow account's entries,
    and equals the agreed prices of its contracts that hold escrow."""
    bad = psql(url, """
        SELECT w.id, w.escrow_balance, coalesce(sum(e.delta), 0)
        FROM wallets w LEFT JOIN ledger_entries e ON e.account = 'escrow:' || w.id
        GROUP BY w.id, w.escrow_balance HAVING w.escrow_balance <> coalesce(sum(e.delta), 0)""")
    test.assertEqual(bad, [], "escrows that are not the sum of their entries")
    held = psql(url, """
        SELECT w.user_id, w.escrow_balance, coalesce((SELECT sum(agreed_price) FROM contracts c
          WHERE c.client_id = w.user_id AND c.status IN ('active', 'delivered', 'disputed')), 0)
        FROM wallets w""")
    for user, escrow, owed in held:
        test.assertEqual(int(escrow), int(owed), "escrow of %s is not its open contracts' prices" % user)


class GigTest(unittest.TestCase):

    start_node = start_fresh_node

    def contract(self, port, client, hustler, price=3000, fund=10000):
        """A gig of client's with hustler's proposal accepted: the contract."""
        if fund:
            deposit(self, port, client[1], fund)
        gig = post_gig(self, port, client[1])
        prop = propose(self, port, hustler[1], gig["id"], price)
        status, _, data = accept(port, client[1], gig["id"], prop["id"])
        self.assertEqual(status, 201, data)
        return json_body(data)

    def test_the_whole_loop_moves_the_escrow_and_reviews_once(self):
        node, url = self.start_node()
        port = node.port
        client = register(port, "client")
        hustler = register(port, "hustler")
        other = register(port, "hustler")
        deposit(self, port, client[1], 10000)
        gig = post_gig(self, port, client[1], deadline="2027-01-31T18:00:00Z")
        self.assertEqual((gig["status"], gig["client_id"], gig["deadline"]),
                         ("open", client[0], "2027-01-31T18:00:00.000Z"))
        prop = propose(self, port, hustler[1], gig["id"], price=3000)
        propose(self, port, other[1], gig["id"], price=2500)
        self.assertEqual(prop["status"], "pending")
        status, _, data = call(port, "GET", "/api/v1/gigs/%s/proposals" % gig["id"], client[1])
        self.assertEqual(status, 200, data)
        self.assertEqual(len(json_body(data)["items"]), 2)
        # Accept: 201 contract, 3000 moved from available to escrow, the gig
        # closed, the other proposal rejected.
        status, _, data = accept(port, client[1], gig["id"], prop["id"], key="acc-1")
        self.assertEqual(status, 201, data)
        c = json_body(data)
        self.assertEqual((c["status"], c["agreed_price"], c["client_id"], c["hustler_id"],
                          c["gig_id"]), ("active", 3000, client[0], hustler[0], gig["id"]))
        w = wallet(port, client[1])
        self.assertEqual((w["balance"], w["escrow_balance"]), (7000, 3000))
        # The same key again: the first answer; nothing moves twice.
        status, _, again = accept(port, client[1], gig["id"], prop["id"], key="acc-1")
        self.assertEqual((status, json_body(again)["id"]), (201, c["id"]))
        self.assertEqual(wallet(port, client[1])["escrow_balance"], 3000)
        status, _, data = call(port, "GET", "/api/v1/gigs/%s" % gig["id"], client[1])
        self.assertEqual(json_body(data)["status"], "closed")
        status, _, data = call(port, "GET", "/api/v1/gigs/%s/proposals" % gig["id"], client[1])
        states = {p["hustler_id"]: p["status"] for p in json_body(data)["items"]}
        self.assertEqual(states, {hustler[0]: "accepted", other[0]: "rejected"})
        # Closed: no more proposals, edits, deletes or accepts.
        status, _, _ = call(port, "POST", "/api/v1/gigs/%s/proposals" % gig["id"], other[1],
                            {"cover_letter": "x", "proposed_price": 1, "delivery_days": 1})
        self.assertEqual(status, 409)
        self.assertEqual(call(port, "PUT", "/api/v1/gigs/%s" % gig["id"], client[1],
                              {"title": "new"})[0], 409)
        self.assertEqual(call(port, "DELETE", "/api/v1/gigs/%s" % gig["id"], client[1])[0], 409)
        self.assertEqual(accept(port, client[1], gig["id"], prop["id"])[0], 409)
        # Steps: who and when.
        cid = c["id"]
        self.assertEqual(step(port, client[1], cid, "deliver", {})[0], 403)
        self.assertEqual(step(port, client[1], cid, "approve")[0], 409)  # not delivered
        self.assertEqual(step(port, other[1], cid, "deliver", {})[0], 404)  # a stranger
        self.assertEqual(call(port, "GET", "/api/v1/contracts/%s" % cid, other[1])[0], 404)
        status, _, data = step(port, hustler[1], cid, "deliver", {"note": "drafts attached"})
        self.assertEqual(status, 200, data)
        d = json_body(data)
        self.assertEqual((d["status"], d["delivery_note"]), ("delivered", "drafts attached"))
        self.assertGreater(d["version"], c["version"])
        self.assertIn("auto_release_at", d)
        self.assertEqual(step(port, hustler[1], cid, "deliver", {})[0], 409)
        self.assertEqual(step(port, hustler[1], cid, "approve")[0], 403)
        status, _, data = step(port, client[1], cid, "approve", key="appr-1")
        self.assertEqual(status, 200, data)
        self.assertEqual(json_body(data)["status"], "completed")
        self.assertEqual(step(port, client[1], cid, "approve", key="appr-1")[0], 200)  # replay
        self.assertEqual(step(port, client[1], cid, "approve")[0], 409)  # double approve
        self.assertEqual((wallet(port, client[1])["balance"], wallet(port, client[1])["escrow_balance"]),
                         (7000, 0))
        self.assertEqual(wallet(port, hustler[1])["balance"], 3000)
        self.assertIn("escrow_lock", types_of(port, client[1]))
        self.assertIn("escrow_release", types_of(port, client[1]))
        self.assertEqual(types_of(port, hustler[1]), ["escrow_release"])
        # Reviews: each party once, rating 1..5; the profile's rating.
        self.assertEqual(step(port, client[1], cid, "review", {"rating": 6})[0], 422)
        status, _, data = step(port, client[1], cid, "review", {"rating": 5, "text": "great"})
        self.assertEqual(status, 201, data)
        self.assertEqual((json_body(data)["reviewee_id"], json_body(data)["rating"]), (hustler[0], 5))
        self.assertEqual(step(port, client[1], cid, "review", {"rating": 4})[0], 409)
        self.assertEqual(step(port, hustler[1], cid, "review", {"rating": 4})[0], 201)
        self.assertEqual(step(port, other[1], cid, "review", {"rating": 4})[0], 404)
        profile = json_body(call(port, "GET", "/api/v1/users/%s" % hustler[0], other[1])[2])
        self.assertEqual((profile["rating"], profile["rating_count"]), (5, 1))
        self.assertNotIn("phone", profile)
        # Lists: both parties see it.
        for who in (client, hustler):
            status, _, data = call(port, "GET", "/api/v1/contracts", who[1])
            self.assertEqual([x["id"] for x in json_body(data)["items"]], [cid])
        self.assertEqual(json_body(call(port, "GET", "/api/v1/contracts", other[1])[2])["items"], [])
        check_ledger(self, url)
        check_escrow(self, url)

    def test_accept_without_funds_changes_nothing(self):
        node, url = self.start_node()
        port = node.port
        client = register(port, "client")
        hustler = register(port, "hustler")
        deposit(self, port, client[1], 1000)
        gig = post_gig(self, port, client[1])
        prop = propose(self, port, hustler[1], gig["id"], price=3000)
        status, _, data = accept(port, client[1], gig["id"], prop["id"], key="k1")
        self.assertEqual(status, 409, data)
        self.assertEqual(json_body(data)["status"], 409)
        w = wallet(port, client[1])
        self.assertEqual((w["balance"], w["escrow_balance"]), (1000, 0))
        gig_now = json_body(call(port, "GET", "/api/v1/gigs/%s" % gig["id"], client[1])[2])
        self.assertEqual(gig_now["status"], "open")
        self.assertEqual(json_body(call(port, "GET", "/api/v1/contracts", client[1])[2])["items"], [])
        self.assertEqual(types_of(port, client[1]), ["deposit"])
        # With money, the same proposal is accepted (a new key).
        deposit(self, port, client[1], 5000)
        status, _, data = accept(port, client[1], gig["id"], prop["id"], key="k2")
        self.assertEqual(status, 201, data)
        check_ledger(self, url)
        check_escrow(self, url)

    def test_roles_and_owners(self):
        node, _ = self.start_node()
        port = node.port
        client = register(port, "client")
        client2 = register(port, "client")
        hustler = register(port, "hustler")
        body = {"title": "t", "description": "d", "category": "c", "budget_min": 1, "budget_max": 2}
        self.assertEqual(call(port, "POST", "/api/v1/gigs", hustler[1], body)[0], 403)
        self.assertEqual(call(port, "POST", "/api/v1/gigs", client[1],
                              dict(body, budget_min=3))[0], 422)
        self.assertEqual(call(port, "POST", "/api/v1/gigs", client[1],
                              dict(body, budget_min=0))[0], 422)
        self.assertEqual(call(port, "POST", "/api/v1/gigs", client[1],
                              dict(body, budget_max=1.5))[0], 400)
        self.assertEqual(call(port, "POST", "/api/v1/gigs", client[1],
                              dict(body, title="x" * 201))[0], 422)
        self.assertEqual(call(port, "POST", "/api/v1/gigs", client[1],
                              dict(body, deadline="tomorrow"))[0], 422)
        self.assertEqual(call(port, "POST", "/api/v1/gigs", client[1], "{bad")[0], 400)
        gig = post_gig(self, port, client[1])
        prop_body = {"cover_letter": "c", "proposed_price": 10, "delivery_days": 2}
        self.assertEqual(call(port, "POST", "/api/v1/gigs/%s/proposals" % gig["id"], client2[1],
                              prop_body)[0], 403)
        self.assertEqual(call(port, "POST", "/api/v1/gigs/%s/proposals" % gig["id"], hustler[1],
                              dict(prop_body, proposed_price=-1))[0], 422)
        prop = propose(self, port, hustler[1], gig["id"])
        self.assertEqual(call(port, "POST", "/api/v1/gigs/%s/proposals" % gig["id"], hustler[1],
                              prop_body)[0], 409)  # once per hustler
        self.assertEqual(call(port, "GET", "/api/v1/gigs/%s/proposals" % gig["id"],
                              client2[1])[0], 403)
        self.assertEqual(call(port, "PUT", "/api/v1/gigs/%s" % gig["id"], client2[1],
                              {"title": "mine"})[0], 403)
        self.assertEqual(accept(port, client2[1], gig["id"], prop["id"])[0], 403)
        self.assertEqual(accept(port, client[1], gig["id"], str(uuid.uuid4()))[0], 404)
        self.assertEqual(call(port, "GET", "/api/v1/gigs/%s" % uuid.uuid4(), client[1])[0], 404)
        self.assertEqual(call(port, "GET", "/api/v1/contracts/not-an-id", client[1])[0], 404)
        status, _, data = call(port, "PUT", "/api/v1/gigs/%s" % gig["id"], client[1],
                               {"title": "Logo and banner", "budget_max": 9000})
        self.assertEqual(status, 200, data)
        self.assertEqual((json_body(data)["title"], json_body(data)["budget_max"]),
                         ("Logo and banner", 9000))
        self.assertEqual(call(port, "PUT", "/api/v1/gigs/%s" % gig["id"], client[1],
                              {"budget_min": 10000})[0], 422)
        other = post_gig(self, port, client[1])
        self.assertEqual(call(port, "DELETE", "/api/v1/gigs/%s" % other["id"], client2[1])[0], 403)
        self.assertEqual(call(port, "DELETE", "/api/v1/gigs/%s" % other["id"], client[1])[0], 204)
        self.assertEqual(call(port, "GET", "/api/v1/gigs/%s" % other["id"], client[1])[0], 404)

    def test_search_filters_and_pages(self):
        node, url = self.start_node()
        port = node.port
        client = register(port, "client")
        post_gig(self, port, client[1], title="Plumbing repairs in Westlands",
                 description="Fix a leaking kitchen sink", category="home")
        post_gig(self, port, client[1], title="Website for a restaurant",
                 description="Menus and bookings; plumbing of the payment API", category="tech")
        for i in range(5):
            post_gig(self, port, client[1], title="Delivery help %d" % i,
                     description="Carry boxes", category="errands")
        status, _, data = call(port, "GET", "/api/v1/gigs?q=plumber", client[1])
        self.assertEqual(status, 200, data)
        items = json_body(data)["items"]
        # Stemmed (plumber ~ plumbing? no: plumb-er stems to "plumber"); use plumbing.
        status, _, data = call(port, "GET", "/api/v1/gigs?q=plumbing", client[1])
        items = json_body(data)["items"]
        self.assertEqual([g["category"] for g in items], ["home", "tech"])  # title match ranks first
        status, _, data = call(port, "GET", "/api/v1/gigs?q=repair", client[1])
        self.assertEqual([g["category"] for g in json_body(data)["items"]], ["home"])  # stemmed
        status, _, data = call(port, "GET", "/api/v1/gigs?q=plumbing&category=tech", client[1])
        self.assertEqual([g["category"] for g in json_body(data)["items"]], ["tech"])
        seen = []
        cursor = None
        for _ in range(10):
            path = "/api/v1/gigs?category=errands&limit=2" + ("&cursor=" + cursor if cursor else "")
            page = json_body(call(port, "GET", path, client[1])[2])
            seen += [g["title"] for g in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, ["Delivery help %d" % i for i in range(4, -1, -1)])
        self.assertEqual(call(port, "GET", "/api/v1/gigs?status=gone", client[1])[0], 400)
        self.assertEqual(call(port, "GET", "/api/v1/gigs?cursor=x", client[1])[0], 400)
        status, _, data = call(port, "GET", "/api/v1/gigs?q=%22unbalanced%20%21%20%26", client[1])
        self.assertEqual(status, 200, data)
        self.assertEqual(len(json_body(call(port, "GET", "/api/v1/gigs?status=open", client[1])[2])
                             ["items"]), 7)

    def test_disputes_resolved_each_way_by_an_admin(self):
        node, url = self.start_node()
        port = node.port
        admin = login_admin(port)
        client = register(port, "client")
        hustler = register(port, "hustler")
        c1 = self.contract(port, client, hustler, price=2000, fund=10000)
        c2 = self.contract(port, client, hustler, price=3000, fund=0)
        self.assertEqual(wallet(port, client[1])["escrow_balance"], 5000)
        # c1: disputed while active by the hustler, resolved to the hustler.
        self.assertEqual(step(port, hustler[1], c1["id"], "dispute", {})[0], 422)  # reason
        status, _, data = step(port, hustler[1], c1["id"], "dispute", {"reason": "no reply"})
        self.assertEqual((status, json_body(data)["status"]), (200, "disputed"), data)
        self.assertEqual(step(port, client[1], c1["id"], "approve")[0], 409)  # frozen
        self.assertEqual(step(port, client[1], c1["id"], "resolve",
                              {"release_to": "client"})[0], 403)
        self.assertEqual(step(port, admin, c1["id"], "resolve", {"release_to": "nobody"})[0], 422)
        status, _, data = step(port, admin, c1["id"], "resolve", {"release_to": "hustler"},
                               key="res-1")
        self.assertEqual((status, json_body(data)["status"]), (200, "completed"), data)
        self.assertEqual(json_body(data)["resolution"], "hustler")
        # c2: delivered, disputed by the client, refunded.
        # A delivery's body is all optional: it may be left out entirely.
        status, _, data = call(port, "POST", "/api/v1/contracts/%s/deliver" % c2["id"], hustler[1])
        self.assertEqual(status, 200, data)
        status, _, data = step(port, client[1], c2["id"], "dispute", {"reason": "not done"})
        self.assertEqual(status, 200, data)
        self.assertEqual(step(port, admin, c2["id"], "resolve", {"release_to": "client"})[0], 200)
        self.assertEqual(step(port, admin, c2["id"], "resolve", {"release_to": "client"})[0], 409)
        c2_now = json_body(call(port, "GET", "/api/v1/contracts/%s" % c2["id"], admin)[2])
        self.assertEqual(c2_now["status"], "refunded")
        w = wallet(port, client[1])
        self.assertEqual((w["balance"], w["escrow_balance"]), (8000, 0))
        self.assertEqual(wallet(port, hustler[1])["balance"], 2000)
        self.assertIn("escrow_refund", types_of(port, client[1]))
        self.assertEqual(step(port, client[1], c2["id"], "review", {"rating": 1})[0], 201)
        check_ledger(self, url)
        check_escrow(self, url)

    def test_concurrent_accepts_and_approvals_move_the_escrow_once(self):
        node, url = self.start_node()
        port = node.port
        client = register(port, "client")
        hustlers = [register(port, "hustler") for _ in range(6)]
        deposit(self, port, client[1], 100000)
        gig = post_gig(self, port, client[1])
        props = [propose(self, port, h[1], gig["id"], price=1000 + i)
                 for i, h in enumerate(hustlers)]
        results = [None] * len(props)

        def go(i):
            results[i] = accept(port, client[1], gig["id"], props[i]["id"])
        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(props))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r[0] for r in results)
        self.assertEqual(statuses.count(201), 1, statuses)
        self.assertTrue(all(s == 409 for s in statuses if s != 201), statuses)
        c = json_body([r for r in results if r[0] == 201][0][2])
        w = wallet(port, client[1])
        self.assertEqual((w["balance"], w["escrow_balance"]),
                         (100000 - c["agreed_price"], c["agreed_price"]))
        winner = [h for h in hustlers if h[0] == c["hustler_id"]][0]
        self.assertEqual(step(port, winner[1], c["id"], "deliver", {})[0], 200)
        answers = [None] * 6

        def approve(i):
            answers[i] = step(port, client[1], c["id"], "approve", key="k%d" % i)[0]
        threads = [threading.Thread(target=approve, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(answers.count(200), 1, answers)
        self.assertTrue(all(a == 409 for a in answers if a != 200), answers)
        self.assertEqual(wallet(port, winner[1])["balance"], c["agreed_price"])
        self.assertEqual(wallet(port, client[1])["escrow_balance"], 0)
        check_ledger(self, url)
        check_escrow(self, url)

    def test_a_release_the_hustler_cannot_hold_changes_nothing(self):
        node, url = self.start_node()
        port = node.port
        client = register(port, "client")
        hustler = register(port, "hustler")
        big = 2**63 - 1 - 50
        deposit(self, port, hustler[1], big)
        c = self.contract(port, client, hustler, price=100, fund=1000)
        self.assertEqual(step(port, hustler[1], c["id"], "deliver", {})[0], 200)
        status, _, data = step(port, client[1], c["id"], "approve", key="a1")
        self.assertEqual(status, 409, data)
        self.assertEqual(step(port, client[1], c["id"], "approve", key="a1")[0], 409)  # replay
        doc = json_body(call(port, "GET", "/api/v1/contracts/%s" % c["id"], client[1])[2])
        self.assertEqual(doc["status"], "delivered")
        w = wallet(port, client[1])
        self.assertEqual((w["balance"], w["escrow_balance"]), (900, 100))
        self.assertEqual(wallet(port, hustler[1])["balance"], big)
        # The client's list: the lock from the available balance, the
        # release out of escrow and its reversal back, both marked escrow.
        items = json_body(call(port, "GET", "/api/v1/wallet/transactions", client[1])[2])["items"]
        self.assertEqual([(t["type"], t["account"]) for t in items],
                         [("reversal", "escrow"), ("escrow_release", "escrow"),
                          ("escrow_lock", "available"), ("deposit", "available")])
        # The hustler makes room; the approval goes through.
        status, _, data = call(port, "POST", "/api/v1/wallet/withdraw", hustler[1], {"amount": 1000})
        self.assertEqual(status, 201, data)
        self.assertEqual(step(port, client[1], c["id"], "approve", key="a2")[0], 200)
        self.assertEqual(wallet(port, hustler[1])["balance"], big - 1000 + 100)
        check_ledger(self, url)
        check_escrow(self, url)

    def test_notifications_and_topic_authorization(self):
        node, _ = self.start_node()
        port = node.port
        client = register(port, "client")
        hustler = register(port, "hustler")
        stranger = register(port, "hustler")
        cws = WsClient(port, client[1])
        hws = WsClient(port, hustler[1])
        sws = WsClient(port, stranger[1])
        for ws, uid in ((cws, client[0]), (hws, hustler[0])):
            ws.send({"op": "subscribe", "topic": "user:%s" % uid})
            self.assertEqual(ws.recv()["op"], "subscribed")
        deposit(self, port, client[1], 5000)
        gig = post_gig(self, port, client[1])
        prop = propose(self, port, hustler[1], gig["id"], price=1000)

        def note(ws, kind):
            for _ in range(20):
                m = ws.recv()
                if m.get("event") == "notification.new" and m["data"]["type"] == kind:
                    return m["data"]
            self.fail("no %s" % kind)
        self.assertEqual(note(cws, "proposal.received")["proposal_id"], prop["id"])
        status, _, data = accept(port, client[1], gig["id"], prop["id"])
        cid = json_body(data)["id"]
        self.assertEqual(note(hws, "proposal.accepted")["contract_id"], cid)
        cws.send({"op": "subscribe", "topic": "contract:%s" % cid})
        self.assertEqual(cws.recv()["op"], "subscribed")
        sws.send({"op": "subscribe", "topic": "contract:%s" % cid})
        err = sws.recv()
        self.assertEqual((err["op"], err["status"]), ("error", 404))
        step(port, hustler[1], cid, "deliver", {})
        self.assertEqual(note(cws, "contract.delivered")["contract_id"], cid)
        step(port, client[1], cid, "approve")
        self.assertEqual(note(hws, "contract.approved")["contract_id"], cid)
        updates = []
        for _ in range(20):
            m = cws.recv()
            if m.get("event") == "contract.updated":
                updates.append(m)
                if m["data"]["status"] == "completed":
                    break
        self.assertEqual([u["data"]["status"] for u in updates][-1], "completed")
        self.assertEqual(sorted(u["seq"] for u in updates), [u["seq"] for u in updates])
        for ws in (cws, hws, sws):
            ws.close()

    def test_the_deadline_releases_by_itself_across_a_restart(self):
        url = fresh_database()
        env = dict(NODE_ENV, GIGMESH_ENTITY_IDLE_TIMEOUT_MS="400",
                   GIGMESH_CONTRACT_AUTO_RELEASE_MS="4000", GIGMESH_SAGA_SWEEP_INTERVAL_MS="500")
        node = Node(pg_url=url, env=env)
        self.addCleanup(node.cleanup)
        node.start().wait_ready()
        port = node.port
        client = register(port, "client")
        hustler = register(port, "hustler")
        c = self.contract(port, client, hustler, price=1500, fund=2000)
        self.assertEqual(step(port, hustler[1], c["id"], "deliver", {})[0], 200)
        # The node stops before the deadline; it is down when it passes.
        node.stop()
        time.sleep(4.5)
        node.start().wait_ready()
        port = node.port
        # Nobody asks for the contract: the sweep finds it.
        ok = wait_for(lambda: psql(url, "SELECT status FROM contracts WHERE id = '%s'" % c["id"])
                      == [["completed"]], 15, 0.2)
        self.assertTrue(ok, psql(url, "SELECT status, settling FROM contracts"))
        self.assertEqual(wallet(port, hustler[1])["balance"], 1500)
        doc = json_body(call(port, "GET", "/api/v1/contracts/%s" % c["id"], client[1])[2])
        self.assertEqual((doc["status"], doc["resolution"]), ("completed", "auto"))
        check_ledger(self, url)
        check_escrow(self, url)

    def test_the_deadline_releases_a_live_contract(self):
        node, url = self.start_node(GIGMESH_CONTRACT_AUTO_RELEASE_MS="1500",
                                    GIGMESH_SAGA_SWEEP_INTERVAL_MS="500")
        port = node.port
        client = register(port, "client")
        hustler = register(port, "hustler")
        c = self.contract(port, client, hustler, price=700, fund=700)
        hws = WsClient(port, hustler[1])
        hws.send({"op": "subscribe", "topic": "user:%s" % hustler[0]})
        hws.recv()
        self.assertEqual(step(port, hustler[1], c["id"], "deliver", {})[0], 200)
        for _ in range(20):
            m = hws.recv()
            if m.get("event") == "notification.new" and m["data"]["type"] == "contract.auto_released":
                break
        else:
            self.fail("no auto-release notification")
        hws.close()
        self.assertEqual(wallet(port, hustler[1])["balance"], 700)
        check_ledger(self, url)

    def test_kill_9_under_mixed_load_leaves_no_escrow_half_moved(self):
        url = fresh_database()
        env = dict(NODE_ENV, GIGMESH_SAGA_SWEEP_INTERVAL_MS="500")
        node = Node(pg_url=url, env=env)
        self.addCleanup(node.cleanup)
        node.start().wait_ready()
        port = node.port
        admin = login_admin(port)
        clients = [register(port, "client") for _ in range(4)]
        hustlers = [register(port, "hustler") for _ in range(4)]
        for c in clients:
            deposit(self, port, c[1], 1000000)
        # Contracts in every state to start from.
        contracts = []
        for i in range(16):
            c = self.contract(port, clients[i % 4], hustlers[i % 4], price=100 + i, fund=0)
            contracts.append((c["id"], clients[i % 4], hustlers[i % 4]))
        answered = []  # (kind, id) answered 2xx
        lock = threading.Lock()
        stop = time.time() + 3.0

        def load(n):
            rnd = random.Random(n)
            k = 0
            while time.time() < stop and k < 400:
                k += 1
                cid, cl, hu = contracts[rnd.randrange(len(contracts))]
                what = rnd.choice(["deliver", "approve", "dispute", "resolve", "transfer", "accept"])
                try:
                    if what == "deliver":
                        st, _, _ = step(port, hu[1], cid, "deliver", {}, )
                    elif what == "approve":
                        st, _, _ = step(port, cl[1], cid, "approve", key=uuid.uuid4().hex)
                    elif what == "dispute":
                        st, _, _ = step(port, cl[1], cid, "dispute", {"reason": "late"})
                    elif what == "resolve":
                        st, _, _ = step(port, admin, cid, "resolve",
                                        {"release_to": rnd.choice(["hustler", "client"])},
                                        key=uuid.uuid4().hex)
                    elif what == "transfer":
                        st, _, data = call(port, "POST", "/api/v1/wallet/transfer", cl[1],
                                           {"to_user_id": hu[0], "amount": 7})
                        if st == 201:
                            cid = json_body(data)["id"]  # the source leg's entry
                    else:
                        gig = post_gig(self, port, cl[1])
                        prop = propose(self, port, hu[1], gig["id"], price=50)
                        st, _, data = accept(port, cl[1], gig["id"], prop["id"])
                        if st == 201:
                            with lock:
                                contracts.append((json_body(data)["id"], cl, hu))
                except Exception:
                    return  # the node is gone
                if st is not None and 200 <= st < 300:
                    with lock:
                        answered.append((what, cid))

        threads = [threading.Thread(target=load, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        node.stop(signal.SIGKILL)
        for t in threads:
            t.join()
        node.start().wait_ready()
        # Recovery: every decided move ends, nothing stays opening.
        ok = wait_for(lambda: psql(url, "SELECT count(*) FROM contracts WHERE settling <> '' "
                                        "OR status = 'opening'") == [["0"]]
                      and psql(url, "SELECT count(*) FROM transfers WHERE state IN "
                                    "('reserved', 'credited', 'refused')") == [["0"]], 30, 0.3)
        self.assertTrue(ok, psql(url, "SELECT id, status, settling FROM contracts "
                                      "WHERE settling <> '' OR status = 'opening'"))
        self.assertGreater(len(answered), 5)
        # Every answered approval or resolution is in its contract's state,
        # every answered accept made an active (or later) contract, every
        # answered transfer is in the ledger.
        entries = {r[0] for r in psql(url, "SELECT id FROM ledger_entries")}
        counts = {}
        for what, cid in answered:
            counts[what] = counts.get(what, 0) + 1
            if what in ("approve", "resolve"):
                st = psql(url, "SELECT status FROM contracts WHERE id = '%s'" % cid)[0][0]
                self.assertIn(st, ("completed", "refunded"), (what, cid))
            elif what == "transfer":
                self.assertIn(cid, entries)
        for cid, _, _ in contracts:
            st = psql(url, "SELECT status FROM contracts WHERE id = '%s'" % cid)[0][0]
            self.assertIn(st, ("active", "delivered", "disputed", "completed", "refunded"))
        print("answered before the kill:", counts, file=sys.stderr)
        check_ledger(self, url)
        check_escrow(self, url)


if __name__ == "__main__":
    main()
