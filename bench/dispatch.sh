#!/usr/bin/env bash
# Dispatch: how long the node takes to find the best available riders for
# a point with RIDERS available riders in one city, beside PostgreSQL
# answering the same question with an index, in the same run.
#
# The riders (uniform in a square of about 22 km around Nairobi) are loaded
# with COPY into `riders`, each with the dispatch region the node computes
# (bench/riders_csv.cpp); a dispatcher reads its region's riders when it
# activates. Node: `GET /api/v1/riders/nearby` at random points of the city
# (10 nearest within 3 km, ranked by distance, rating, level), through
# HTTP, measured by wrk over CONNS connections. Baseline: the same
# question as one SQL query (a KNN search on a GiST index of the riders'
# positions with the `cube` and `earthdistance` extensions, no PostGIS),
# driven by pgbench over CONNS connections with the same random points.
# Until delivery tasks exist, this measures the decision (which riders, in
# which order), not "task created → offer sent".
#
#   bench/dispatch.sh [riders (100000)] [seconds (10)] [connections (2)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

riders=${1:-100000}
secs=${2:-10}
conns=${3:-2}
lat=-1.2921
lng=36.8219
spread=0.2

bench_setup
bin=$GM_ROOT/build/release/bench
bench_start_node GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
  GIGMESH_JWT_SECRET=$bench_secret GIGMESH_ENTITY_IDLE_TIMEOUT_MS=3600000 ${BENCH_NODE_ENV:-}
node_pid=${bench_pids[0]}

"$bin/riders_csv" "$riders" "$lat" "$lng" "$spread" 7 >"$bench_data/riders.csv"
psql "$BENCH_PG_URL" -Atqc "\copy riders (user_id, status, lat, lng, region, rating, level, version) FROM '$bench_data/riders.csv' WITH (FORMAT csv)"
psql "$BENCH_PG_URL" -Atqc "ANALYZE riders" >/dev/null
# A dispatcher's token: the bench's own, with the dispatcher role.
token=$(python3 - "$bench_secret" <<'PY'
import base64, hashlib, hmac, json, sys, time, uuid
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
now = int(time.time())
body = b64(json.dumps({"sub": str(uuid.uuid4()), "role": "dispatcher", "iat": now,
                       "exp": now + 3600, "jti": "bench"}).encode())
sig = hmac.new(sys.argv[1].encode(), (head + "." + body).encode(), hashlib.sha256).digest()
print(head + "." + body + "." + b64(sig))
PY
)
cat >"$bench_data/nearby.lua" <<LUA
math.randomseed(11)
request = function()
  local y = $lat + (math.random() - 0.5) * $spread * 0.8
  local x = $lng + (math.random() - 0.5) * $spread * 0.8
  return wrk.format("GET", string.format("/api/v1/riders/nearby?lat=%.6f&lng=%.6f&radius_m=3000&limit=10", y, x),
                    {["Authorization"] = "Bearer $token"})
end
LUA
url="http://127.0.0.1:$BENCH_NODE_PORT"
# Warm-up: every region's dispatcher reads its riders once.
wrk -t1 -c"$conns" -d3s -s "$bench_data/nearby.lua" "$url" >/dev/null
sample=$(curl -s -H "Authorization: Bearer $token" "$url/api/v1/riders/nearby?lat=$lat&lng=$lng&radius_m=3000&limit=10")
t0=$(bench_cpu_ticks "$node_pid")
node_out=$(wrk --latency -t1 -c"$conns" -d"${secs}s" -s "$bench_data/nearby.lua" "$url")
node_cpu=$(($(bench_cpu_ticks "$node_pid") - t0))

ms() { awk -v v="$1" 'BEGIN {if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; printf "%.3f", v}'; }
node_rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$node_out")
node_n=$(awk '/ requests in / {print $1}' <<<"$node_out")
node_p50=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$node_out")")
node_p99=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$node_out")")
node_bad=$(awk '/Non-2xx/ {print $5}' <<<"$node_out")

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
pgbench_bin=${GIGMESH_PGBIN:-$GM_PGBIN}/pgbench
rm -rf "$bench_data/pglog" && mkdir -p "$bench_data/pglog"
(cd "$bench_data/pglog" && "$pgbench_bin" -n -M prepared -c "$conns" -j "$conns" -T "$secs" -l \
  -f "$bench_data/nearest.sql" "$BENCH_PG_URL" >"$bench_data/pgbench.out" 2>&1)
pg_tps=$(awk '/^tps/ {printf "%d", $3}' "$bench_data/pgbench.out")
read -r pg_p50 pg_p99 < <(cat "$bench_data"/pglog/pgbench_log.* | awk '{print $3 / 1000}' | sort -g |
  awk '{v[NR] = $1} END {printf "%.3f %.3f\n", v[int(NR * 0.5)], v[int(NR * 0.99)]}')

echo
echo "Dispatch bench: $riders available riders around Nairobi (~22 km square), 10 nearest within"
echo "3 km of random points, $conns connections, ${secs}s each"
bench_header
echo "sample answer: ${sample:0:200}..."
printf '%-52s %10s %10s %10s\n' "" "queries/s" "p50 ms" "p99 ms"
printf '%-52s %10s %10s %10s\n' "gigmesh node: GET /riders/nearby (HTTP, S2 index)" "$node_rps" "$node_p50" "$node_p99"
printf '%-52s %10s %10s %10s\n' "PostgreSQL: KNN on a GiST index (pgbench, no HTTP)" "$pg_tps" "$pg_p50" "$pg_p99"
echo "node: $node_n answers, ${node_bad:-0} not 2xx; CPU $(bench_us_per "$node_cpu" "$node_n") us per query"
