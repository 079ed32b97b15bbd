"""Riders end to end with a real node, PostgreSQL and WebSocket clients:
online, offline and location pings (REST and the WebSocket `location` op),
who sees a rider's location, `rider.location` events, and the dispatcher of
the rider's region keeping it while it is available, also after a restart
(it reads the riders table)."""

import json
import unittest

from harness import json_body, main, wait_for
from wsclient import WsClient
from test_wallet import call, login_admin, register, start_fresh_node

NAIROBI = (-1.2921, 36.8219)


def rider(port, token, rid):
    status, _, data = call(port, "GET", "/api/v1/riders/" + rid, token)
    return status, json_body(data)


def inspect(port, admin, kind, eid):
    """The live entity's state, once it is active (a dispatcher a ping just
    woke may still be reading its region)."""
    doc = {}

    def active():
        status, _, data = call(port, "GET", "/api/v1/admin/actors/%s/%s" % (kind, eid), admin)
        doc.update(json_body(data))
        return status == 200 and doc.get("status") == "active"
    assert wait_for(active, 10, 0.1), doc
    state = doc["state"]
    return json.loads(state) if isinstance(state, str) else state


class RiderTest(unittest.TestCase):
    start_node = start_fresh_node

    def setUp(self):
        self.node, self.url = self.start_node(GIGMESH_ENTITY_IDLE_TIMEOUT_MS="60000")
        self.port = self.node.port

    def post(self, token, what, body=None):
        status, _, data = call(self.port, "POST", "/api/v1/riders/me/" + what, token, body)
        return status, json_body(data)

    def test_online_location_offline_and_who_sees_where(self):
        rid, tr = register(self.port, "rider")
        _, tc = register(self.port, "client")
        _, td = register(self.port, "dispatcher")
        st, doc = rider(self.port, tc, rid)
        self.assertEqual(st, 200, doc)
        self.assertEqual((doc["id"], doc["status"], doc["level"], doc["xp"], doc["completed_tasks"]),
                         (rid, "offline", 1, 0, 0))
        self.assertEqual(doc["rating"], 0)
        # Not riders: 403; not a rider's id: 404.
        self.assertEqual(self.post(tc, "online", {"lat": 1, "lng": 1})[0], 403)
        self.assertEqual(rider(self.port, tc, register(self.port)[0])[0], 404)
        self.assertEqual(rider(self.port, tc, "nope")[0], 404)
        # Pings need a rider online.
        self.assertEqual(self.post(tr, "location", {"lat": 1, "lng": 1})[0], 409)
        # Strict input.
        for body, status in (({"lat": 91, "lng": 0}, 422), ({"lat": 0, "lng": -180.1}, 422),
                             ({"lat": "1", "lng": 0}, 400), ({"lng": 0}, 422),
                             ({"lat": 0, "lng": 0, "speed": -1}, 422),
                             ({"lat": 0, "lng": 0, "x": 1}, 422)):
            self.assertEqual(self.post(tr, "online", body)[0] if "speed" not in body
                             else self.post(tr, "location", body)[0], status, body)
        st, doc = self.post(tr, "online", {"lat": NAIROBI[0], "lng": NAIROBI[1]})
        self.assertEqual((st, doc["status"], doc["lat"], doc["lng"]),
                         (200, "available", NAIROBI[0], NAIROBI[1]), doc)
        st, doc = self.post(tr, "location", {"lat": -1.3, "lng": 36.83, "heading": 90.5,
                                             "speed": 8})
        self.assertEqual(st, 202, doc)
        self.assertEqual((doc["lat"], doc["heading"], doc["speed"]), (-1.3, 90.5, 8))
        # The rider, dispatchers and admins see the location; others do not.
        for token, sees in ((tr, True), (td, True), (tc, False)):
            st, doc = rider(self.port, token, rid)
            self.assertEqual(("lat" in doc, "lng" in doc), (sees, sees), doc)
            self.assertEqual(doc["status"], "available")
        st, doc = self.post(tr, "offline")
        self.assertEqual((st, doc["status"]), (200, "offline"))
        self.assertEqual(self.post(tr, "offline")[0], 200)  # again: harmless

    def test_websocket_pings_reach_the_riders_topic(self):
        rid, tr = register(self.port, "rider")
        _, tc = register(self.port, "client")
        _, td = register(self.port, "dispatcher")
        self.post(tr, "online", {"lat": NAIROBI[0], "lng": NAIROBI[1]})
        watcher = WsClient(self.port, td)
        self.addCleanup(watcher.close)
        watcher.send({"op": "subscribe", "topic": "rider:" + rid})
        self.assertEqual(watcher.recv()["op"], "subscribed")
        outsider = WsClient(self.port, tc)
        self.addCleanup(outsider.close)
        outsider.send({"op": "subscribe", "topic": "rider:" + rid, "id": "x"})
        self.assertEqual((outsider.recv()["status"]), 403)
        outsider.send({"op": "location", "lat": 1, "lng": 1, "id": "l"})
        self.assertEqual(outsider.recv()["status"], 403)
        phone = WsClient(self.port, tr)
        self.addCleanup(phone.close)
        for bad, status in (({"lat": 100, "lng": 0}, 422), ({"lat": "x", "lng": 0}, 400),
                            ({"lng": 0}, 400)):
            phone.send(dict(bad, op="location", id="b"))
            self.assertEqual(phone.recv()["status"], status, bad)
        for i in range(5):
            phone.send({"op": "location", "lat": -1.29 - i * 0.001, "lng": 36.82, "speed": 5})
        seen = [watcher.recv() for _ in range(5)]
        self.assertEqual([e["event"] for e in seen], ["rider.location"] * 5)
        self.assertEqual([e["data"]["lat"] for e in seen], [-1.29 - i * 0.001 for i in range(5)])
        seqs = [e["seq"] for e in seen]
        self.assertEqual(seqs, sorted(seqs))
        st, doc = rider(self.port, tr, rid)
        self.assertAlmostEqual(doc["lat"], -1.294)

    def test_the_regions_dispatcher_keeps_available_riders_across_a_restart(self):
        admin = login_admin(self.port)
        riders = [register(self.port, "rider") for _ in range(3)]
        for i, (rid, token) in enumerate(riders):
            st, _ = self.post(token, "online", {"lat": NAIROBI[0] + i * 0.0005, "lng": NAIROBI[1]})
            self.assertEqual(st, 200)
        region = inspect(self.port, admin, "rider", riders[0][0])["region"]
        self.assertTrue(region)
        self.assertEqual(inspect(self.port, admin, "dispatcher", region)["available_riders"], 3)
        self.post(riders[2][1], "offline")
        self.assertEqual(inspect(self.port, admin, "dispatcher", region)["available_riders"], 2)
        # A restart: the dispatcher reads its region's available riders.
        self.node.stop()
        self.node.start().wait_ready()
        self.port = self.node.port
        admin = login_admin(self.port)
        # One ping activates the dispatcher: it holds both available riders,
        # the other one read from PostgreSQL.
        self.post(riders[1][1], "location", {"lat": NAIROBI[0] + 0.0006, "lng": NAIROBI[1]})
        self.assertEqual(inspect(self.port, admin, "dispatcher", region)["available_riders"], 2)
        # A rider that moves far away leaves this region for another.
        self.post(riders[0][1], "location", {"lat": 51.5, "lng": -0.12})
        self.assertEqual(inspect(self.port, admin, "dispatcher", region)["available_riders"], 1)
        far = inspect(self.port, admin, "rider", riders[0][0])["region"]
        self.assertNotEqual(far, region)
        self.assertEqual(inspect(self.port, admin, "dispatcher", far)["available_riders"], 1)

    def test_nearby_riders_come_ranked_from_both_sides_of_a_region_border(self):
        admin = login_admin(self.port)
        _, td = register(self.port, "dispatcher")
        _, tc = register(self.port, "client")
        probe_id, probe = register(self.port, "rider")
        lat = NAIROBI[0]
        self.post(probe, "online", {"lat": lat, "lng": NAIROBI[1]})

        def region_at(lng):
            self.post(probe, "location", {"lat": lat, "lng": lng})
            return inspect(self.port, admin, "rider", probe_id)["region"]

        # Find a region border east of Nairobi by bisection, to a metre.
        west, east = NAIROBI[1], NAIROBI[1] + 0.2
        home = region_at(west)
        self.assertNotEqual(region_at(east), home)
        while east - west > 0.00001:
            mid = (west + east) / 2
            if region_at(mid) == home:
                west = mid
            else:
                east = mid
        self.post(probe, "offline")
        # Query 20 m west of the border; one rider 20 m east of it (the
        # next region), one 150 m west, one 3 km away, one offline nearby.
        q = west - 0.00018
        across_id, across = register(self.port, "rider")
        near_id, near = register(self.port, "rider")
        far_id, far = register(self.port, "rider")
        gone_id, gone = register(self.port, "rider")
        for token, lng in ((across, east + 0.00018), (near, q - 0.00135), (far, q - 0.027),
                           (gone, q)):
            self.assertEqual(self.post(token, "online", {"lat": lat, "lng": lng})[0], 200)
        self.post(gone, "offline")
        self.assertNotEqual(inspect(self.port, admin, "rider", across_id)["region"],
                            inspect(self.port, admin, "rider", near_id)["region"])

        def nearby(token, query):
            status, _, data = call(self.port, "GET", "/api/v1/riders/nearby?" + query, token)
            return status, json_body(data)

        st, doc = nearby(td, "lat=%f&lng=%f&radius_m=1000" % (lat, q))
        self.assertEqual(st, 200, doc)
        self.assertEqual([r["id"] for r in doc["items"]], [across_id, near_id])
        self.assertLess(doc["items"][0]["distance_m"], 60)
        st, doc = nearby(td, "lat=%f&lng=%f&radius_m=5000&limit=1" % (lat, q))
        self.assertEqual([r["id"] for r in doc["items"]], [across_id])
        st, doc = nearby(td, "lat=%f&lng=%f&radius_m=5000" % (lat, q))
        self.assertEqual([r["id"] for r in doc["items"]], [across_id, near_id, far_id])
        self.assertEqual(nearby(tc, "lat=0&lng=0")[0], 403)
        for query in ("lng=0", "lat=91&lng=0", "lat=x&lng=0", "lat=0&lng=0&radius_m=0",
                      "lat=0&lng=0&limit=101"):
            self.assertEqual(nearby(td, query)[0], 400, query)


if __name__ == "__main__":
    main()
