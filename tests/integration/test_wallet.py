"""Wallets end to end: the Wallet routes and their input rules, idempotency
keys, transaction pages, entities killed on purpose; then money under load:
concurrent transfers conserve money (checked with SQL), kill -9 of the node
mid-load loses no acknowledged transfer and leaves none half done, and
PostgreSQL stopped mid-load gives 503s (never a 500) and catches up."""

import http.client
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
import unittest
import uuid

from harness import (PG_URL, Node, NodeTestCase, PgServer, json_body, main, psql,
                     raw_exchange, request, wait_for)

SECRET = "integration-test-secret-0123456789abcdef"
ADMIN_PHONE = "+254799000002"
ADMIN_PASSWORD = "admin-password-42"
NODE_ENV = {
    "GIGMESH_JWT_SECRET": SECRET,
    "GIGMESH_ADMIN_PHONE": ADMIN_PHONE,
    "GIGMESH_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "GIGMESH_RATE_LIMIT_IP_PER_MIN": "1000000",
    "GIGMESH_RATE_LIMIT_USER_PER_MIN": "1000000",
}


def phone():
    return "+2547%08d" % (uuid.uuid4().int % 10**8)


def call(port, method, path, token=None, body=None, headers=None, timeout=10):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h["Content-Type"] = "application/json"
    return request(port, method, path, body=data, headers=h, timeout=timeout)


def register(port, role="client"):
    status, _, data = call(port, "POST", "/api/v1/auth/register",
                           body={"phone": phone(), "full_name": "Test User",
                                 "password": "password-123", "role": role})
    assert status == 201, (status, data)
    doc = json_body(data)
    return doc["user"]["id"], doc["access_token"]


def login_admin(port):
    def attempt():
        status, _, data = call(port, "POST", "/api/v1/auth/login",
                               body={"phone": ADMIN_PHONE, "password": ADMIN_PASSWORD})
        return json_body(data)["access_token"] if status == 200 else None
    token = [None]
    assert wait_for(lambda: token.__setitem__(0, attempt()) or token[0], 20, 0.2)
    return token[0]


