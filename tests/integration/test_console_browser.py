"""The inspection console in a real browser (Debian's headless Chromium,
driven by tests/console/browser.js with playwright-core) against a real
node: a non-admin is refused; the admin signs in, sees this node and its
live wallets, opens a wallet by `wallet:<id>`, sees its balance and ledger
sum agree, kills it and sees its restart count go up without reloading,
and finds the kill in the audit. Screenshots of each step are kept under
the test data directory (console-screenshots/)."""

import os
import shutil
import subprocess
import unittest

from harness import main
from test_circles import deposit
from test_wallet import ADMIN_PASSWORD, ADMIN_PHONE, call, login_admin, phone, start_fresh_node

HERE = os.path.dirname(os.path.abspath(__file__))
CONSOLE_TESTS = os.path.join(HERE, "..", "console")


class ConsoleBrowserTest(unittest.TestCase):
    start_node = start_fresh_node

    def test_an_operator_kills_a_wallet_and_watches_it_come_back(self):
        if os.environ.get("GIGMESH_CONSOLE_BROWSER") == "untrusted-registry":
            self.skipTest("playwright-core cannot be installed on this machine")
        self.assertTrue(os.path.exists(os.path.join(CONSOLE_TESTS, "node_modules",
                                                    "playwright-core")),
                        "run tests/console/install.sh (scripts/test does)")
        self.assertTrue(shutil.which("chromium"), "Debian's chromium is not installed")
        node, _ = self.start_node(GIGMESH_ENTITY_IDLE_TIMEOUT_MS="120000")
        port = node.port
        login_admin(port)
        client_phone, password = phone(), "password-123"
        status, _, body = call(port, "POST", "/api/v1/auth/register",
                               body={"phone": client_phone, "full_name": "Console Client",
                                     "password": password, "role": "client"})
        self.assertEqual(status, 201, body)
        import json
        doc = json.loads(body)
        deposit(self, port, doc["access_token"], 4200)
        shots = os.path.join(os.environ.get("GIGMESH_TEST_DATA", "/tmp"), "console-screenshots")
        shutil.rmtree(shots, ignore_errors=True)
        os.makedirs(shots)
        r = subprocess.run(["node", os.path.join(CONSOLE_TESTS, "browser.js"),
                            "http://127.0.0.1:%d" % port, ADMIN_PHONE, ADMIN_PASSWORD,
                            client_phone, password, doc["user"]["id"], shots],
                           capture_output=True, text=True, timeout=180)
        self.assertEqual(r.returncode, 0, "%s\n%s\nscreenshots: %s" % (r.stdout, r.stderr, shots))
        self.assertGreaterEqual(len(os.listdir(shots)), 5)


if __name__ == "__main__":
    main()
