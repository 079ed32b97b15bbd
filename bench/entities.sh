#!/usr/bin/env bash
# Memory per idle activated wallet: activate N wallets (GET /api/v1/wallet
# for each user, through REST), let them go idle, and divide the node's
# resident memory growth by N. The first 1,000 are activated before the
# baseline reading, so buffers that grow once are not counted.
#
#   bench/entities.sh [wallets (100000)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

n=${1:-100000}
warm=1000

bench_setup
secret=$bench_secret
bench_start_node GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
  GIGMESH_JWT_SECRET=$secret GIGMESH_ENTITY_IDLE_TIMEOUT_MS=3600000 ${BENCH_NODE_ENV:-}
base=http://127.0.0.1:$BENCH_NODE_PORT
node_pid=${bench_pids[0]}

psql "$BENCH_PG_URL" -Atqc "
  WITH u AS (
    INSERT INTO users (id, phone, full_name, password_hash, role)
    SELECT gen_random_uuid(), '+2547' || lpad(g::text, 8, '0'), 'Bench ' || g, 'x', 'client'
    FROM generate_series(1, $((n + warm))) g RETURNING id)
  INSERT INTO wallets (id, user_id) SELECT gen_random_uuid(), id FROM u" >/dev/null

# One access token per user, then GET /api/v1/wallet once per user, from 8
# threads with keep-alive connections.
python3 - "$secret" "$BENCH_PG_URL" "$BENCH_NODE_PORT" "$warm" "$n" "$node_pid" <<'PY'
import base64, hashlib, hmac, http.client, json, subprocess, sys, threading, time
secret, url, port, warm, n, pid = sys.argv[1].encode(), sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
ids = subprocess.run(["psql", url, "-Atqc", "SELECT user_id FROM wallets"], check=True,
                     capture_output=True, text=True).stdout.split()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
now = int(time.time())
def token(uid, role="client"):
    body = b64(json.dumps({"sub": uid, "role": role, "iat": now, "exp": now + 3600,
                           "jti": uid[:8]}).encode())
    return head + "." + body + "." + b64(hmac.new(secret, (head + "." + body).encode(),
                                                  hashlib.sha256).digest())
def rss_kib():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
def activate(users):
    errors = [0]
    def worker(part):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for uid in part:
            c.request("GET", "/api/v1/wallet", headers={"Authorization": "Bearer " + token(uid)})
            r = c.getresponse(); r.read()
            if r.status != 200:
                errors[0] += 1
    parts = [users[i::8] for i in range(8)]
    threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for t in threads: t.start()
    for t in threads: t.join()
    return errors[0]
def live():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/api/v1/admin/actors?type=wallet",
              headers={"Authorization": "Bearer " + token(ids[0], "admin")})
    return json.loads(c.getresponse().read())["counts_by_type"]["wallet"]
activate(ids[:warm])
time.sleep(2)
before = rss_kib()
start = time.time()
errors = activate(ids[warm:warm + n])
took = time.time() - start
time.sleep(8)  # let them go idle (the node returns free memory every 5 s)
after = rss_kib()
count = live()
print()
print("entities bench: idle activated wallets, one node")
print("date: %s, machine: %s" % (time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
                                 subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() + " cores"))
print("activated %d wallets in %.1f s (%.0f/s), %d errors; live wallets: %d" % (n, took, n / took, errors, count))
print("resident memory: %.1f MiB before, %.1f MiB after" % (before / 1024, after / 1024))
print("memory per idle wallet: %.0f bytes" % ((after - before) * 1024 / n))
PY