def signal_all(pids, sig):
    """Sends sig to every process of pids that still exists."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def fresh_database():
    """Returns the URL of a new, empty database on the shared server."""
    name = "wallet_%s" % uuid.uuid4().hex[:12]
    psql(PG_URL, "CREATE DATABASE %s" % name)
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def start_fresh_node(test, **env):
    """Starts a node on a new database (entities passivate after 400 ms
    idle, unless `env` says otherwise); it is stopped when `test` ends. Returns (node, database url).
    Test classes take it as their start_node method."""
    url = fresh_database()
    node = Node(pg_url=url, env=dict(NODE_ENV, **dict({"GIGMESH_ENTITY_IDLE_TIMEOUT_MS": "400"},
                                                       **env)))
    test.addCleanup(node.cleanup)
    node.start().wait_ready()
    return node, url


def check_ledger(test, url):
    """The ledger invariants, in SQL: every wallet's balance and escrow
    (and every circle's pot) is the sum of its account's entries and not
    negative; all balances
    together (wallets, escrow, pots) equal deposits minus
    withdrawals (the external account's entries, negated); every finished
    transfer's entries sum to zero; no transfer is left half done."""
    mismatched = psql(url, """
        SELECT w.id, w.balance, coalesce(sum(e.delta), 0)
        FROM wallets w LEFT JOIN ledger_entries e ON e.account = w.id::text
        GROUP BY w.id, w.balance HAVING w.balance <> coalesce(sum(e.delta), 0)""")
    test.assertEqual(mismatched, [], "wallets whose balance is not the sum of their entries")
    escrows = psql(url, """
        SELECT w.id, w.escrow_balance, coalesce(sum(e.delta), 0)
        FROM wallets w LEFT JOIN ledger_entries e ON e.account = 'escrow:' || w.id
        GROUP BY w.id, w.escrow_balance HAVING w.escrow_balance <> coalesce(sum(e.delta), 0)""")
    test.assertEqual(escrows, [], "escrows that are not the sum of their entries")
    test.assertEqual(psql(url, "SELECT count(*) FROM wallets WHERE balance < 0 "
                               "OR escrow_balance < 0"), [["0"]])
    # Every other account (a savings circle's pot) is the sum of its entries
    # too, and counts in the total.
    pots = psql(url, """
        SELECT c.id, c.pot, coalesce(sum(e.delta), 0)
        FROM circles c LEFT JOIN ledger_entries e ON e.account = 'circle:' || c.id
        GROUP BY c.id, c.pot HAVING c.pot <> coalesce(sum(e.delta), 0)""")
    test.assertEqual(pots, [], "pots that are not the sum of their entries")
    test.assertEqual(psql(url, "SELECT count(*) FROM circles WHERE pot < 0"), [["0"]])
    total = int(psql(url, "SELECT coalesce(sum(balance + escrow_balance), 0) FROM wallets")[0][0])
    total += int(psql(url, "SELECT coalesce(sum(pot), 0) FROM circles")[0][0])
    external = int(psql(url, "SELECT coalesce(sum(delta), 0) FROM ledger_entries "
                             "WHERE account = 'external:sandbox'")[0][0])
    test.assertEqual(total, -external, "balances must equal deposits minus withdrawals")
    unbalanced = psql(url, "SELECT transfer_id, sum(delta) FROM ledger_entries "
                           "GROUP BY transfer_id HAVING sum(delta) <> 0")
    test.assertEqual(unbalanced, [], "movements whose entries do not balance")
    pending = psql(url, "SELECT count(*) FROM transfers WHERE state IN ('reserved', 'credited', 'refused')")
    test.assertEqual(pending, [["0"]], "transfers left half done")
    return total


class WalletApiTest(NodeTestCase):
    node_env = dict(NODE_ENV, GIGMESH_ENTITY_IDLE_TIMEOUT_MS="400")

    def setUp(self):
        self.port = self.node.port

    def test_a_new_wallet_is_empty_and_deposits_show_in_balance_and_transactions(self):
        _, token = register(self.port)
        status, _, data = call(self.port, "GET", "/api/v1/wallet", token)
        self.assertEqual(status, 200)
        wallet = json_body(data)
        self.assertEqual((wallet["balance"], wallet["escrow_balance"], wallet["currency"]),
                         (0, 0, "KES"))
        status, _, data = call(self.port, "POST", "/api/v1/wallet/deposit", token,
                               {"amount": 2500, "reference": "mpesa-1"})
        self.assertEqual(status, 201, data)
        tx = json_body(data)
        self.assertEqual((tx["type"], tx["amount"], tx["balance_after"], tx["reference"]),
                         ("deposit", 2500, 2500, "mpesa-1"))
        status, _, data = call(self.port, "POST", "/api/v1/wallet/withdraw", token, {"amount": 500})
        self.assertEqual(status, 201, data)
        self.assertEqual(json_body(data)["type"], "withdrawal")
        wallet2 = json_body(call(self.port, "GET", "/api/v1/wallet", token)[2])
        self.assertEqual(wallet2["balance"], 2000)
        self.assertGreater(wallet2["version"], wallet["version"])
        items = json_body(call(self.port, "GET", "/api/v1/wallet/transactions", token)[2])
        self.assertEqual([t["type"] for t in items["items"]], ["withdrawal", "deposit"])
        self.assertIsNone(items["next_cursor"])

    def test_transaction_pages_follow_the_cursor_without_gaps(self):
        _, token = register(self.port)
        for i in range(5):
            self.assertEqual(call(self.port, "POST", "/api/v1/wallet/deposit", token,
                                  {"amount": i + 1})[0], 201)
        seen, cursor = [], None
        while True:
            path = "/api/v1/wallet/transactions?limit=2" + ("&cursor=" + cursor if cursor else "")
            status, _, data = call(self.port, "GET", path, token)
            self.assertEqual(status, 200)
            page = json_body(data)
            self.assertLessEqual(len(page["items"]), 2)
            seen += [t["amount"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, [5, 4, 3, 2, 1])
        self.assertEqual(call(self.port, "GET", "/api/v1/wallet/transactions?limit=x", token)[0], 400)
        self.assertEqual(call(self.port, "GET", "/api/v1/wallet/transactions?cursor=abc", token)[0], 400)

    def test_amounts_must_be_positive_int64_minor_units(self):
        _, token = register(self.port)
        cases = [({"amount": 1.5}, 400), ({"amount": "100"}, 400), ({"amount": None}, 422),
                 ({"amount": 0}, 422), ({"amount": -5}, 422), ({}, 422),
                 ({"amount": 9223372036854775808}, 422), ({"amount": 10, "x": 1}, 422)]
        for body, want in cases:
            status, headers, data = call(self.port, "POST", "/api/v1/wallet/deposit", token, body)
            self.assertEqual(status, want, (body, data))
            self.assertEqual(headers.get("content-type"), "application/problem+json")
            self.assertEqual(json_body(data)["status"], want)
        # The largest amount fits once; a second one would overflow the wallet.
        self.assertEqual(call(self.port, "POST", "/api/v1/wallet/deposit", token,
                              {"amount": 9223372036854775807})[0], 201)
        status, _, data = call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 1})
        self.assertEqual(status, 422, data)
        self.assertEqual(call(self.port, "POST", "/api/v1/wallet/deposit", token, "[1]")[0], 400)
        self.assertEqual(call(self.port, "POST", "/api/v1/wallet/deposit", token,
                              '{"amount": 5, "amount": 6}')[0], 400)
        self.assertEqual(call(self.port, "POST", "/api/v1/wallet/deposit", None, {"amount": 1})[0], 401)

    def test_text_fields_refuse_nul_and_take_null_as_absent(self):
        # A U+0000 is valid JSON but PostgreSQL text cannot hold it: it must be
        # refused at the door, not handed to the journal (whose batch would then
        # fail again and again, holding every later write on the node).
        a, ta = register(self.port)
        b, _ = register(self.port)
        self.assertEqual(call(self.port, "POST", "/api/v1/wallet/deposit", ta,
                              {"amount": 100})[0], 201)
        nul = "a\u0000b"
        posts = [("/api/v1/wallet/deposit", {"amount": 5, "reference": nul}),
                 ("/api/v1/wallet/withdraw", {"amount": 5, "reference": nul}),
                 ("/api/v1/wallet/transfer", {"to_user_id": b, "amount": 5, "note": nul})]
        for path, body in posts:
            status, headers, data = call(self.port, "POST", path, ta, body)
            self.assertEqual(status, 422, (path, data))
            self.assertEqual(headers.get("content-type"), "application/problem+json")
            self.assertIn("U+0000", json_body(data)["detail"])
        status, _, data = call(self.port, "PUT", "/api/v1/users/me", ta, {"bio": nul})
        self.assertEqual(status, 422, data)
        # null for an optional text field is the field left out.
        nulls = [("/api/v1/wallet/deposit", {"amount": 7, "reference": None}),
                 ("/api/v1/wallet/withdraw", {"amount": 2, "reference": None}),
                 ("/api/v1/wallet/transfer", {"to_user_id": b, "amount": 5, "note": None})]
        for path, body in nulls:
            status, _, data = call(self.port, "POST", path, ta, body)
            self.assertEqual(status, 201, (path, data))
        self.assertEqual(json_body(call(self.port, "GET", "/api/v1/wallet", ta)[2])["balance"], 100)
        # Every error document has API.md's `errors`, empty when no field is named.
        status, _, data = call(self.port, "POST", "/api/v1/wallet/transfer", ta,
                               {"to_user_id": b, "amount": 10 ** 6})
        self.assertEqual((status, json_body(data)["errors"]), (409, []))

    def test_pipelined_posts_run_in_order(self):
        # RFC 9112 9.3.2: unsafe requests on one connection are not run in
        # parallel. A deposit and then a withdrawal of the same amount from an
        # empty wallet, pipelined, must both succeed, every time.
        _, token = register(self.port)
        def post(path, body, last=False):
            data = json.dumps(body)
            return ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    "Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
                    % (path, token, len(data), "Connection: close\r\n" if last else "",
                       data)).encode()
        for _ in range(10):
            out = raw_exchange(self.port, post("/api/v1/wallet/deposit", {"amount": 100}) +
                               post("/api/v1/wallet/withdraw", {"amount": 100}) +
                               b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" +
                               post("/api/v1/wallet/deposit", {"amount": 1}, last=True))
            statuses = re.findall(r"HTTP/1\.1 (\d{3}) ", out.decode())
            self.assertEqual(statuses, ["201", "201", "200", "201"], out)
        self.assertEqual(json_body(call(self.port, "GET", "/api/v1/wallet", token)[2])["balance"], 10)

    def test_a_user_id_in_capitals_reaches_the_same_entity(self):
        user, token = register(self.port)
        self.assertEqual(call(self.port, "PUT", "/api/v1/users/me", token, {"bio": "v1"})[0], 200)
        status, _, data = call(self.port, "GET", "/api/v1/users/" + user.upper(), token)
        self.assertEqual(status, 200, data)
        self.assertEqual((json_body(data)["id"], json_body(data)["bio"]), (user, "v1"))
        self.assertEqual(call(self.port, "PUT", "/api/v1/users/me", token, {"bio": "v2"})[0], 200)
        for form in (user, user.upper(), user[:8].upper() + user[8:]):
            doc = json_body(call(self.port, "GET", "/api/v1/users/" + form, token)[2])
            self.assertEqual((doc["id"], doc["bio"]), (user, "v2"), form)

    def test_transfers_move_money_and_refuse_what_they_must(self):
        a, ta = register(self.port)
        b, tb = register(self.port)
        call(self.port, "POST", "/api/v1/wallet/deposit", ta, {"amount": 1000})
        status, _, data = call(self.port, "POST", "/api/v1/wallet/transfer", ta,
                               {"to_user_id": b, "amount": 300, "note": "lunch"})
        self.assertEqual(status, 201, data)
        tx = json_body(data)
        self.assertEqual((tx["type"], tx["amount"], tx["balance_after"], tx["counterparty"]),
                         ("transfer_out", 300, 700, b))
        received = json_body(call(self.port, "GET", "/api/v1/wallet/transactions", tb)[2])["items"]
        self.assertEqual([(t["type"], t["amount"], t["counterparty"]) for t in received],
                         [("transfer_in", 300, a)])
        self.assertEqual(json_body(call(self.port, "GET", "/api/v1/wallet", tb)[2])["balance"], 300)
        refusals = [({"to_user_id": b, "amount": 701}, 409),
                    ({"to_user_id": a, "amount": 1}, 422),
                    ({"to_user_id": str(uuid.uuid4()), "amount": 1}, 404),
                    ({"to_user_id": "not-a-uuid", "amount": 1}, 422),
                    ({"to_user_id": b, "amount": -1}, 422)]
        for body, want in refusals:
            status, _, data = call(self.port, "POST", "/api/v1/wallet/transfer", ta, body)
            self.assertEqual(status, want, (body, data))
            self.assertEqual(json_body(data)["status"], want)
        self.assertEqual(json_body(call(self.port, "GET", "/api/v1/wallet", ta)[2])["balance"], 700)

    def test_an_idempotency_key_returns_the_first_answer_and_moves_money_once(self):
        _, token = register(self.port)
        key = {"Idempotency-Key": "dep-" + uuid.uuid4().hex}
        first = call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 70}, key)
        again = call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 70}, key)
        self.assertEqual((first[0], again[0]), (201, 201))
        self.assertEqual(json_body(first[2])["id"], json_body(again[2])["id"])
        other = call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 71}, key)
        self.assertEqual(other[0], 422)
        # After passivation the key is found in PostgreSQL.
        time.sleep(1.2)
        later = call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 70}, key)
        self.assertEqual(later[0], 201)
        self.assertEqual(json_body(later[2])["id"], json_body(first[2])["id"])
        self.assertEqual(json_body(call(self.port, "GET", "/api/v1/wallet", token)[2])["balance"], 70)
        bad = call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 1},
                   {"Idempotency-Key": "x" * 300})
        self.assertEqual(bad[0], 400)
        # Sent but empty is a malformed key too, not "no key".
        empty = call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 1},
                     {"Idempotency-Key": ""})
        self.assertEqual(empty[0], 400, empty)
        self.assertEqual(json_body(call(self.port, "GET", "/api/v1/wallet", token)[2])["balance"], 70)

    def test_a_refusal_is_bound_to_its_key_and_a_repeat_changes_nothing(self):
        # API.md: a repeat with the same key and body returns the first
        # response and changes nothing, even when the balance changed since.
        user, token = register(self.port)
        _, other = register(self.port)
        wallet = lambda: json_body(call(self.port, "GET", "/api/v1/wallet", token)[2])["balance"]
        key = {"Idempotency-Key": "wd-" + uuid.uuid4().hex}
        first = call(self.port, "POST", "/api/v1/wallet/withdraw", token, {"amount": 50}, key)
        self.assertEqual(first[0], 409, first)
        call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 500})
        again = call(self.port, "POST", "/api/v1/wallet/withdraw", token, {"amount": 50}, key)
        self.assertEqual(again[0], 409, again)
        self.assertEqual(json_body(again[2])["type"], json_body(first[2])["type"])
        self.assertEqual(wallet(), 500)
        # A transfer to nobody binds its key too: the same key with a real
        # receiver is another request (422), not a transfer.
        tkey = {"Idempotency-Key": "tr-" + uuid.uuid4().hex}
        nobody = call(self.port, "POST", "/api/v1/wallet/transfer", token,
                      {"to_user_id": str(uuid.uuid4()), "amount": 5}, tkey)
        self.assertEqual(nobody[0], 404, nobody)
        real = call(self.port, "POST", "/api/v1/wallet/transfer", token,
                    {"to_user_id": register(self.port)[0], "amount": 5}, tkey)
        self.assertEqual(real[0], 422, real)
        # A transfer the receiver refuses after the reserve (its balance would
        # overflow) is reversed and answered 422; its key keeps that answer,
        # not the reserve's 201.
        full, full_token = register(self.port)
        self.assertEqual(call(self.port, "POST", "/api/v1/wallet/deposit", full_token,
                              {"amount": 9223372036854775807})[0], 201)
        okey = {"Idempotency-Key": "of-" + uuid.uuid4().hex}
        body = {"to_user_id": full, "amount": 7}
        refused = call(self.port, "POST", "/api/v1/wallet/transfer", token, body, okey)
        self.assertEqual(refused[0], 422, refused)
        again = call(self.port, "POST", "/api/v1/wallet/transfer", token, body, okey)
        self.assertEqual((again[0], json_body(again[2])["detail"]),
                         (422, json_body(refused[2])["detail"]))
        self.assertEqual(wallet(), 500)
        # After passivation the refusals are found in PostgreSQL.
        self.assertTrue(wait_for(lambda: psql(
            self.node.pg_url, "SELECT count(*) FROM idempotency_keys WHERE user_id = '%s' "
            "AND status = 0 AND error_code <> 0" % user)[0][0] == "3", 5, 0.1))
        self.assertEqual(psql(self.node.pg_url, "SELECT version FROM idempotency_keys WHERE "
                              "user_id = '%s' AND key = '%s'" % (user, okey["Idempotency-Key"])),
                         [["2"]])
        time.sleep(1.2)
        later = call(self.port, "POST", "/api/v1/wallet/withdraw", token, {"amount": 50}, key)
        self.assertEqual((later[0], json_body(later[2])["detail"]),
                         (409, json_body(first[2])["detail"]))
        self.assertEqual(wallet(), 500)
        later = call(self.port, "POST", "/api/v1/wallet/transfer", token, body, okey)
        self.assertEqual(later[0], 422, later)
        self.assertEqual(wallet(), 500)
        # A refusal that says nothing of the request is not bound: a
        # malformed or doubled key is refused before any wallet sees it.
        raw = ("POST /api/v1/wallet/deposit HTTP/1.1\r\nHost: x\r\n"
               "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
               "Idempotency-Key: a\r\nIdempotency-Key: b\r\n"
               "Content-Length: 13\r\nConnection: close\r\n\r\n{\"amount\": 1}" % token)
        out = raw_exchange(self.port, raw.encode()).decode()
        self.assertRegex(out, r"^HTTP/1\.1 400 ", out)
        self.assertIn("invalid-idempotency-key", out)
        self.assertEqual(wallet(), 500)

    def test_concurrent_repeats_of_one_key_create_one_transaction(self):
        _, token = register(self.port)
        key = {"Idempotency-Key": "burst-" + uuid.uuid4().hex}
        results = []

        def worker():
            results.append(call(self.port, "POST", "/api/v1/wallet/deposit", token,
                                {"amount": 9}, key))
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r[0] for r in results)
        self.assertTrue(all(s in (201, 409) for s in statuses), statuses)
        ids = {json_body(r[2])["id"] for r in results if r[0] == 201}
        self.assertEqual(len(ids), 1)
        self.assertEqual(json_body(call(self.port, "GET", "/api/v1/wallet", token)[2])["balance"], 9)

    def test_a_killed_wallet_is_restarted_by_its_shard_with_its_balance(self):
        admin = login_admin(self.port)
        user, token = register(self.port)
        call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 4242})
        status, _, data = call(self.port, "GET", "/api/v1/admin/actors/wallet/" + user, admin)
        self.assertEqual(status, 200, data)
        before = json_body(data)
        self.assertEqual(before["state"]["balance"], 4242)
        # A UUID written in capitals names the same actor.
        self.assertEqual(call(self.port, "GET", "/api/v1/admin/actors/wallet/" + user.upper(),
                              admin)[0], 200)
        status, _, _ = call(self.port, "POST",
                            "/api/v1/admin/actors/wallet/%s/kill" % user, admin)
        self.assertEqual(status, 202)
        wallet = json_body(call(self.port, "GET", "/api/v1/wallet", token)[2])
        self.assertEqual(wallet["balance"], 4242)
        after = json_body(call(self.port, "GET", "/api/v1/admin/actors/wallet/" + user, admin)[2])
        self.assertEqual(after["restarts"], before["restarts"] + 1)
        self.assertRegex(self.node.read_log(),
                         r"wallet %s crashed \(.*\): restarting it" % user)

    def test_idle_wallets_are_passivated_and_come_back_on_the_next_message(self):
        admin = login_admin(self.port)
        user, token = register(self.port)
        call(self.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 5})
        self.assertEqual(call(self.port, "GET", "/api/v1/admin/actors/wallet/" + user, admin)[0], 200)
        self.assertTrue(wait_for(lambda: call(
            self.port, "GET", "/api/v1/admin/actors/wallet/" + user, admin)[0] == 404, 5, 0.1))
        self.assertEqual(json_body(call(self.port, "GET", "/api/v1/wallet", token)[2])["balance"], 5)

    def test_a_profile_change_survives_its_user_entity_being_killed(self):
        admin = login_admin(self.port)
        user, token = register(self.port)
        status, _, data = call(self.port, "PUT", "/api/v1/users/me", token,
                               {"bio": "rides in Nairobi"})
        self.assertEqual(status, 200, data)
        self.assertEqual(json_body(data)["bio"], "rides in Nairobi")
        self.assertEqual(call(self.port, "POST", "/api/v1/admin/actors/user/%s/kill" % user,
                              admin)[0], 202)
        me = json_body(call(self.port, "GET", "/api/v1/users/me", token)[2])
        self.assertEqual((me["bio"], me["full_name"]), ("rides in Nairobi", "Test User"))
        self.assertEqual(psql(PG_URL, "SELECT bio FROM users WHERE id = '%s'" % user),
                         [["rides in Nairobi"]])
        public = json_body(call(self.port, "GET", "/api/v1/users/" + user, token)[2])
        self.assertNotIn("phone", public)

    def test_admin_routes_are_for_admins_only(self):
        user, token = register(self.port)
        for method, path in [("GET", "/api/v1/admin/actors"), ("GET", "/api/v1/admin/journal"),
                             ("POST", "/api/v1/admin/actors/wallet/%s/kill" % user)]:
            self.assertEqual(call(self.port, method, path, token)[0], 403)
        admin = login_admin(self.port)
        journal = json_body(call(self.port, "GET", "/api/v1/admin/journal", admin)[2])
        for field in ("pending", "in_flight", "last_batch_rows", "flush_latency_ms_p50",
                      "flush_latency_ms_p99", "last_error"):
            self.assertIn(field, journal)
        self.assertEqual(call(self.port, "GET", "/api/v1/admin/actors/nothing/1", admin)[0], 404)
        self.assertEqual(call(self.port, "GET", "/api/v1/admin/cluster", token)[0], 403)
        self.assertEqual(call(self.port, "GET", "/api/v1/wallet", token)[0], 200)  # one live
        status, _, data = call(self.port, "GET", "/api/v1/admin/cluster", admin)
        self.assertEqual(status, 200, data)
        mine = [n for n in json_body(data)["nodes"] if isinstance(n["actors"], int)]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["status"], "up")
        self.assertGreaterEqual(mine[0]["actors"], 1)
        for field in ("id", "address", "incarnation", "started_at", "last_heartbeat"):
            self.assertIn(field, mine[0])
        # ?node= filters: this node's name lists its entities, another none.
        here = json_body(call(self.port, "GET", "/api/v1/admin/actors?node=" + mine[0]["id"],
                              admin)[2])
        self.assertIn(user, [i["id"] for i in here["items"]])
        self.assertTrue(all(i["node"] == mine[0]["id"] for i in here["items"]))
        there = json_body(call(self.port, "GET", "/api/v1/admin/actors?node=elsewhere",
                               admin)[2])
        self.assertEqual(there["items"], [])
        status, _, data = call(self.port, "GET", "/api/v1/admin/supervisors", admin)
        self.assertEqual(status, 200, data)
        tree = json_body(data)
        self.assertEqual((tree["name"], tree["strategy"]), ("root", "one_for_one"))
        children = {c["name"]: c for c in tree["children"]}
        self.assertEqual(set(children), {"persistence", "cluster", "journal", "topic_hub", "inspector",
                                         "shards", "gateway"})
        shards = children["shards"]["supervisor"]
        self.assertEqual({c["name"] for c in shards["children"]},
                         {"shard:user", "shard:wallet", "shard:circle", "shard:contract",
                          "shard:room", "shard:rider", "shard:dispatcher",
                          "shard:task"})
        self.assertTrue(all(c["running"] for c in tree["children"]))


