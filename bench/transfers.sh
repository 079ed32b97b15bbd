#!/usr/bin/env bash
# Durable transfers per second: POST /api/v1/wallet/transfer through REST
# (JWT, rate limit, wallet entities, the saga, group commit: answered after
# both legs committed) versus what a service-per-request stack does, one
# PostgreSQL transaction per transfer, against the same PostgreSQL in the
# same run. Two baselines, each at the pool size where it is fastest:
# - "PL/pgSQL": the transaction alone, a PL/pgSQL function called over
#   libpq by a client program, no HTTP at all (the strictest comparison:
#   no stack that serves phones can be faster than its database alone);
# - "service": the whole stack, bench/pg_transfer_service.cpp, answering
#   the same HTTP requests from the same wrk script as the node: Beast on
#   as many io threads, the node's JWT check, the JSON body read, then the
#   same PL/pgSQL function on a pool of blocking libpq connections.
#
# First a sweep: REST with <connections> clients and with the counts in
# BENCH_REST_CONNS (default "256 512 1024": phones are many, and group
# commit needs requests in flight), the baseline with the pool sizes in
# BENCH_BASELINE_POOLS (a service-per-request stack gives PostgreSQL as many
# connections as make it fastest, whatever its client count), the service
# with those pool sizes at REST's best client count and then, at its best
# pool, with the other counts of BENCH_REST_CONNS (so that each HTTP side
# runs at its own best client count). Every size's figures and p99 are
# printed. Then BENCH_ROUNDS (default 3) alternating
# rounds, each side at the size that was fastest in the sweep (the node
# restarted for each REST round and stopped during the baseline's), and the
# ratio of the two medians: the machine drifts by tens of percent within
# minutes, and the best of four baseline runs against the best of two REST
# runs, one after the other, measured that drift as much as the servers.
# Last, the node's CPU per request for a read through the same path and for
# a deposit (one entity, one durable write), so a transfer's cost can be
# taken apart (BENCH_LAYERS=0 skips it).
#
#   bench/transfers.sh [seconds per run (10)] [connections (64)] [users (1000)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
conns=${2:-64}
users=${3:-1000}

start_node() {
  bench_start_node GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
    GIGMESH_JWT_SECRET=$bench_secret GIGMESH_KDF_THREADS=2 GIGMESH_ENTITY_IDLE_TIMEOUT_MS=600000 \
    ${BENCH_NODE_ENV:-}
  base=http://127.0.0.1:$BENCH_NODE_PORT
}

stop_node() {
  kill "${bench_pids[0]}" && wait "${bench_pids[0]}" 2>/dev/null || true
  bench_pids=()
}

bench_setup
start_node

# Users and funded wallets straight in SQL, tokens minted with the node's secret.
bench_make_users "$users" 1000000000000
ids=$bench_data/user_ids
mapfile -t tokens <"$bench_data/tokens"

lua=$bench_data/transfer.lua
bench_transfer_lua "$lua"

# Rows per batch so far, from the node's metrics: "<sum> <count>".
journal_rows() {
  curl -s "$base/metrics" | awk '/^gigmesh_journal_batch_rows_sum/ {s=$2}
    /^gigmesh_journal_batch_rows_count/ {c=$2} END {print s + 0, c + 0}'
}


# One REST run of $2 seconds with $1 clients on the running node; sets
# rps, p99, cpu (node + PostgreSQL per transfer) and rows (per batch).
rest_run() {
  local js0 jc0 js1 jc1 n0 n1 p0 p1 n
  bench_settle_db
  read -r js0 jc0 < <(journal_rows)
  n0=$(bench_cpu_ticks "${bench_pids[0]}"); p0=$(bench_pg_ticks)
  read -r rps p99 _ < <(bench_wrk_ok -t2 -c"$1" -d"$2s" -s "$lua" "$base/")
  n1=$(bench_cpu_ticks "${bench_pids[0]}"); p1=$(bench_pg_ticks)
  read -r js1 jc1 < <(journal_rows)
  n=$(awk -v r="$rps" -v s="$2" 'BEGIN {printf "%.0f", r * s}')
  rows=$(awk -v s=$((js1 - js0)) -v c=$((jc1 - jc0)) 'BEGIN {printf "%.0f", (c > 0 ? s / c : 0)}')
  cpu="node $(bench_us_per $((n1 - n0)) "$n") us + PostgreSQL $(bench_us_per $((p1 - p0)) "$n") us"
}

# One baseline run with a pool of $1; sets rps, p50, p99, failed, cpu.
base_run() {
  local p2 p3 n
  bench_settle_db
  p2=$(bench_pg_ticks)
  read -r rps p50 p99 failed < <("$GM_ROOT/build/release/bench/pg_transfer_baseline" \
    "$BENCH_PG_URL" "$secs" "$1" "$ids")
  sleep 1  # the baseline's backends exit and are reaped
  p3=$(bench_pg_ticks)
  n=$(awk -v r="$rps" -v s="$secs" 'BEGIN {printf "%.0f", r * s}')
  cpu="PostgreSQL $(bench_us_per $((p3 - p2)) "$n") us"
}

