#!/usr/bin/env bash
# Dispatch, three benchmarks on one node and one PostgreSQL, each beside a
# PostgreSQL baseline in the same run, with RIDERS available riders in one
# city (uniform in a square of about 22 km around Nairobi).
#
# The riders are loaded with COPY: their users rows (role 'rider': a rider
# entity reads `users u LEFT JOIN riders r` and requires it) and their
# riders rows, each with the dispatch region the node computes
# (bench/riders_csv.cpp); a dispatcher reads its region's riders when it
# activates.
#
# nearest: the best available riders for a point. Node: `GET
#   /api/v1/riders/nearby` at random points of the city (10 nearest within
#   3 km, ranked by distance, rating, level), through HTTP, by wrk over
#   CONNS connections. Baseline: the same question as one SQL query (a KNN
#   search on a GiST index of the riders' positions with the `cube` and
#   `earthdistance` extensions, no PostGIS), by pgbench over CONNS
#   connections with the same random points.
#
# tasks: the dispatch decision, "task created → offer sent". TASK_CLIENTS
#   client users (wallets topped up through POST /api/v1/wallet/deposit)
#   create tasks (fee 100) at random pickups of the city with POST
#   /api/v1/tasks, by wrk over CONNS connections for SECONDS (at most
#   MAX_TASKS tasks: each offer holds its rider, and offers do not time out
#   during the run, GIGMESH_DISPATCH_OFFER_TIMEOUT_MS is an hour). The node
#   writes each task's created_at, offered_at and dispatch_us (dispatch
#   start → offer sent) to `tasks`; the figures are SQL percentiles over the
#   tasks of the run that were offered. Baseline: the same decision as one
#   PostgreSQL transaction per task, by pgbench over CONNS connections: lock
#   the fee in a wallet row, insert the task, take the nearest available
#   rider that holds no offer (KNN on a GiST index, LIMIT 1 FOR UPDATE SKIP
#   LOCKED, on bench_riders, a copy of the same riders), mark the rider's
#   offer and the task's offered_to, commit.
#
# pings: location pings ingested per second. PING_SESSIONS riders of their
#   own (offline until the bench brings them online with POST
#   /api/v1/riders/me/online, so the tasks part never offered them
#   anything) send the WebSocket `location` op with an id, each keeping
#   PING_INFLIGHT pings unacknowledged, for SECONDS (bench/ping_load.cpp).
#   Baseline: one UPDATE of the rider's row per ping (its own transaction,
#   as a service that writes each ping as it comes would), by pgbench over
#   PG_CLIENTS connections, on the same riders.
#
#   bench/dispatch.sh [riders (100000)] [seconds (10)] [connections (2)]
#                     [ping sessions (200)] [pings in flight per session (8)]
#                     [pgbench clients for the pings baseline (32)]
#   BENCH_PARTS="nearest tasks pings" (any of them), TASK_CLIENTS (10),
#   MAX_TASKS (riders / 2)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