class Load:
    """Random transfers (and some withdrawals) between `users`, from threads,
    recording every answer. Bounded in count and in time."""

    def __init__(self, port, users, count, threads=16, deadline_s=120):
        self.port, self.users = port, users
        self.left = count
        self.deadline = time.time() + deadline_s
        self.lock = threading.Lock()
        self.statuses = {}
        self.acked = []          # transaction ids answered 201
        self.withdrawn = 0
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def take(self):
        with self.lock:
            if self.left <= 0 or time.time() > self.deadline:
                return False
            self.left -= 1
            return True

    def run(self):
        rnd = random.Random()
        while self.take():
            src, dst = rnd.sample(self.users, 2)
            amount = rnd.randint(1, 500)
            if rnd.random() < 0.05:
                status, _, data = call(self.port, "POST", "/api/v1/wallet/withdraw", src[1],
                                       {"amount": amount}, timeout=15)
            else:
                status, _, data = call(self.port, "POST", "/api/v1/wallet/transfer", src[1],
                                       {"to_user_id": dst[0], "amount": amount}, timeout=15)
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 201:
                    tx = json_body(data)
                    self.acked.append(tx["id"])
                    if tx["type"] == "withdrawal":
                        self.withdrawn += tx["amount"]
            if status is None:
                return  # the node is gone

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self):
        for t in self.threads:
            t.join()
        return self