# One run of the whole service-per-request stack with a pool of $1 and $2
# clients (the same wrk script as REST); sets rps (2xx answers only), p99,
# bad (other answers), cpu (service + PostgreSQL per transfer).
svc_run() {
  local port pid s0 s1 p0 p1 n
  port=$(gm_free_port bench-service)
  "$GM_ROOT/build/release/bench/pg_transfer_service" "$BENCH_PG_URL" "$port" 2 "$1" \
    "$bench_secret" >"$bench_data/service.log" 2>&1 &
  pid=$!
  bench_pids+=("$pid")
  bench_wait_ok "http://127.0.0.1:$port/healthz" ||
    gm_die "the service baseline did not start: see $bench_data/service.log"
  bench_settle_db
  s0=$(bench_cpu_ticks "$pid"); p0=$(bench_pg_ticks)
  read -r rps p99 bad < <(bench_wrk_ok -t2 -c"$2" -d"${secs}s" -s "$lua" "http://127.0.0.1:$port/")
  s1=$(bench_cpu_ticks "$pid"); p1=$(bench_pg_ticks)
  kill "$pid" && wait "$pid" 2>/dev/null || true
  bench_pids=()  # the node is stopped while the service runs
  n=$(awk -v r="$rps" -v s="$secs" 'BEGIN {printf "%.0f", r * s}')
  cpu="service $(bench_us_per $((s1 - s0)) "$n") us + PostgreSQL $(bench_us_per $((p1 - p0)) "$n") us"
}

# The node's CPU per request for one route ($1 label, $2 method, $3 path,
# $4 body-kind: none or deposit) with $5 clients, 5 s, on the running node.
layer_run() {
  local l=$bench_data/layer.lua n0 n1 n
  { echo "local tokens = {"; printf '"%s",\n' "${tokens[@]}"; echo "}"
    cat <<LUA
local threads = 0
setup = function(thread) threads = threads + 1; thread:set("thread_no", threads) end
local reqs = {}
init = function(args)
  math.randomseed(7919 * (thread_no or 1))
  for k = 1, 20000 do
    local h = {["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]}
    local body = nil
    if "$4" == "deposit" then
      body = '{"amount":' .. math.random(100) .. '}'
      h["Content-Type"] = "application/json"
    end
    reqs[k] = wrk.format("$2", "$3", h, body)
  end
end
local next_req = 0
request = function() next_req = next_req % #reqs + 1; return reqs[next_req] end
LUA
  } >"$l"
  n0=$(bench_cpu_ticks "${bench_pids[0]}")
  read -r rps p99 < <(bench_wrk -t2 -c"$5" -d5s -s "$l" "$base/")
  n1=$(bench_cpu_ticks "${bench_pids[0]}")
  n=$(awk -v r="$rps" 'BEGIN {printf "%.0f", r * 5}')
  layers+="$1: $rps/s, node $(bench_us_per $((n1 - n0)) "$n") us per request; "
}

# Succeeds if rate $1 beats rate $2.
faster() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a > b)}'; }
# Prints $1 / $2 to two places.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

wrk -t2 -c"$conns" -d2s -s "$lua" "$base/" >/dev/null  # warm-up: activates the wallets
r_rps=0
r_all=""
rest_conns=${BENCH_REST_CONNS:-"256 512 1024"}
for c in $conns $rest_conns; do
  rest_run "$c" "$secs"
  r_all+="$c: $rps/s (p99 $p99 ms; $cpu; $rows rows/batch); "
  [ "$c" = "$conns" ] && rc_rps=$rps rc_p99=$p99
  if faster "$rps" "$r_rps"; then
    r_rps=$rps r_p99=$p99 r_conns=$c r_cpu=$cpu
  fi
done
statuses=$(grep -o 'gigmesh_http_requests_total{route="/api/v1/wallet/transfer",status="[0-9]*"} [0-9]*' \
  <(curl -s "$base/metrics") | sed 's/.*status="\([0-9]*\)"} /\1:/' | tr '\n' ' ')
layers=""
if [ "${BENCH_LAYERS:-1}" != 0 ]; then
  layer_run "GET /api/v1/wallet (read through the gateway actor, router, shard, entity)" \
    GET /api/v1/wallet none "$r_conns"
  layer_run "POST /api/v1/wallet/deposit (one entity, one durable write)" \
    POST /api/v1/wallet/deposit deposit "$r_conns"
fi
stop_node

