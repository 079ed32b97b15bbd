#!/usr/bin/env bash
# The inspection console's cost to the node, in the same run:
# 1. Transfers per second (POST /api/v1/wallet/transfer, wrk, CONNS
#    connections) without a console, and with one open: a client doing what
#    the page does (one WebSocket subscribed to system:inspect, reading every
#    event; GET /admin/actors sorted by mailbox, 50 rows, and /admin/journal
#    every 2 s). Alternating rounds, medians.
# 2. With ACTORS live wallets (activated through GET /api/v1/wallet): how
#    long the console's actor page takes (sorted by mailbox: the 2,000 most
#    recently used entities of each kind asked; by idle time: only the rows
#    shown), and how many events
#    per second reach the console while those wallets activate (coalesced:
#    not one per actor).
# 3. The page itself in headless Chromium with those wallets live (if
#    tests/console/install.sh has run): the Actors view's first and next
#    page, and what its WebSocket receives in 10 s (tests/console/many.js).
#
#   bench/console.sh [seconds per run (10)] [connections (64)] [rounds (2)] [actors (100000)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
conns=${2:-64}
rounds=${3:-2}
actors=${4:-100000}

bench_setup
bench_start_node GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
  GIGMESH_JWT_SECRET=$bench_secret GIGMESH_ENTITY_IDLE_TIMEOUT_MS=3600000 \
  GIGMESH_ADMIN_PHONE=+255700000009 GIGMESH_ADMIN_PASSWORD=bench-admin-password
node_pid=${bench_pids[0]}
url="http://127.0.0.1:$BENCH_NODE_PORT"
admin=$(python3 - "$bench_secret" <<'PY'
import base64, hashlib, hmac, json, sys, time, uuid
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
now = int(time.time())
body = b64(json.dumps({"sub": str(uuid.uuid4()), "role": "admin", "iat": now,
                       "exp": now + 3600, "jti": "bench-admin"}).encode())
sig = hmac.new(sys.argv[1].encode(), (head + "." + body).encode(), hashlib.sha256).digest()
print(head + "." + body + "." + b64(sig))
PY
)

# The console's client: prints, when stdin closes or after $2 seconds,
# "events seconds max_per_second bytes".
cat >"$bench_data/console.py" <<'PY'
import json, os, sys, threading, time, urllib.request
sys.path.insert(0, os.path.join(os.environ["GM_ROOT"], "tests", "integration"))
from wsclient import WsClient
port, token, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
ws = WsClient(port, token, timeout=10)
ws.send({"op": "subscribe", "topic": "system:inspect"})
assert ws.recv().get("op") == "subscribed"
counts, total, size, start = {}, 0, 0, time.monotonic()
stop = threading.Event()
def rest():
    while not stop.wait(2):
        for path in ("/api/v1/admin/actors?sort=mailbox&limit=50", "/api/v1/admin/journal"):
            rq = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                        headers={"Authorization": "Bearer " + token})
            urllib.request.urlopen(rq, timeout=30).read()
threading.Thread(target=rest, daemon=True).start()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
ws.sock.settimeout(0.5)
while not stop.is_set() and time.monotonic() - start < limit:
    try:
        m = ws.recv()
    except OSError:
        continue
    sec = int(time.monotonic() - start)
    counts[sec] = counts.get(sec, 0) + 1
    total += 1
    size += len(json.dumps(m))
stop.set()
print(total, round(time.monotonic() - start, 1), max(counts.values() or [0]), size)
PY

bench_make_users 1000 100000000
bench_transfer_lua "$bench_data/transfers.lua"
wrk -t1 -c"$conns" -d3s -s "$bench_data/transfers.lua" "$url" >/dev/null  # warm-up
run_transfers() { bench_wrk_ok -t1 -c"$conns" -d"${secs}s" -s "$bench_data/transfers.lua" "$url" | awk '{print $1}'; }
without=() with=()
for ((r = 0; r < rounds; r++)); do
  bench_settle_db
  without+=("$(run_transfers)")
  bench_settle_db
  coproc CONSOLE { GM_ROOT=$GM_ROOT python3 "$bench_data/console.py" "$BENCH_NODE_PORT" "$admin" 600; }
  sleep 1
  with+=("$(run_transfers)")
  exec {CONSOLE[1]}>&-
  read -r c_events c_secs c_max c_bytes <&"${CONSOLE[0]}"
  wait "$CONSOLE_PID" 2>/dev/null || true