riders=${1:-100000}
secs=${2:-10}
conns=${3:-2}
ping_sessions=${4:-200}
ping_inflight=${5:-8}
pg_clients=${6:-32}
parts=" ${BENCH_PARTS:-nearest tasks pings} "
task_clients=${TASK_CLIENTS:-10}
max_tasks=${MAX_TASKS:-$((riders / 2))}
fee=100
lat=-1.2921
lng=36.8219
spread=0.2
box=$(awk -v s="$spread" 'BEGIN {printf "%.4f", s * 0.8}')  # where pickups and pings go
has_part() { [[ $parts == *" $1 "* ]]; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_setup
bin=$GM_ROOT/build/release/bench
bench_start_node GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
  GIGMESH_JWT_SECRET=$bench_secret GIGMESH_ENTITY_IDLE_TIMEOUT_MS=3600000 \
  GIGMESH_DISPATCH_OFFER_TIMEOUT_MS=3600000 ${BENCH_NODE_ENV:-}
node_pid=${bench_pids[0]}
url="http://127.0.0.1:$BENCH_NODE_PORT"
pgbench_bin=${GIGMESH_PGBIN:-$GM_PGBIN}/pgbench

"$bin/riders_csv" "$riders" "$lat" "$lng" "$spread" 7 "$bench_data/rider_users.csv" >"$bench_data/riders.csv"
psql "$BENCH_PG_URL" -Atqc "\copy users (id, phone, email, full_name, password_hash, role) FROM '$bench_data/rider_users.csv' WITH (FORMAT csv)"
psql "$BENCH_PG_URL" -Atqc "\copy riders (user_id, status, lat, lng, region, rating, level, version) FROM '$bench_data/riders.csv' WITH (FORMAT csv)"
psql "$BENCH_PG_URL" -Atqc "ANALYZE users; ANALYZE riders" >/dev/null

# Prints one access token (an hour, signed with the node's secret) per line
# of file $2 for the user id that starts the line, with role $1; the rest of
# the line follows the token.
bench_forge() {
  python3 - "$bench_secret" "$1" "$2" <<'PY'
import base64, hashlib, hmac, json, sys, time, uuid
secret, role, path = sys.argv[1].encode(), sys.argv[2], sys.argv[3]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
now = int(time.time())
for line in (open(path) if path != "-" else [str(uuid.uuid4())]):
    f = line.split()
    if not f:
        continue
    body = b64(json.dumps({"sub": f[0], "role": role, "iat": now, "exp": now + 3600,
                           "jti": f[0][:8]}).encode())
    sig = hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest()
    print(" ".join([head + "." + body + "." + b64(sig)] + f[1:]))
PY
}

ms() { awk -v v="$1" 'BEGIN {if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; printf "%.3f", v}'; }
# wrk's output $1 → "p50_ms p99_ms non_2xx"
wrk_pcts() {
  echo "$(ms "$(awk '$1 == "50%" {print $2}' <<<"$1")") $(ms "$(awk '$1 == "99%" {print $2}' <<<"$1")")" \
    "$(awk '/Non-2xx/ {n += $5} /Socket errors:/ {for (i = 3; i <= NF; i += 2) {v = $(i + 1); sub(/,/, "", v); n += v}} END {print n + 0}' <<<"$1")"
}
# pgbench's per-transaction logs in directory $1 → "p50_ms p99_ms"
pglog_pcts() {
  cat "$1"/pgbench_log.* 2>/dev/null | awk '{print $3 / 1000}' | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) {print "0 0"; exit}
                           a = int(NR * 0.5); b = int(NR * 0.99); if (a < 1) a = 1; if (b < 1) b = 1
                           printf "%.3f %.3f\n", v[a], v[b]}'
}
# CPU seconds (user + system) of the children the shell has waited for, in
# file $1, written by `times >FILE` in the main shell: in a subshell, as in
# $(...), `times` would count only that subshell's own children.
child_cpu() {
  awk 'NR == 2 {t = 0; for (i = 1; i <= 2; i++) {split($i, a, /m/); sub(/s/, "", a[2]); t += a[1] * 60 + a[2]}; printf "%.3f", t}' "$1"
}

# --- nearest -----------------------------------------------------------------
if has_part nearest; then
  # A dispatcher's token: the bench's own, with the dispatcher role.
  token=$(bench_forge dispatcher -)
  cat >"$bench_data/nearby.lua" <<LUA
math.randomseed(11)
request = function()
  local y = $lat + (math.random() - 0.5) * $spread * 0.8
  local x = $lng + (math.random() - 0.5) * $spread * 0.8
  return wrk.format("GET", string.format("/api/v1/riders/nearby?lat=%.6f&lng=%.6f&radius_m=3000&limit=10", y, x),
                    {["Authorization"] = "Bearer $token"})
end
LUA
  # Warm-up: every region's dispatcher reads its riders once.
  wrk -t1 -c"$conns" -d3s -s "$bench_data/nearby.lua" "$url" >/dev/null
  sample=$(curl -s -H "Authorization: Bearer $token" "$url/api/v1/riders/nearby?lat=$lat&lng=$lng&radius_m=3000&limit=10")
  t0=$(bench_cpu_ticks "$node_pid")
  node_out=$(wrk --latency -t1 -c"$conns" -d"${secs}s" -s "$bench_data/nearby.lua" "$url")
  node_cpu=$(($(bench_cpu_ticks "$node_pid") - t0))
  node_rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$node_out")
  node_n=$(awk '/ requests in / {print $1}' <<<"$node_out")
  read -r node_p50 node_p99 node_bad <<<"$(wrk_pcts "$node_out")"

  # Baseline: the same question in SQL, with a KNN index.
  psql "$BENCH_PG_URL" -Atqc "
    CREATE EXTENSION IF NOT EXISTS cube; CREATE EXTENSION IF NOT EXISTS earthdistance;
    CREATE INDEX IF NOT EXISTS riders_knn ON riders USING gist (ll_to_earth(lat, lng))
      WHERE status = 'available'" >/dev/null
  cat >"$bench_data/nearest.sql" <<SQL