# The baseline at the pool size that suits it best: a service-per-request
# stack gives PostgreSQL only as many connections as make it fastest (on 2
# cores, far fewer than 64), however many clients it has. Each size is
# run; the fastest is the baseline.
sleep 1
pools=${BENCH_BASELINE_POOLS:-"4 8 16 $conns"}
b_rps=0
b_all=""
for pool in $pools; do
  base_run "$pool"
  b_all+="$pool: $rps/s (p99 $p99 ms); "
  if faster "$rps" "$b_rps"; then
    b_rps=$rps b_p50=$p50 b_p99=$p99 b_failed=$failed b_pool=$pool b_cpu=$cpu
  fi
done

# The whole stack at each pool size, with REST's best client count.
s_rps=0
s_all=""
for pool in ${BENCH_SERVICE_POOLS:-$pools}; do
  svc_run "$pool" "$r_conns"
  s_all+="$pool: $rps/s (p99 $p99 ms; $cpu; $bad other answers); "
  if faster "$rps" "$s_rps"; then
    s_rps=$rps s_p99=$p99 s_pool=$pool s_cpu=$cpu s_bad=$bad s_conns=$r_conns
  fi
done
# The service at its best pool with the other client counts REST was
# swept with, so that each side runs the rounds at its own best.
sc_all=""
for c in $rest_conns; do
  [ "$c" = "$r_conns" ] && continue
  svc_run "$s_pool" "$c"
  sc_all+="$c: $rps/s (p99 $p99 ms; $cpu; $bad other answers); "
  if faster "$rps" "$s_rps"; then
    s_rps=$rps s_p99=$p99 s_cpu=$cpu s_bad=$bad s_conns=$c
  fi
done

# Alternating rounds at each side's best size.
rounds=${BENCH_ROUNDS:-3}
rr=() br=() sr=() rounds_all=""
for ((k = 1; k <= rounds; k++)); do
  start_node
  wrk -t2 -c"$r_conns" -d2s -s "$lua" "$base/" >/dev/null  # activates the wallets again
  rest_run "$r_conns" "$secs"
  stop_node
  rr+=("$rps")
  rounds_all+="round $k: REST $rps/s (p99 $p99 ms; $cpu), "
  sleep 1
  base_run "$b_pool"
  br+=("$rps")
  rounds_all+="PL/pgSQL $rps/s (p99 $p99 ms; $cpu), ratio $(ratio "${rr[-1]}" "$rps"), "
  sleep 1
  svc_run "$s_pool" "$s_conns"
  sr+=("$rps")
  rounds_all+="service $rps/s (p99 $p99 ms; $cpu), ratio $(ratio "${rr[-1]}" "$rps"); "
done

echo
echo "transfers bench: ${secs}s per line, $users wallets, one node"
bench_header
printf '%-58s %12s %10s\n' "writer" "transfers/s" "p99 ms"
printf '%-58s %12.0f %10.2f\n' "REST POST /wallet/transfer (durable, saga), $conns clients" \
  "$rc_rps" "$rc_p99"
printf '%-58s %12.0f %10.2f\n' "REST, best client count ($r_conns)" "$r_rps" "$r_p99"
printf '%-58s %12.0f %10.2f\n' "PL/pgSQL transfer per transaction, best pool ($b_pool)" \
  "$b_rps" "$b_p99"
printf '%-58s %12.0f %10.2f\n' "service: HTTP + JWT + PL/pgSQL, best pool ($s_pool), $s_conns clients" \
  "$s_rps" "$s_p99"
awk -v r="$r_rps" -v b="$b_rps" -v s="$s_rps" -v rc="$rc_rps" -v c="$conns" 'BEGIN {
  printf "ratio REST / PL/pgSQL alone, each at its best: %.2f (REST with %s clients: %.2f)\n",
         r / b, c, rc / b
  printf "ratio REST / service, each at its best: %.2f\n", r / s}'
echo "REST answers by status: $statuses; PL/pgSQL p50 $b_p50 ms, failures $b_failed; service other answers $s_bad"
echo "REST by client count: $r_all"
echo "PL/pgSQL by pool size: $b_all"
echo "service by pool size ($r_conns clients): $s_all"
[ -n "$sc_all" ] && echo "service at a pool of $s_pool by client count: $sc_all"
echo "CPU per transfer: REST at its best: $r_cpu; PL/pgSQL: $b_cpu; service: $s_cpu"
if ((rounds > 0)); then
  rm_=$(bench_median "${rr[@]}") bm_=$(bench_median "${br[@]}") sm_=$(bench_median "${sr[@]}")
  echo "alternating rounds ($rounds; REST at $r_conns clients, PL/pgSQL at a pool of $b_pool, service at a pool of $s_pool and $s_conns clients): $rounds_all"
  awk -v r="$rm_" -v b="$bm_" -v s="$sm_" 'BEGIN {
    printf "medians: REST %.0f, PL/pgSQL %.0f, service %.0f transfers/s: ratio %.2f to PL/pgSQL alone, %.2f to the service\n",
           r, b, s, r / b, r / s}'
fi
if [ -n "$layers" ]; then echo "node CPU by route (at $r_conns clients): $layers"; fi
