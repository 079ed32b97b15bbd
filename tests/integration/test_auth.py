"""Auth and users end to end: registration, login, tokens (refused when
tampered, unsigned, expired, not yet valid), refresh rotation with reuse
detection, logout, profiles, roles, strict input, rate limits (and serving on
with Redis stopped), and no secret in the log."""

import base64
import hashlib
import hmac
import json
import time
import unittest
import uuid

from harness import (PG_URL, Node, NodeTestCase, RedisServer, json_body, main, psql,
                     raw_exchange, request, wait_for)

SECRET = "integration-test-secret-0123456789abcdef"
ADMIN_PHONE = "+254799000001"
ADMIN_PASSWORD = "admin-password-42"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(claims, alg="HS256", secret=SECRET):
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signing_input = (header + "." + payload).encode()
    if alg == "none":
        return header + "." + payload + "."
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return header + "." + payload + "." + b64(sig)


def phone():
    return "+2547%08d" % (uuid.uuid4().int % 10**8)


class Api:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, token=None, headers=None, raw=None):
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if token:
            h["Authorization"] = "Bearer " + token
        status, hdrs, out = request(self.port, method, path, body=data, headers=h)
        doc = None
        if out:
            try:
                doc = json.loads(out)
            except ValueError:
                doc = out
        return status, hdrs, doc

    def register(self, role="rider", email=None, password="password-123", number=None):
        body = {"phone": number or phone(), "full_name": "Test User", "password": password,
                "role": role}
        if email:
            body["email"] = email
        return self.call("POST", "/api/v1/auth/register", body)