\set y random(0, 1000000)
\set x random(0, 1000000)
SELECT user_id, rating, level, earth_distance(ll_to_earth(lat, lng), ll_to_earth($lat + (:y / 1000000.0 - 0.5) * $spread * 0.8, $lng + (:x / 1000000.0 - 0.5) * $spread * 0.8)) AS m
FROM riders WHERE status = 'available'
  AND earth_box(ll_to_earth($lat + (:y / 1000000.0 - 0.5) * $spread * 0.8, $lng + (:x / 1000000.0 - 0.5) * $spread * 0.8), 3000) @> ll_to_earth(lat, lng)
ORDER BY ll_to_earth(lat, lng) <-> ll_to_earth($lat + (:y / 1000000.0 - 0.5) * $spread * 0.8, $lng + (:x / 1000000.0 - 0.5) * $spread * 0.8)
LIMIT 10;
SQL
  rm -rf "$bench_data/pglog" && mkdir -p "$bench_data/pglog"
  (cd "$bench_data/pglog" && "$pgbench_bin" -n -M prepared -c "$conns" -j "$conns" -T "$secs" -l \
    -f "$bench_data/nearest.sql" "$BENCH_PG_URL" >"$bench_data/pgbench.out" 2>&1)
  pg_tps=$(awk '/^tps/ {printf "%d", $3}' "$bench_data/pgbench.out")
  read -r pg_p50 pg_p99 <<<"$(pglog_pcts "$bench_data/pglog")"
  # Nothing later needs it, and the node's writes of riders rows would pay
  # for it (the tasks baseline has its own on bench_riders).
  psql "$BENCH_PG_URL" -Atqc "DROP INDEX IF EXISTS riders_knn" >/dev/null
fi