class MoneyUnderLoadTest(unittest.TestCase):
    USERS = 8
    START = 100_000

    def start_node(self, url, **env):
        node = Node(pg_url=url, env=dict(NODE_ENV, **env))
        self.addCleanup(node.cleanup)
        return node.start().wait_ready()

    def fund(self, port):
        users = [register(port) for _ in range(self.USERS)]
        for _, token in users:
            status, _, data = call(port, "POST", "/api/v1/wallet/deposit", token,
                                   {"amount": self.START})
            self.assertEqual(status, 201, data)
        return users

    def test_concurrent_transfers_conserve_money(self):
        url = fresh_database()
        node = self.start_node(url)
        users = self.fund(node.port)
        load = Load(node.port, users, 2000).start().join()
        self.assertEqual(sum(load.statuses.values()), 2000)
        self.assertEqual(set(load.statuses) - {201, 409}, set(), load.statuses)
        total = check_ledger(self, url)
        self.assertEqual(total, self.USERS * self.START - load.withdrawn)
        balances = sum(json_body(call(node.port, "GET", "/api/v1/wallet", t)[2])["balance"]
                       for _, t in users)
        self.assertEqual(balances, total)
        self.assertEqual(node.stop(), 0)
        # A node that stopped says so in the cluster view.
        self.assertEqual(psql(url, "SELECT DISTINCT status FROM nodes"), [["down"]])

    def test_kill_9_mid_load_loses_no_acknowledged_transfer(self):
        url = fresh_database()
        node = self.start_node(url)
        users = self.fund(node.port)
        load = Load(node.port, users, 100000, deadline_s=20).start()
        self.assertTrue(wait_for(lambda: len(load.acked) >= 300, 30, 0.01))
        node.stop(signal.SIGKILL)
        load.join()
        acked = list(load.acked)
        pending = psql(url, "SELECT count(*) FROM transfers WHERE state IN ('reserved', 'credited', 'refused')")
        print("\n  kill -9 after %d acknowledged; %s transfers half done in PostgreSQL; answers %s"
              % (len(acked), pending[0][0], load.statuses))
        node.start().wait_ready()
        # Recovery finishes every transfer the crash left pending.
        self.assertTrue(wait_for(lambda: psql(url, "SELECT count(*) FROM transfers WHERE "
                                                   "state IN ('reserved', 'credited', 'refused')") == [["0"]],
                                 30, 0.2), node.read_log()[-3000:])
        known = {r[0] for r in psql(url, "SELECT id FROM ledger_entries")}
        missing = [t for t in acked if t not in known]
        self.assertEqual(missing, [], "acknowledged transactions missing after kill -9")
        check_ledger(self, url)
        self.assertEqual(node.stop(), 0)

    def deposit_behind_a_refused_batch(self, **env):
        """A node on a fresh database with one user holding 100, then a
        trigger added behind the node's back that fails every ledger insert
        (an error that is not about the row's data, as a broken database
        would raise; a row PostgreSQL refuses for what it holds fails only
        its own entity: test_money.py): that deposit's batch cannot commit,
        so it is answered 503 at the deadline ("may still take effect").
        Returns (url, node, token)."""
        url = fresh_database()
        node = self.start_node(url, **env)
        (_, token), = [register(node.port)]
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", token,
                              {"amount": 100})[0], 201)
        psql(url, """
            CREATE FUNCTION test_small() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'test_small: ledger writes are switched off'; END $$;
            CREATE TRIGGER test_small BEFORE INSERT ON ledger_entries
              FOR EACH ROW EXECUTE FUNCTION test_small();""")
        status, _, data = call(node.port, "POST", "/api/v1/wallet/deposit", token,
                               {"amount": 5000})
        self.assertEqual(status, 503, data)
        return url, node, token

    def test_a_batch_postgres_keeps_refusing_makes_the_node_unready_until_it_passes(self):
        # PostgreSQL answers probes but refuses the journal's batch (here a
        # CHECK added behind the node's back): the journal keeps the rows and
        # retries, durable writes wait, and /readyz says why after 5 s. Once
        # the cause is gone the batch commits and the node is ready again.
        url, node, token = self.deposit_behind_a_refused_batch(GIGMESH_REQUEST_TIMEOUT_MS="2000")
        def readiness():
            status, _, data = request(node.port, "GET", "/readyz")
            return status, json_body(data)
        self.assertTrue(wait_for(lambda: readiness()[0] == 503, 15, 0.2), readiness())
        status, doc = readiness()
        self.assertFalse(doc["checks"]["journal"]["ok"], doc)
        self.assertGreaterEqual(doc["checks"]["journal"]["failing_ms"], 5000)
        self.assertIn("test_small", doc["detail"])
        psql(url, "DROP TRIGGER test_small ON ledger_entries")
        self.assertTrue(wait_for(lambda: readiness()[0] == 200, 15, 0.2), readiness())
        self.assertTrue(readiness()[1]["checks"]["journal"]["ok"])
        # The write that was waiting took effect, once.
        self.assertEqual(json_body(call(node.port, "GET", "/api/v1/wallet", token)[2])["balance"],
                         5100)
        check_ledger(self, url)
        self.assertEqual(node.stop(), 0)

    def test_a_stop_that_must_kill_the_journal_exits_1_and_loses_nothing_acknowledged(self):
        # The batch cannot be written, so the journal cannot flush at SIGTERM:
        # it is killed past shutdown_timeout, and the node must not claim a
        # clean stop. The write it held was never acknowledged (503).
        url, node, token = self.deposit_behind_a_refused_batch(
            GIGMESH_REQUEST_TIMEOUT_MS="1000", GIGMESH_SHUTDOWN_TIMEOUT_MS="1500")
        self.assertEqual(node.stop(), 1, node.read_log()[-2000:])
        self.assertIn("had to be killed", node.read_log())
        psql(url, "DROP TRIGGER test_small ON ledger_entries")
        node.start().wait_ready()
        self.assertEqual(json_body(call(node.port, "GET", "/api/v1/wallet", token)[2])["balance"],
                         100)
        check_ledger(self, url)
        self.assertEqual(node.stop(), 0)

    def test_postgres_down_gives_503_then_catches_up(self):
        pg = PgServer()
        self.addCleanup(pg.cleanup)
        pg.start()
        # A small journal, so that the outage fills it: past the bound, durable
        # writes are refused at once instead of waiting for the deadline.
        node = self.start_node(pg.url, GIGMESH_JOURNAL_MAX_PENDING_ROWS="100",
                               GIGMESH_REQUEST_TIMEOUT_MS="2000")
        users = self.fund(node.port)
        admin = login_admin(node.port)
        load = Load(node.port, users, 100000, threads=32, deadline_s=25).start()
        time.sleep(3)
        pg.stop()
        outage_start = time.time()
        self.assertTrue(wait_for(lambda: load.statuses.get(503, 0) > 0, 15, 0.05),
                        load.statuses)
        time.sleep(max(0, 10 - (time.time() - outage_start)))
        acked_during = len(load.acked)
        pg.start()
        load.join()
        print("\n  answers with PostgreSQL stopped for 10 s: %s" % load.statuses)
        self.assertEqual(set(load.statuses) - {201, 409, 503}, set(), load.statuses)
        self.assertGreater(len(load.acked), acked_during, "no progress after PostgreSQL returned")
        self.assertTrue(wait_for(lambda: json_body(call(
            node.port, "GET", "/api/v1/admin/journal", admin)[2])["pending"] == 0, 20, 0.2))
        self.assertTrue(wait_for(lambda: psql(pg.url, "SELECT count(*) FROM transfers WHERE "
                                                      "state IN ('reserved', 'credited', 'refused')") == [["0"]],
                                 30, 0.2))
        known = {r[0] for r in psql(pg.url, "SELECT id FROM ledger_entries")}
        self.assertEqual([t for t in load.acked if t not in known], [])
        check_ledger(self, pg.url)
        self.assertNotIn("answered 500", node.read_log())
        self.assertEqual(node.stop(), 0)

    def test_a_request_a_hung_database_holds_gets_503_at_the_deadline(self):
        pg = PgServer()
        self.addCleanup(pg.cleanup)
        pg.start()
        node = self.start_node(pg.url, GIGMESH_REQUEST_TIMEOUT_MS="700")
        (_, token), = [register(node.port)]
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", token,
                              {"amount": 100})[0], 201)
        # PostgreSQL hangs (every process stopped, connections open): the
        # deposit's commit never comes, so its wallet never answers.
        postmaster = int(open(os.path.join(pg.data, "postmaster.pid")).readline())
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                  text=True).stdout.split()
        stopped = [postmaster] + [int(c) for c in children]
        resume = lambda: signal_all(stopped, signal.SIGCONT)
        self.addCleanup(resume)
        signal_all(stopped, signal.SIGSTOP)
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
        self.addCleanup(conn.close)
        t0 = time.monotonic()
        conn.request("POST", "/api/v1/wallet/deposit", body=json.dumps({"amount": 5}),
                     headers={"Authorization": "Bearer " + token,
                              "Content-Type": "application/json"})
        res = conn.getresponse()
        body = json_body(res.read())
        took = time.monotonic() - t0
        self.assertEqual(res.status, 503, body)
        # Its deposit may still commit: the problem says so (retry with the
        # same Idempotency-Key), unlike a 503 for a change that never began.
        self.assertEqual(body["type"], "/problems/outcome-unknown")
        self.assertEqual(res.getheader("Retry-After"), "1")
        self.assertGreaterEqual(took, 0.6)
        self.assertLess(took, 3.0)
        # The same connection goes on serving.
        conn.request("GET", "/healthz")
        res = conn.getresponse()
        self.assertEqual((res.status, json_body(res.read())["status"]), (200, "ok"))
        resume()
        # The deposit commits late ("may still take effect"); its answer
        # was dropped: the next answer on the connection is the next request's.
        self.assertTrue(wait_for(lambda: json_body(call(
            node.port, "GET", "/api/v1/wallet", token)[2]).get("balance") == 105, 20, 0.1))
        conn.request("GET", "/healthz")
        res = conn.getresponse()
        self.assertEqual((res.status, json_body(res.read())["status"]), (200, "ok"))
        self.assertNotIn("answered 500", node.read_log())
        self.assertEqual(node.stop(), 0)


if __name__ == "__main__":
    main()