done
w_med=$(bench_median "${without[@]}")
c_med=$(bench_median "${with[@]}")

# ACTORS live wallets, activated while a console watches.
# bench_make_users numbers phones from 1 again: move the first batch's aside.
psql "$BENCH_PG_URL" -Atqc "UPDATE users SET phone = '+2548' || substr(phone, 6) WHERE phone LIKE '+2547%'" >/dev/null
bench_make_users "$actors" 1000
cat >"$bench_data/wallets.lua" <<'LUA'
local tokens, i, n = {}, 0, 0
init = function(args) for l in io.lines(args[1]) do tokens[#tokens + 1] = l end end
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/api/v1/wallet", {["Authorization"] = "Bearer " .. tokens[i]})
end
response = function() n = n + 1; if n >= #tokens then wrk.thread:stop() end end
LUA
coproc CONSOLE { GM_ROOT=$GM_ROOT python3 "$bench_data/console.py" "$BENCH_NODE_PORT" "$admin" 600; }
sleep 1
t0=$(date +%s)
wrk -t1 -c16 -d"$((actors / 2000 + 10))s" -s "$bench_data/wallets.lua" "$url" -- "$bench_data/tokens" >"$bench_data/wallets.out"
act_secs=$(($(date +%s) - t0))
exec {CONSOLE[1]}>&-
read -r a_events a_secs a_max a_bytes <&"${CONSOLE[0]}"
wait "$CONSOLE_PID" 2>/dev/null || true
live=$(curl -s -H "Authorization: Bearer $admin" "$url/api/v1/admin/actors?type=wallet&sort=idle&limit=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
page_ms() {
  curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $admin" "$url/api/v1/admin/actors?sort=$1&limit=50" |
    awk '{printf "%.0f", $1 * 1000}'
}
mailbox_ms=() idle_ms=()
for i in 1 2 3; do mailbox_ms+=("$(page_ms mailbox)"); idle_ms+=("$(page_ms idle)"); done

browser="not run (run tests/console/install.sh and install chromium)"
browser_json=""
if [[ -d $GM_ROOT/tests/console/node_modules/playwright-core && -x /usr/bin/chromium ]]; then
  if browser_json=$(node "$GM_ROOT/tests/console/many.js" "$url" +255700000009 bench-admin-password 10); then
    browser=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("actors view with %d live: first page %d ms (%d rows), next page %d ms; its WebSocket received %d frames (%d bytes) in %d s" % (d["total"], d["first_page_ms"], d["rows"], d["next_page_ms"], d["frames"], d["frame_bytes"], d["seconds"]))' "$browser_json")
  else
    browser="FAILED: $browser_json"
  fi
fi

echo
echo "Console bench: transfers with and without a console open; its pages with $live live wallets"
bench_header
printf '%-58s %12s\n' "transfers/s without a console (median of $rounds)" "$w_med"
printf '%-58s %12s\n' "transfers/s with a console open (median of $rounds)" "$c_med"
awk -v a="$c_med" -v b="$w_med" 'BEGIN {printf "%-58s %12.3f\n", "ratio (with / without)", a / b}'
echo "  runs without: ${without[*]}; with: ${with[*]}"
echo "  the console received $c_events events in ${c_secs}s of the last round (at most $c_max in a second, $c_bytes bytes)"
echo "activating $actors wallets took ${act_secs}s; the console received $a_events events in ${a_secs}s, at most $a_max in one second ($a_bytes bytes)"
echo "GET /admin/actors?limit=50 with $live live wallets: sort=mailbox ${mailbox_ms[*]} ms; sort=idle ${idle_ms[*]} ms"
echo "in Chromium: $browser"
echo "RESULT console transfers_without=$w_med transfers_with=$c_med live=$live page_mailbox_ms=$(bench_median "${mailbox_ms[@]}") page_idle_ms=$(bench_median "${idle_ms[@]}") events_max_per_s=$a_max"