# Prints p50 and p99 in ms of histogram $1 between two /metrics scrapes ($2
# before, $3 after), interpolated linearly within a bucket (as Prometheus'
# histogram_quantile does); buckets are 0.1 ms wide up to 10 ms.
hist_pcts() {
  python3 - "$@" <<'PY'
import re, sys
name, before, after = sys.argv[1:4]
def read(path):
    out = {}
    for line in open(path):
        m = re.match(r'%s_bucket\{le="([^"]+)"\} (\S+)' % re.escape(name), line)
        if m:
            out[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = float(m.group(2))
    return out
b, a = read(before), read(after)
les = sorted(a)
cum = [a[le] - b.get(le, 0) for le in les]
total = cum[-1] if cum else 0
def q(p):
    if total <= 0:
        return -1
    want, lo, prev = p * total, 0.0, 0.0
    for le, c in zip(les, cum):
        if c >= want:
            if le == float("inf"):
                return lo * 1000
            frac = (want - prev) / (c - prev) if c > prev else 1
            return (lo + (le - lo) * frac) * 1000
        lo, prev = le, c
    return lo * 1000
print("%.3f %.3f %d" % (q(0.5), q(0.99), total))
PY
}

# Waits until the tasks the node has written, and those offered, stop
# growing (two readings 0.5 s apart agree), at most 10 s.
wait_offers() {
  local prev="" cur i
  for ((i = 0; i < 20; i++)); do
    cur=$(psql "$BENCH_PG_URL" -Atqc "SELECT count(*) || ' ' || count(offered_at) FROM tasks")
    [ "$cur" = "$prev" ] && return 0
    prev=$cur
    sleep 0.5
  done
}

# --- tasks -------------------------------------------------------------------
if has_part tasks; then
  bench_make_users "$task_clients" 0  # client users and wallets in SQL; tokens in $bench_data/tokens
  deposited=0
  while read -r t; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
      -H "Authorization: Bearer $t" -H 'Content-Type: application/json' \
      -d '{"amount":1000000000000}' "$url/api/v1/wallet/deposit" || true)
    if [ "$code" = 201 ]; then deposited=$((deposited + 1)); fi
  done <"$bench_data/tokens"
  [ "$deposited" = "$task_clients" ] ||
    gm_die "only $deposited of $task_clients deposits answered 201: see $bench_data/node.log"
  {
    echo "local tokens = {"
    sed 's/.*/"&",/' "$bench_data/tokens"
    echo "}"
    # Requests built before the run (20,000, sent in turn), as bench_transfer_lua
    # does: formatting each in Lua as it is sent costs the load generator CPU.
    cat <<LUA
local reqs = {}
local cap, answered = 0, 0
init = function(args)
  cap = tonumber(args[1]) or 0
  math.randomseed(tonumber(args[2]) or 13)
  for k = 1, 20000 do
    local y = $lat + (math.random() - 0.5) * $box
    local x = $lng + (math.random() - 0.5) * $box
    local body = string.format('{"pickup":{"lat":%.6f,"lng":%.6f},"dropoff":{"lat":%.6f,"lng":%.6f},"fee":$fee}',
                               y, x, y + (math.random() - 0.5) * 0.04, x + (math.random() - 0.5) * 0.04)
    reqs[k] = wrk.format("POST", "/api/v1/tasks",
                         {["Authorization"] = "Bearer " .. tokens[math.random(#tokens)],
                          ["Content-Type"] = "application/json"}, body)
  end
end
local next_req = 0
request = function()
  next_req = next_req % #reqs + 1
  return reqs[next_req]
end
-- At most cap tasks: each offer holds its rider for the rest of the run.
response = function(status)
  answered = answered + 1
  if cap > 0 and answered >= cap then wrk.thread:stop() end
end
LUA
  } >"$bench_data/tasks.lua"
  # Riders that are available send pings every few seconds, so their
  # entities are active (the idle timeout is minutes): activate all of them
  # first with GET /riders/{id}, as their pings would. WARM_RIDERS=0 leaves
  # them cold (each offer then activates its rider: one more read).
  warm_riders=${WARM_RIDERS:-1}
  if [ "$warm_riders" = 1 ]; then
    cut -d, -f1 "$bench_data/riders.csv" >"$bench_data/rider_ids"
    cat >"$bench_data/warm.lua" <<LUA
local ids, i, n = {}, 0, 0
init = function(args) for l in io.lines(args[1]) do ids[#ids + 1] = l end end
request = function()
  i = i % #ids + 1
  return wrk.format("GET", "/api/v1/riders/" .. ids[i], {["Authorization"] = "Bearer $(head -n1 "$bench_data/tokens")"})
end
response = function() n = n + 1; if n >= #ids then wrk.thread:stop() end end
LUA
    warm_t0=$(date +%s)
    # wrk waits out -d even once every rider answered: about 6,000/s here.
    wrk -t1 -c8 -d"$((riders / 3000 + 5))s" -s "$bench_data/warm.lua" "$url" -- "$bench_data/rider_ids" >"$bench_data/warm.out"

    warm_secs=$(($(date +%s) - warm_t0))
  fi
  # Warm-up (300 tasks at most), then the run.
  wrk -t1 -c"$conns" -d2s -s "$bench_data/tasks.lua" "$url" -- 300 17 >/dev/null
  sample_task=$(curl -s --max-time 10 -X POST -H "Authorization: Bearer $(head -n1 "$bench_data/tokens")" \
    -H 'Content-Type: application/json' \
    -d "{\"pickup\":{\"lat\":$lat,\"lng\":$lng},\"dropoff\":{\"lat\":$lat,\"lng\":$lng},\"fee\":$fee}" \
    "$url/api/v1/tasks" || true)
  wait_offers
  bench_settle_db
  t_start=$(psql "$BENCH_PG_URL" -Atqc "SELECT clock_timestamp()")
  curl -s "$url/metrics" >"$bench_data/metrics.before"
  t0=$(bench_cpu_ticks "$node_pid")
  p0=$(bench_pg_ticks)
  task_out=$(wrk --latency -t1 -c"$conns" -d"${secs}s" -s "$bench_data/tasks.lua" "$url" -- "$max_tasks" 13)
  wait_offers
  task_cpu=$(($(bench_cpu_ticks "$node_pid") - t0))
  task_pg_cpu=$(($(bench_pg_ticks) - p0))
  curl -s "$url/metrics" >"$bench_data/metrics.after"
  # Offer sent (durable, the rider holding it, task.offered published), from
  # the node's histograms: task created → first offer, dispatch start → offer.
  read -r task_s50 task_s99 task_sn <<<"$(hist_pcts gigmesh_task_first_offer_seconds \
    "$bench_data/metrics.before" "$bench_data/metrics.after")"
  read -r task_h50 task_h99 task_hn <<<"$(hist_pcts gigmesh_task_dispatch_seconds \
    "$bench_data/metrics.before" "$bench_data/metrics.after")"
  read -r task_http50 task_http99 task_bad <<<"$(wrk_pcts "$task_out")"
  task_sent=$(awk '/ requests in / {print $1}' <<<"$task_out")
  read -r task_n task_offered task_distinct task_o50 task_o99 task_d50 task_d99 task_rate < <(
    psql "$BENCH_PG_URL" -AtF' ' -qc "
      SELECT count(*), count(offered_at), count(DISTINCT offered_to) FILTER (WHERE offered_at IS NOT NULL),
        coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM offered_at - created_at)::float8 * 1000)
                        FILTER (WHERE offered_at IS NOT NULL))::numeric, 3), -1),
        coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM offered_at - created_at)::float8 * 1000)
                        FILTER (WHERE offered_at IS NOT NULL))::numeric, 3), -1),
        coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY dispatch_us / 1000.0::float8)
                        FILTER (WHERE offered_at IS NOT NULL AND dispatch_us IS NOT NULL))::numeric, 3), -1),
        coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY dispatch_us / 1000.0::float8)
                        FILTER (WHERE offered_at IS NOT NULL AND dispatch_us IS NOT NULL))::numeric, 3), -1),
        coalesce(round(count(*) / nullif(extract(epoch FROM max(created_at) - min(created_at)), 0)), 0)
      FROM tasks WHERE created_at >= '$t_start'::timestamptz")
  task_statuses=$(psql "$BENCH_PG_URL" -Atqc "
    SELECT coalesce(string_agg(status || ' ' || n, ', ' ORDER BY status), 'none')
    FROM (SELECT status, count(*) AS n FROM tasks WHERE created_at >= '$t_start'::timestamptz GROUP BY status) s")
  # Over every task of the run and the warm-up: a rider holds one offer.
  task_double=$(psql "$BENCH_PG_URL" -Atqc "
    SELECT count(*) FROM (SELECT offered_to FROM tasks WHERE status = 'offered' AND offered_to IS NOT NULL
                          GROUP BY offered_to HAVING count(*) > 1) d")

  # Baseline: the same decision as one transaction per task.
  psql "$BENCH_PG_URL" -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION IF NOT EXISTS cube; CREATE EXTENSION IF NOT EXISTS earthdistance;
DROP TABLE IF EXISTS bench_riders, bench_tasks, bench_wallets;
CREATE TABLE bench_riders (
  user_id uuid PRIMARY KEY, status text NOT NULL, lat float8, lng float8, region text,
  rating float8 NOT NULL, level integer NOT NULL, version bigint NOT NULL,
  offer_task uuid);  -- the task this rider holds an offer of
\copy bench_riders (user_id, status, lat, lng, region, rating, level, version) FROM '$bench_data/riders.csv' WITH (FORMAT csv)
-- Available riders that hold no offer: a rider that takes one leaves the index.
CREATE INDEX bench_riders_knn ON bench_riders USING gist (ll_to_earth(lat, lng))
  WHERE status = 'available' AND offer_task IS NULL;
CREATE TABLE bench_wallets (
  id integer PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0),
  escrow_balance bigint NOT NULL CHECK (escrow_balance >= 0));
INSERT INTO bench_wallets SELECT g, 1000000000000, 0 FROM generate_series(1, $task_clients) g;
CREATE TABLE bench_tasks (
  id uuid PRIMARY KEY, creator integer NOT NULL, status text NOT NULL, fee bigint NOT NULL,
  pickup_lat float8 NOT NULL, pickup_lng float8 NOT NULL, dropoff_lat float8 NOT NULL,
  dropoff_lng float8 NOT NULL, offered_to uuid, created_at timestamptz NOT NULL,
  offered_at timestamptz);
VACUUM (ANALYZE) bench_riders, bench_wallets, bench_tasks;
CHECKPOINT;
SQL
  cat >"$bench_data/task.sql" <<SQL
\set w random(1, $task_clients)
\set py $lat + (random(0, 1000000) / 1000000.0 - 0.5) * $box
\set px $lng + (random(0, 1000000) / 1000000.0 - 0.5) * $box
\set dy :py + (random(0, 1000000) / 1000000.0 - 0.5) * 0.04
\set dx :px + (random(0, 1000000) / 1000000.0 - 0.5) * 0.04
BEGIN;
UPDATE bench_wallets SET balance = balance - $fee, escrow_balance = escrow_balance + $fee WHERE id = :w;
INSERT INTO bench_tasks (id, creator, status, fee, pickup_lat, pickup_lng, dropoff_lat, dropoff_lng, created_at)
VALUES (gen_random_uuid(), :w, 'pending', $fee, :py, :px, :dy, :dx, clock_timestamp()) RETURNING id AS tid \gset
SELECT coalesce((SELECT user_id FROM bench_riders
                 WHERE status = 'available' AND offer_task IS NULL
                   AND earth_box(ll_to_earth(:py, :px), 5000) @> ll_to_earth(lat, lng)
                 ORDER BY ll_to_earth(lat, lng) <-> ll_to_earth(:py, :px)
                 LIMIT 1 FOR UPDATE SKIP LOCKED),
                '00000000-0000-0000-0000-000000000000') AS rider \gset
UPDATE bench_riders SET offer_task = :tid WHERE user_id = :rider;
UPDATE bench_tasks SET status = 'offered', offered_to = :rider, offered_at = clock_timestamp()
WHERE id = :tid AND :rider <> '00000000-0000-0000-0000-000000000000'::uuid;
COMMIT;
SQL
  rm -rf "$bench_data/pglog_tasks" && mkdir -p "$bench_data/pglog_tasks"
  p0=$(bench_pg_ticks)
  (cd "$bench_data/pglog_tasks" && "$pgbench_bin" -n -M prepared -c "$conns" -j "$conns" -T "$secs" -l \
    -f "$bench_data/task.sql" "$BENCH_PG_URL" >"$bench_data/pgbench_tasks.out" 2>&1) ||
    { tail -n 5 "$bench_data/pgbench_tasks.out" >&2; gm_die "pgbench (tasks) failed"; }
  pgt_cpu=$(($(bench_pg_ticks) - p0))
  pgt_tps=$(awk '/^tps/ {printf "%d", $3}' "$bench_data/pgbench_tasks.out")
  read -r pgt_p50 pgt_p99 <<<"$(pglog_pcts "$bench_data/pglog_tasks")"
  read -r pgt_n pgt_offered pgt_distinct pgt_o50 pgt_o99 < <(
    psql "$BENCH_PG_URL" -AtF' ' -qc "
      SELECT count(*), count(offered_at), count(DISTINCT offered_to),
        coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM offered_at - created_at)::float8 * 1000)
                        FILTER (WHERE offered_at IS NOT NULL))::numeric, 3), -1),
        coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM offered_at - created_at)::float8 * 1000)
                        FILTER (WHERE offered_at IS NOT NULL))::numeric, 3), -1)
      FROM bench_tasks")