class AuthTest(NodeTestCase):
    node_env = {
        "GIGMESH_JWT_SECRET": SECRET,
        "GIGMESH_ADMIN_PHONE": ADMIN_PHONE,
        "GIGMESH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GIGMESH_RATE_LIMIT_IP_PER_MIN": "100000",
        "GIGMESH_RATE_LIMIT_USER_PER_MIN": "100000",
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = Api(cls.node.port)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        # Nothing secret ever reaches the log.
        for secret in (SECRET, ADMIN_PASSWORD, "password-123", "eyJ"):
            assert secret not in cls.node_log, "log contains %r" % secret

    def assert_problem(self, status, hdrs, doc, expected, field=None):
        self.assertEqual(status, expected, doc)
        self.assertEqual(hdrs.get("content-type"), "application/problem+json")
        self.assertEqual(doc["status"], expected)
        if field:
            self.assertIn(field, doc["detail"])

    def test_register_returns_user_and_tokens_and_creates_a_wallet(self):
        email = "Reg.%s@Example.com" % uuid.uuid4().hex[:8]
        status, _, doc = self.api.register(email=email)
        self.assertEqual(status, 201, doc)
        user = doc["user"]
        self.assertEqual(user["email"], email)
        self.assertEqual(user["role"], "rider")
        for k in ("id", "phone", "full_name", "bio", "location", "created_at"):
            self.assertIn(k, user)
        self.assertNotIn("password_hash", user)
        self.assertTrue(doc["access_token"] and doc["refresh_token"])
        rows = psql(PG_URL, "SELECT balance, escrow_balance, currency FROM wallets"
                            " WHERE user_id = '%s'" % user["id"])
        self.assertEqual(rows, [["0", "0", "KES"]])
        stored = psql(PG_URL, "SELECT password_hash FROM users WHERE id = '%s'" % user["id"])
        self.assertTrue(stored[0][0].startswith("$scrypt$ln=15,r=8,p=3$"))

    def test_duplicate_phone_or_email_is_409(self):
        number = phone()
        email = "dup.%s@example.com" % uuid.uuid4().hex[:8]
        self.assertEqual(self.api.register(number=number, email=email)[0], 201)
        self.assert_problem(*self.api.register(number=number), 409)
        self.assert_problem(*self.api.register(email=email.upper()), 409)

    def test_admin_cannot_be_registered(self):
        self.assert_problem(*self.api.register(role="admin"), 422, "role")

    def test_bad_input_gets_4xx_naming_the_field(self):
        post = lambda body=None, raw=None, headers=None: self.api.call(
            "POST", "/api/v1/auth/register", body, raw=raw, headers=headers)
        good = {"phone": phone(), "full_name": "X", "password": "password-123", "role": "rider"}
        self.assert_problem(*post(raw=b"{not json", headers={"Content-Type": "application/json"}), 400)
        self.assert_problem(*post(raw=b"[1]", headers={"Content-Type": "application/json"}), 400)
        self.assert_problem(*post(raw=b'{"phone":"\xff"}', headers={"Content-Type": "application/json"}), 400)
        self.assert_problem(*post(dict(good, phone=254700000000)), 400, "phone")
        self.assert_problem(*post(dict(good, phone="0700000000")), 422, "phone")
        self.assert_problem(*post(dict(good, role="pilot")), 422, "role")
        self.assert_problem(*post(dict(good, full_name="x" * 500)), 422, "full_name")
        self.assert_problem(*post(dict(good, password="short")), 422, "password")
        self.assert_problem(*post(dict(good, surprise=True)), 422, "surprise")
        missing = dict(good)
        del missing["full_name"]
        self.assert_problem(*post(missing), 422, "full_name")
        self.assert_problem(*post(raw=json.dumps(good).encode(), headers={"Content-Type": "text/plain"}), 415)

    def test_login_by_phone_or_email_and_wrong_password_is_401_without_enumeration(self):
        number = phone()
        email = "Login.%s@example.com" % uuid.uuid4().hex[:8]
        self.assertEqual(self.api.register(number=number, email=email)[0], 201)
        status, _, doc = self.api.call("POST", "/api/v1/auth/login",
                                       {"phone": number, "password": "password-123"})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["user"]["phone"], number)
        status, _, doc = self.api.call("POST", "/api/v1/auth/login",
                                       {"email": email.lower(), "password": "password-123"})
        self.assertEqual(status, 200, doc)
        wrong = self.api.call("POST", "/api/v1/auth/login", {"phone": number, "password": "nope-nope"})
        unknown = self.api.call("POST", "/api/v1/auth/login", {"phone": phone(), "password": "nope-nope"})
        self.assert_problem(*wrong, 401)
        self.assert_problem(*unknown, 401)
        self.assertEqual(wrong[2], unknown[2])  # the same body: no account enumeration
        self.assert_problem(*self.api.call("POST", "/api/v1/auth/login", {"password": "x"}), 422)

    def test_me_requires_a_valid_token(self):
        status, _, doc = self.api.register()
        token, uid = doc["access_token"], doc["user"]["id"]
        status, _, me = self.api.call("GET", "/api/v1/users/me", token=token)
        self.assertEqual(status, 200)
        self.assertEqual(me["id"], uid)
        now = int(time.time())
        claims = {"sub": uid, "role": "rider", "iat": now, "exp": now + 600}
        bad_tokens = {
            "none": None,
            "garbage": "not.a.token",
            "alg none": forge(claims, alg="none"),
            "wrong secret": forge(claims, secret="another-secret-another-secret-0000"),
            "expired": forge(dict(claims, exp=now - 1)),
            "not yet valid": forge(dict(claims, nbf=now + 300)),
            "tampered": token[:token.index(".") + 1] + b64(json.dumps(
                dict(claims, role="admin")).encode()) + token[token.rindex("."):],
        }
        for name, bad in bad_tokens.items():
            status, hdrs, doc = self.api.call("GET", "/api/v1/users/me", token=bad)
            self.assertEqual(status, 401, name)
            self.assertEqual(hdrs.get("www-authenticate"), "Bearer", name)
            self.assertEqual(doc["status"], 401, name)
        # A token forged with the real secret is accepted: the check is the signature.
        self.assertEqual(self.api.call("GET", "/api/v1/users/me", token=forge(claims))[0], 200)
        # Two Authorization headers are refused, even if the first is good:
        # which one the client meant is anyone's guess.
        out = raw_exchange(self.node.port, (
            "GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Authorization: Bearer not.a.token\r\nConnection: close\r\n\r\n" % token).encode())
        self.assertRegex(out.decode(), r"^HTTP/1\.1 401 ")

    def test_a_token_that_worked_is_refused_once_it_expires(self):
        _, _, doc = self.api.register()
        exp = int(time.time()) + 2
        short = forge({"sub": doc["user"]["id"], "role": "rider", "iat": exp - 2, "exp": exp})
        # Used enough times to reach every gateway actor (each keeps verified tokens).
        for _ in range(8):
            self.assertEqual(self.api.call("GET", "/api/v1/users/me", token=short)[0], 200)
        time.sleep(max(0, exp - time.time()) + 0.1)
        for _ in range(8):
            self.assertEqual(self.api.call("GET", "/api/v1/users/me", token=short)[0], 401)

    def test_profile_update_and_public_profile(self):
        _, _, doc = self.api.register(email="pub.%s@example.com" % uuid.uuid4().hex[:8])
        token, uid = doc["access_token"], doc["user"]["id"]
        status, _, me = self.api.call("PUT", "/api/v1/users/me",
                                      {"bio": "I deliver fast", "location": "Nairobi"}, token=token)
        self.assertEqual(status, 200, me)
        self.assertEqual(me["bio"], "I deliver fast")
        self.assertEqual(me["full_name"], "Test User")
        _, _, other = self.api.register()
        status, _, public = self.api.call("GET", "/api/v1/users/" + uid, token=other["access_token"])
        self.assertEqual(status, 200)
        self.assertEqual(public["bio"], "I deliver fast")
        self.assertNotIn("phone", public)
        self.assertNotIn("email", public)
        for missing in (str(uuid.uuid4()), "not-a-uuid"):
            self.assert_problem(*self.api.call("GET", "/api/v1/users/" + missing,
                                               token=other["access_token"]), 404)
        self.assert_problem(*self.api.call("PUT", "/api/v1/users/me", {"bio": 5}, token=token), 400, "bio")

    def test_refresh_rotates_and_reuse_revokes_the_family(self):
        _, _, doc = self.api.register()
        first = doc["refresh_token"]
        status, _, pair = self.api.call("POST", "/api/v1/auth/refresh", {"refresh_token": first})
        self.assertEqual(status, 200, pair)
        second = pair["refresh_token"]
        self.assertNotEqual(first, second)
        self.assertEqual(self.api.call("GET", "/api/v1/users/me", token=pair["access_token"])[0], 200)
        # The first token again: reuse. It fails, and so does its successor.
        self.assert_problem(*self.api.call("POST", "/api/v1/auth/refresh", {"refresh_token": first}), 401)
        self.assert_problem(*self.api.call("POST", "/api/v1/auth/refresh", {"refresh_token": second}), 401)
        self.assert_problem(*self.api.call("POST", "/api/v1/auth/refresh", {"refresh_token": "bogus"}), 401)

    def test_logout_revokes_the_refresh_token(self):
        _, _, doc = self.api.register()
        status, _, _ = self.api.call("POST", "/api/v1/auth/logout", {"refresh_token": doc["refresh_token"]})
        self.assertEqual(status, 204)
        self.assert_problem(*self.api.call("POST", "/api/v1/auth/refresh",
                                           {"refresh_token": doc["refresh_token"]}), 401)

    def test_admin_account_from_configuration(self):
        ok = wait_for(lambda: self.api.call("POST", "/api/v1/auth/login", {
            "phone": ADMIN_PHONE, "password": ADMIN_PASSWORD})[0] == 200, 15, 0.2)
        self.assertTrue(ok)
        _, _, doc = self.api.call("POST", "/api/v1/auth/login",
                                  {"phone": ADMIN_PHONE, "password": ADMIN_PASSWORD})
        self.assertEqual(doc["user"]["role"], "admin")

    def test_openapi_documents_the_auth_routes(self):
        _, _, doc = self.api.call("GET", "/api/openapi.json")
        reg = doc["paths"]["/api/v1/auth/register"]["post"]
        props = reg["requestBody"]["content"]["application/json"]["schema"]["properties"]
        self.assertEqual(props["role"]["enum"], ["rider", "hustler", "client", "dispatcher"])
        self.assertIn("security", doc["paths"]["/api/v1/users/me"]["get"])


