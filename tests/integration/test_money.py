"""The money mechanism's defects, each reproduced from outside against a real
node and PostgreSQL (docs/architecture.md, Money): a credit applied twice
under resends, a reversal that overflowed and wedged the journal, a row
PostgreSQL refuses stopping the node, stale writes vanishing silently,
sagas left pending until their user came back, and an Idempotency-Key
answering 201 for a transfer that was reversed. Each test gets a database
of its own, since some change the schema or rows behind the node's back."""

import hashlib
import json
import threading
import time
import unittest
import uuid

from harness import json_body, main, psql, wait_for
from test_wallet import call, check_ledger, login_admin, register, start_fresh_node

INT64_MAX = 9223372036854775807


def balance(port, token):
    status, _, data = call(port, "GET", "/api/v1/wallet", token)
    return json_body(data).get("balance") if status == 200 else None


def request_hash(method, path, body):
    """The digest the node keeps with an Idempotency-Key (wallet_routes.cpp):
    the method, the path and the body as nlohmann prints it (sorted keys, no
    spaces; ASCII here)."""
    text = "%s %s %s" % (method, path, json.dumps(body, separators=(",", ":"), sort_keys=True))
    return hashlib.sha256(text.encode()).hexdigest()


class MoneyDefectsTest(unittest.TestCase):

    start_node = start_fresh_node

    def test_a_credit_is_applied_once_however_often_the_sender_resends(self):
        # The sender asks again after 1 ms without an answer, so nearly every
        # credit is resent while the first is still queued or being stored:
        # repeats that both read `reserved` must not both be applied.
        node, url = self.start_node(GIGMESH_SAGA_STEP_TIMEOUT_MS="1")
        receiver, rtoken = register(node.port)
        senders = [register(node.port) for _ in range(8)]
        for _, token in senders:
            self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", token,
                                  {"amount": 1000})[0], 201)
        statuses = []

        def send(token):
            for _ in range(10):
                statuses.append(call(node.port, "POST", "/api/v1/wallet/transfer", token,
                                     {"to_user_id": receiver, "amount": 7})[0])
        threads = [threading.Thread(target=send, args=(t,)) for _, t in senders]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(set(statuses), {201}, statuses)
        self.assertEqual(balance(node.port, rtoken), 8 * 10 * 7)
        self.assertTrue(wait_for(lambda: psql(url, "SELECT count(*) FROM transfers WHERE state "
                                                   "IN ('reserved', 'credited', 'refused')")
                                 == [["0"]], 20, 0.2))
        # One transfer_in per transfer at the receiver, and the books balance.
        self.assertEqual(psql(url, "SELECT count(*), count(DISTINCT transfer_id) FROM "
                                   "ledger_entries WHERE type = 'transfer_in' AND wallet_id = "
                                   "(SELECT id FROM wallets WHERE user_id = '%s')" % receiver),
                         [["80", "80"]])
        check_ledger(self, url)
        self.assertEqual(psql(url, "SELECT count(*) FROM journal_refused"), [["0"]])
        self.assertEqual(node.stop(), 0)

    def test_a_reversal_at_the_int64_edge_cannot_overflow_or_wedge_the_journal(self):
        # The attack from outside: a transfer of 10 to a wallet holding
        # int64's maximum (refused, so reversed), sent together with a
        # deposit of int64's maximum into the sender, whose balance the
        # reserve took to 0. The reversal used to overflow the sender.
        node, url = self.start_node()
        full, full_token = register(node.port)
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", full_token,
                              {"amount": INT64_MAX})[0], 201)
        sender, token = register(node.port)
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", token,
                              {"amount": 10})[0], 201)
        for _ in range(12):
            answers = {}
            t = threading.Thread(target=lambda: answers.__setitem__("transfer", call(
                node.port, "POST", "/api/v1/wallet/transfer", token,
                {"to_user_id": full, "amount": 10})[0]))
            d = threading.Thread(target=lambda: answers.__setitem__("deposit", call(
                node.port, "POST", "/api/v1/wallet/deposit", token, {"amount": INT64_MAX})[0]))
            t.start()
            d.start()
            t.join(20)
            d.join(20)
            self.assertEqual(answers["transfer"], 422, answers)  # the receiver cannot take it
            self.assertEqual(answers["deposit"], 422, answers)   # no room beside the 10 in flight
            self.assertEqual(balance(node.port, token), 10)
        # Every later write on the node still works, and the node is ready.
        other, other_token = register(node.port)
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", other_token,
                              {"amount": 5})[0], 201)
        self.assertEqual(call(node.port, "GET", "/readyz")[0], 200)
        self.assertEqual(psql(url, "SELECT count(*) FROM journal_refused"), [["0"]])
        check_ledger(self, url)
        self.assertEqual(node.stop(), 0)

    def test_a_row_postgresql_refuses_fails_only_its_own_wallet(self):
        node, url = self.start_node()
        admin = login_admin(node.port)
        a, ta = register(node.port)
        b, tb = register(node.port)
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", ta,
                              {"amount": 100})[0], 201)
        # A rule the node does not know of: PostgreSQL refuses a ledger row
        # of 1313 for good, whoever writes it.
        psql(url, "ALTER TABLE ledger_entries ADD CONSTRAINT no_1313 CHECK (amount <> 1313)")
        results = {}

        def deposit(name, token, amount):
            results[name] = call(node.port, "POST", "/api/v1/wallet/deposit", token,
                                 {"amount": amount})
        threads = [threading.Thread(target=deposit, args=("a", ta, 1313))]
        threads += [threading.Thread(target=deposit, args=("b%d" % i, tb, 1)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        self.assertEqual(results["a"][0], 503, results["a"])
        problem = json_body(results["a"][2])
        self.assertEqual(problem["type"], "/problems/outcome-unknown")
        self.assertEqual([results["b%d" % i][0] for i in range(20)], [201] * 20)
        # The wallet shows as failed for a while; the node stays ready and
        # says what was refused; the rows are parked, not dropped.
        status, _, data = call(node.port, "GET", "/api/v1/admin/actors/wallet/" + a, admin)
        self.assertEqual((status, json_body(data).get("status")), (200, "failed"), data)
        self.assertEqual(call(node.port, "GET", "/api/v1/wallet", ta)[0], 503)
        status, _, data = call(node.port, "GET", "/readyz")
        self.assertEqual(status, 200, data)
        self.assertIn("wallet:" + a, json_body(data)["checks"]["journal"]["last_refused"])
        self.assertGreaterEqual(int(psql(url, "SELECT count(*) FROM journal_refused WHERE "
                                              "owner = 'wallet:%s'" % a)[0][0]), 3)
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", tb,
                              {"amount": 1})[0], 201)
        # It comes back with what PostgreSQL holds, and works again.
        self.assertTrue(wait_for(lambda: balance(node.port, ta) == 100, 20, 0.2))
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", ta,
                              {"amount": 5})[0], 201)
        self.assertEqual(balance(node.port, ta), 105)
        self.assertEqual(balance(node.port, tb), 21)
        check_ledger(self, url)
        self.assertIn("gigmesh_journal_refused_rows_total",
                      call(node.port, "GET", "/metrics")[2].decode())
        self.assertEqual(node.stop(), 0)

    def test_a_write_postgresql_already_holds_newer_is_loud(self):
        node, url = self.start_node()
        admin = login_admin(node.port)
        user, token = register(node.port)
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", token,
                              {"amount": 5})[0], 201)
        # Another writer moved the row on behind the live wallet's back.
        psql(url, "UPDATE wallets SET version = version + 100 WHERE user_id = '%s'" % user)
        call(node.port, "POST", "/api/v1/wallet/deposit", token, {"amount": 7})
        self.assertTrue(wait_for(lambda: json_body(call(
            node.port, "GET", "/api/v1/admin/journal", admin)[2]).get("stale_rows", 0) >= 1,
            10, 0.1))
        self.assertIn("were not applied", node.read_log())
        metrics = call(node.port, "GET", "/metrics")[2].decode()
        self.assertRegex(metrics, r"gigmesh_journal_stale_rows_total [1-9]")
        self.assertEqual(node.stop(), 0)

    def pending_transfer(self, url, sender, to, amount, key=None, body=None):
        """Writes what a crash between a transfer's reserve and its credit
        leaves in PostgreSQL (the sender must be passive), in one
        transaction, as the reserve writes it (the sweep may look at any
        moment)."""
        tid = str(uuid.uuid4())
        key_sql = "NULL" if key is None else "'%s'" % key
        key_row = "" if key is None else (
            "INSERT INTO idempotency_keys (user_id, key, request_hash, status, response, "
            "created_at, error_code, version) VALUES ('%s', '%s', '%s', 0, '{}', now(), 5, 1);"
            % (sender, key, request_hash("POST", "/api/v1/wallet/transfer", body)))
        psql(url, key_row + """
            UPDATE wallets SET balance = balance - {a}, version = version + 1
              WHERE user_id = '{s}';
            INSERT INTO ledger_entries (id, transfer_id, account, wallet_id, type, amount, delta,
                                        balance_after, wallet_version, counterparty, created_at)
              SELECT gen_random_uuid(), '{t}', w.id::text, w.id, 'transfer_out', {a}, -{a},
                     w.balance, w.version, '{to}', now() FROM wallets w WHERE w.user_id = '{s}';
            INSERT INTO transfers (id, from_user, to_user, amount, state, version, created_at,
                                   updated_at, idempotency_key)
              VALUES ('{t}', '{s}', '{to}', {a}, 'reserved', 1, now(), now() - interval '5 s',
                      {k});""".format(a=amount, s=sender, t=tid, to=to, k=key_sql))
        return tid

    def wait_passive(self, port, admin, user):
        self.assertTrue(wait_for(lambda: call(port, "GET", "/api/v1/admin/actors/wallet/" + user,
                                              admin)[0] == 404, 10, 0.1))

    def test_a_saga_left_pending_is_finished_by_the_sweep_without_its_user(self):
        node, url = self.start_node(GIGMESH_SAGA_SWEEP_INTERVAL_MS="300")
        admin = login_admin(node.port)
        sender, stoken = register(node.port)
        receiver, rtoken = register(node.port)
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", stoken,
                              {"amount": 100})[0], 201)
        self.wait_passive(node.port, admin, sender)
        tid = self.pending_transfer(url, sender, receiver, 30)
        # Nobody sends the sender a command: the sweep activates it.
        self.assertTrue(wait_for(lambda: psql(url, "SELECT state FROM transfers WHERE id = '%s'"
                                                   % tid) == [["settled"]], 15, 0.1))
        self.assertEqual(balance(node.port, rtoken), 30)
        self.assertEqual(balance(node.port, stoken), 70)
        check_ledger(self, url)
        self.assertEqual(node.stop(), 0)

    def test_a_key_answers_the_final_outcome_of_a_saga_resumed_after_a_crash(self):
        node, url = self.start_node(GIGMESH_SAGA_SWEEP_INTERVAL_MS="300")
        admin = login_admin(node.port)
        sender, stoken = register(node.port)
        self.assertEqual(call(node.port, "POST", "/api/v1/wallet/deposit", stoken,
                              {"amount": 100})[0], 201)
        self.wait_passive(node.port, admin, sender)
        nobody = str(uuid.uuid4())
        body = {"to_user_id": nobody, "amount": 40}
        key = "resumed-" + uuid.uuid4().hex
        tid = self.pending_transfer(url, sender, nobody, 40, key, body)
        # While the saga runs a repeat gets 409; once it ended, its outcome:
        # the receiver does not exist, so the transfer was reversed (404).
        first = call(node.port, "POST", "/api/v1/wallet/transfer", stoken, body,
                     {"Idempotency-Key": key})
        self.assertIn(first[0], (409, 404), first)
        self.assertTrue(wait_for(lambda: psql(url, "SELECT state FROM transfers WHERE id = '%s'"
                                                   % tid) == [["reversed"]], 15, 0.1))
        again = call(node.port, "POST", "/api/v1/wallet/transfer", stoken, body,
                     {"Idempotency-Key": key})
        self.assertEqual(again[0], 404, again)
        self.assertEqual(balance(node.port, stoken), 100)
        self.wait_passive(node.port, admin, sender)
        # From PostgreSQL too, after the wallet passivated.
        later = call(node.port, "POST", "/api/v1/wallet/transfer", stoken, body,
                     {"Idempotency-Key": key})
        self.assertEqual(later[0], 404, later)
        self.assertEqual(psql(url, "SELECT status, error_code, version FROM idempotency_keys "
                                   "WHERE key = '%s'" % key), [["0", "1", "2"]])
        check_ledger(self, url)
        self.assertEqual(node.stop(), 0)


if __name__ == "__main__":
    main()