fi

# --- pings -------------------------------------------------------------------
if has_part pings; then
  # Riders of their own, offline: no task was offered to them. Points spread
  # over the city; bench_ping_ids maps pgbench's numbers to them.
  psql "$BENCH_PG_URL" -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
DROP TABLE IF EXISTS bench_ping_ids;
CREATE TABLE bench_ping_ids (k integer PRIMARY KEY, user_id uuid NOT NULL, lat float8 NOT NULL, lng float8 NOT NULL);
INSERT INTO bench_ping_ids
SELECT g, gen_random_uuid(), $lat + ((g * 7919 % 1000) / 1000.0 - 0.5) * $box,
       $lng + ((g * 104729 % 997) / 997.0 - 0.5) * $box
FROM generate_series(1, $ping_sessions) g;
INSERT INTO users (id, phone, email, full_name, password_hash, role)
SELECT user_id, '+2542' || lpad(k::text, 8, '0'), 'pinger' || k || '@bench.invalid', 'Bench pinger ' || k, 'x', 'rider'
FROM bench_ping_ids;
INSERT INTO riders (user_id, status, lat, lng, rating, level, version)
SELECT user_id, 'offline', lat, lng, 4.0, 1, 1 FROM bench_ping_ids;
SQL
  psql "$BENCH_PG_URL" -AtF' ' -qc "SELECT user_id, round(lat::numeric, 7), round(lng::numeric, 7)
                                     FROM bench_ping_ids ORDER BY k" >"$bench_data/ping_riders"
  bench_forge rider "$bench_data/ping_riders" >"$bench_data/ping_tokens"  # "token lat lng"
  online=$(python3 - "$url" "$bench_data/ping_tokens" <<'PY'
import json, sys, urllib.request
url, path = sys.argv[1], sys.argv[2]
ok = bad = 0
for line in open(path):
    f = line.split()
    if len(f) < 3:
        continue
    req = urllib.request.Request(
        url + "/api/v1/riders/me/online", method="POST",
        data=json.dumps({"lat": float(f[1]), "lng": float(f[2])}).encode(),
        headers={"Authorization": "Bearer " + f[0], "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            ok += r.status == 200
    except Exception as e:
        bad += 1
        if bad <= 3:
            body = e.read()[:300] if hasattr(e, "read") else b""
            print("online refused:", e, body, file=sys.stderr)
print(ok)
PY
)
  [ "${online:-0}" -gt 0 ] || gm_die "no rider went online: see $bench_data/node.log"
  # Warm-up, then the run.
  "$bin/ping_load" "$BENCH_NODE_PORT" "$bench_data/ping_tokens" "$ping_sessions" 2 2 >/dev/null
  sleep 1
  psql "$BENCH_PG_URL" -qX -c "VACUUM (ANALYZE) riders" -c "CHECKPOINT" >/dev/null
  t0=$(bench_cpu_ticks "$node_pid")
  p0=$(bench_pg_ticks)
  times >"$bench_data/times.0"
  ping_out=$("$bin/ping_load" "$BENCH_NODE_PORT" "$bench_data/ping_tokens" "$ping_sessions" \
    "$ping_inflight" "$secs")
  times >"$bench_data/times.1"
  ping_cpu=$(($(bench_cpu_ticks "$node_pid") - t0))
  ping_pg_cpu=$(($(bench_pg_ticks) - p0))
  read -r ping_acked ping_errors ping_rate ping_p50 ping_p99 ping_closed <<<"$ping_out"
  ping_client_us=$(awk -v a="$(child_cpu "$bench_data/times.0")" -v b="$(child_cpu "$bench_data/times.1")" -v n="$ping_acked" 'BEGIN {printf "%.1f", (b - a) * 1e6 / (n > 0 ? n : 1)}')
  # The riders' buffered writes land before the baseline starts.
  sleep 2

  # Baseline: one UPDATE per ping, its own transaction, on the same rows.
  psql "$BENCH_PG_URL" -qX -c "VACUUM (ANALYZE) riders" -c "CHECKPOINT" >/dev/null
  cat >"$bench_data/ping.sql" <<SQL
\set k random(1, $ping_sessions)
\set dy (random(0, 1000000) / 1000000.0 - 0.5) * 0.001
\set dx (random(0, 1000000) / 1000000.0 - 0.5) * 0.001
UPDATE riders r SET lat = b.lat + :dy, lng = b.lng + :dx, located_at = now(), version = r.version + 1
FROM bench_ping_ids b WHERE b.k = :k AND r.user_id = b.user_id;
SQL
  rm -rf "$bench_data/pglog_pings" && mkdir -p "$bench_data/pglog_pings"
  p0=$(bench_pg_ticks)
  (cd "$bench_data/pglog_pings" && "$pgbench_bin" -n -M prepared -c "$pg_clients" -j $((pg_clients < 2 ? pg_clients : 2)) -T "$secs" -l \
    -f "$bench_data/ping.sql" "$BENCH_PG_URL" >"$bench_data/pgbench_pings.out" 2>&1) ||
    { tail -n 5 "$bench_data/pgbench_pings.out" >&2; gm_die "pgbench (pings) failed"; }
  pgp_cpu=$(($(bench_pg_ticks) - p0))
  pgp_tps=$(awk '/^tps/ {printf "%d", $3}' "$bench_data/pgbench_pings.out")
  pgp_n=$(awk '/number of transactions actually processed/ {split($NF, a, "/"); print a[1]}' "$bench_data/pgbench_pings.out")
  read -r pgp_p50 pgp_p99 <<<"$(pglog_pcts "$bench_data/pglog_pings")"
fi

# --- report ------------------------------------------------------------------
echo
echo "Dispatch bench: $riders available riders around Nairobi (~22 km square); parts:$parts"
echo "$conns connections, ${secs}s per run"
bench_header
if has_part nearest; then
  echo
  echo "Nearest riders: 10 nearest within 3 km of random points"
  echo "sample answer: ${sample:0:200}..."
  printf '%-52s %10s %10s %10s\n' "" "queries/s" "p50 ms" "p99 ms"
  printf '%-52s %10s %10s %10s\n' "gigmesh node: GET /riders/nearby (HTTP, S2 index)" "$node_rps" "$node_p50" "$node_p99"
  printf '%-52s %10s %10s %10s\n' "PostgreSQL: KNN on a GiST index (pgbench, no HTTP)" "$pg_tps" "$pg_p50" "$pg_p99"
  echo "node: $node_n answers, $node_bad not 2xx; CPU $(bench_us_per "$node_cpu" "$node_n") us per query"
fi
if has_part tasks; then
  echo
  echo "Dispatch decision: task created → offer sent, $task_clients clients, fee $fee, pickups uniform"
  echo "in the middle ${box}° of the city. sent: the command arrived → task.offered published (node:"
  echo "fee locked, offer durable and held by the rider; histogram gigmesh_task_first_offer_seconds) or"
  echo "the task inserted → offer committed (pgbench: its transaction, from its log); disp: dispatch"
  echo "start → offer sent (node: gigmesh_task_dispatch_seconds; PostgreSQL: the KNN pick and offer"
  echo "inside that transaction have no separate clock); request: POST /tasks answered (HTTP, after"
  echo "the fee lock; dispatch follows) or the whole transaction"
  echo "sample answer: ${sample_task:0:200}..."
  printf '%-48s %8s %9s %9s %9s %9s %9s %9s\n' "" "tasks/s" "sent p50" "sent p99" "disp p50" "disp p99" "req p50" "req p99"
  printf '%-48s %8s %9s %9s %9s %9s %9s %9s\n' "gigmesh node: POST /tasks, offer by the S2 index" \
    "$task_rate" "$task_s50" "$task_s99" "$task_h50" "$task_h99" "$task_http50" "$task_http99"
  printf '%-48s %8s %9s %9s %9s %9s %9s %9s\n' "PostgreSQL: one transaction per task (pgbench)" \
    "$pgt_tps" "$pgt_p50" "$pgt_p99" "-" "-" "$pgt_p50" "$pgt_p99"
  if [ "$warm_riders" = 1 ]; then
    echo "riders active before the run: $(awk '/ requests in / {print $1}' "$bench_data/warm.out") GET /riders/{id}" \
      "in ${warm_secs}s ($(awk '/Non-2xx/ {print $5}' "$bench_data/warm.out") not 2xx), as their pings would"
  else
    echo "riders cold (WARM_RIDERS=0): each offer activates its rider first"
  fi
  echo "node, from PostgreSQL: created_at → offered_at (the offer decided) p50 $task_o50 p99 $task_o99 ms;"
  echo "  $task_sn first offers and $task_hn offers in the histograms"
  echo "node: $task_n tasks in the run ($task_sent requests, $task_bad not 2xx; statuses: $task_statuses);"
  echo "  $task_offered offered, to $task_distinct distinct riders; riders holding two offers (whole run): $task_double"
  echo "  CPU per task: node $(bench_us_per "$task_cpu" "$task_n") us, PostgreSQL $(bench_us_per "$task_pg_cpu" "$task_n") us"
  echo "PostgreSQL: $pgt_n tasks, $pgt_offered offered to $pgt_distinct distinct riders;" \
    "CPU $(bench_us_per "$pgt_cpu" "$pgt_n") us per task"
  echo "goal: dispatch p99 under 5 ms"
fi
if has_part pings; then
  echo
  echo "Location pings: $ping_sessions riders ($online online), $ping_inflight pings in flight each on the"
  echo "node (WebSocket location op, acked); baseline one UPDATE per ping over $pg_clients connections"
  printf '%-52s %10s %10s %10s\n' "" "pings/s" "p50 ms" "p99 ms"
  printf '%-52s %10s %10s %10s\n' "gigmesh node: WS location op with id, ack" "$ping_rate" "$ping_p50" "$ping_p99"
  printf '%-52s %10s %10s %10s\n' "PostgreSQL: one UPDATE per ping (pgbench)" "$pgp_tps" "$pgp_p50" "$pgp_p99"
  echo "node: $ping_acked acked, $ping_errors refused, $ping_closed sessions closed by the server;"
  echo "  CPU per ping: node $(bench_us_per "$ping_cpu" "$ping_acked") us, PostgreSQL" \
    "$(bench_us_per "$ping_pg_cpu" "$ping_acked") us, load client ${ping_client_us} us"
  echo "PostgreSQL: ${pgp_n:-?} updates, CPU $(bench_us_per "$pgp_cpu" "${pgp_n:-0}") us per update"
  echo "goal: at least 50,000 pings/s on the node"
fi
echo
has_part nearest && echo "RESULT dispatch.nearest.node queries_per_s=$node_rps p50_ms=$node_p50 p99_ms=$node_p99"
has_part nearest && echo "RESULT dispatch.nearest.pg queries_per_s=$pg_tps p50_ms=$pg_p50 p99_ms=$pg_p99"
has_part tasks && echo "RESULT dispatch.tasks.node tasks_per_s=$task_rate sent_p50_ms=$task_s50 sent_p99_ms=$task_s99 dispatch_p50_ms=$task_h50 dispatch_p99_ms=$task_h99 http_p50_ms=$task_http50 http_p99_ms=$task_http99 tasks=$task_n offered=$task_offered"
has_part tasks && echo "RESULT dispatch.tasks.pg tasks_per_s=$pgt_tps offer_p50_ms=$pgt_o50 offer_p99_ms=$pgt_o99 tx_p50_ms=$pgt_p50 tx_p99_ms=$pgt_p99 tasks=$pgt_n offered=$pgt_offered"
has_part pings && echo "RESULT dispatch.pings.node pings_per_s=$ping_rate ack_p50_ms=$ping_p50 ack_p99_ms=$ping_p99 acked=$ping_acked errors=$ping_errors closed=$ping_closed"
has_part pings && echo "RESULT dispatch.pings.pg pings_per_s=$pgp_tps p50_ms=$pgp_p50 p99_ms=$pgp_p99"
exit 0