class RateLimitTest(unittest.TestCase):
    def test_150_wrong_logins_from_one_address_meet_the_limit_whenever_they_start(self):
        # Limits hold over any 60 s, not per clock minute: a run that
        # straddles a minute boundary is refused past the limit too.
        node = Node(env={"GIGMESH_JWT_SECRET": SECRET, "GIGMESH_RATE_LIMIT_IP_PER_MIN": "100"})
        self.addCleanup(node.cleanup)
        node.start().wait_ready()
        api = Api(node.port)
        # Start just before a minute boundary, so fixed windows would reset
        # in the middle of the run.
        wait = (58.5 - time.time() % 60) % 60
        time.sleep(wait)
        statuses = [api.call("POST", "/api/v1/auth/login",
                             {"phone": "+254700000009", "password": "wrong-password"})[0]
                    for _ in range(150)]
        self.assertEqual(statuses.count(401), 100, statuses)
        self.assertEqual(statuses.count(429), 50, statuses)
        self.assertEqual(node.stop(), 0)

    def test_a_burst_gets_429_with_retry_after_and_redis_loss_falls_back_locally(self):
        # Cleanups run however the test ends, even if the node never starts.
        redis = RedisServer()
        self.addCleanup(redis.cleanup)
        redis.start()
        node = Node(redis_url=redis.url, env={
            "GIGMESH_JWT_SECRET": SECRET, "GIGMESH_RATE_LIMIT_IP_PER_MIN": "20"})
        self.addCleanup(node.cleanup)
        node.start().wait_ready()
        api = Api(node.port)
        try:
            statuses = [api.call("GET", "/api/v1/users/me")[0] for _ in range(30)]
            self.assertEqual(statuses[:20], [401] * 20)
            self.assertEqual(set(statuses[20:]), {429})
            status, hdrs, doc = api.call("GET", "/api/v1/users/me")
            self.assertEqual(doc["status"], 429)
            # Counts leave the window in 5 s buckets, 60 to 65 s after.
            self.assertTrue(1 <= int(hdrs["retry-after"]) <= 65)
            self.assertEqual(node.get("/healthz")[0], 200)  # service routes are not limited

            redis.stop()
            # Redis gone: the node keeps serving (counting locally) and says
            # so once its next sync fails.
            mode = lambda: json_body(node.get("/readyz")[2])["checks"]["rate_limiter"]["mode"]
            self.assertTrue(wait_for(lambda: mode() == "local", 5, 0.05))
            status, _, _ = api.call("GET", "/api/v1/users/me")
            self.assertIn(status, (401, 429))
            self.assertEqual(node.get("/readyz")[0], 200)
            self.assertIn("gigmesh_rate_limit_local 1", node.get("/metrics")[2].decode())
            for _ in range(5):
                api.call("GET", "/api/v1/users/me")
            log = node.read_log()
            self.assertEqual(log.count("counting rate limits locally"), 1, log[-3000:])
            redis.start()
            self.assertTrue(wait_for(lambda: mode() == "redis", 10, 0.1))
        finally:
            self.assertEqual(node.stop(), 0)


if __name__ == "__main__":
    main()
