"""SIGTERM during a burst of requests: every request that got a response got
a complete one, and the node exits 0. SIGTERM with WebSockets whose clients
never answer the close: the node still exits 0, promptly."""

import http.client
import signal
import threading
import time
import unittest

from harness import Node, main
from test_wallet import NODE_ENV, register
from wsclient import WsClient


class ShutdownTest(unittest.TestCase):
    def test_sigterm_with_websockets_that_never_answer_the_close_exits_promptly(self):
        # Their clients stop reading: the server's close frame gets no answer,
        # and the sessions' actors must still be told the sockets are gone
        # (they used to keep the actor system, and the process, alive).
        node = Node(env=NODE_ENV)
        self.addCleanup(node.cleanup)
        node.start().wait_ready()
        clients = []
        for _ in range(3):
            uid, token = register(node.port)
            ws = WsClient(node.port, token)
            self.addCleanup(ws.close)
            ws.send({"op": "subscribe", "topic": "user:" + uid})
            self.assertEqual(ws.recv()["op"], "subscribed")
            clients.append(ws)
        started = time.monotonic()
        self.assertEqual(node.stop(timeout=15), 0, node.read_log()[-2000:])
        self.assertLess(time.monotonic() - started, 10)

    def test_sigterm_during_a_burst_completes_every_answered_request(self):
        node = Node()
        self.addCleanup(node.cleanup)  # even if the node never becomes ready
        node.start().wait_ready()
        stop = threading.Event()
        results = {"complete": 0, "incomplete": 0, "refused": 0}
        lock = threading.Lock()

        def client(path):
            deadline = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
                    for _ in range(200):
                        conn.request("GET", path)
                        resp = conn.getresponse()
                        body = resp.read()  # raises IncompleteRead if cut short
                        ok = resp.status in (200, 503) and len(body) == int(
                            resp.getheader("content-length"))
                        with lock:
                            results["complete" if ok else "incomplete"] += 1
                        if resp.getheader("connection", "").lower() == "close":
                            break
                    conn.close()
                except http.client.IncompleteRead:
                    with lock:
                        results["incomplete"] += 1
                except (OSError, http.client.HTTPException):
                    # No response at all (connection closed before one was
                    # sent): allowed once the node is stopping.
                    with lock:
                        results["refused"] += 1
                    time.sleep(0.01)

        threads = [threading.Thread(target=client, args=(p,))
                   for p in ("/healthz", "/readyz") * 4]
        for t in threads:
            t.start()
        time.sleep(1.5)
        before = results["complete"]
        t0 = time.monotonic()
        code = node.stop(signal.SIGTERM, timeout=30)
        took = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join(30)
        log = node.read_log()
        node.cleanup()
        print("responses before SIGTERM: %d, total %r, stop took %.2f s"
              % (before, results, took))
        self.assertGreater(before, 100, "the burst did not get going")
        self.assertEqual(results["incomplete"], 0)
        self.assertEqual(code, 0, log[-2000:])
        self.assertIn("stopped cleanly", log)
        # Stopped in reverse start order: the gateway, then persistence.
        self.assertLess(log.index("[gateway] stopped"), log.index("[persistence] stopped"))


if __name__ == "__main__":
    main()
