#!/usr/bin/env bash
# The cluster's cost and failover, in the same run (docs/bench.md, Cluster):
# 1. Transfers per second (POST /api/v1/wallet/transfer between random pairs
#    of USERS users, wrk) with 1, 2 and 3 nodes on this machine, the CONNS
#    connections spread over the nodes (one wrk per node). Every node, wrk
#    and PostgreSQL share the machine's cores.
# 2. Same-node against cross-node transfers, on 2 nodes: every request goes
#    to node 1 and its source wallet is node 1's; the receiver's wallet is
#    node 1's too (same) or node 2's (cross); senders and receivers are
#    disjoint sets of equal size either way. Latency with one connection
#    (first), then throughput.
# 3. Failover: 3 nodes; kill -9 of node 3, then node 1 is asked for every
#    wallet node 3 held until each answers: seconds from the kill to the
#    first and to the last answer.
#
#   bench/cluster.sh [seconds per run (10)] [connections (64)] [users (1000)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
conns=${2:-64}
users=${3:-1000}
tool=$GM_ROOT/bench/cluster_tool.py

bench_setup

declare -A http_port cluster_port node_pid
for i in 1 2 3; do
  http_port[$i]=$(gm_free_port "bench-cluster-http-$i")
  cluster_port[$i]=$(gm_free_port "bench-cluster-$i")
done
# gm_free_port may hand two names the same free port: make them distinct.
if [ "$(printf '%s\n' "${http_port[@]}" "${cluster_port[@]}" | sort -u | wc -l)" != 6 ]; then
  gm_die "port clash: run again"
fi

start_node() {  # i: starts node i with every other node as a seed
  local i=$1 seeds="" j
  for j in 1 2 3; do [ "$j" = "$i" ] || seeds+="${seeds:+,}127.0.0.1:${cluster_port[$j]}"; done
  env GIGMESH_PG_URL="$BENCH_PG_URL" GIGMESH_REDIS_URL="$BENCH_REDIS_URL" \
    GIGMESH_HTTP_HOST=127.0.0.1 GIGMESH_HTTP_PORT="${http_port[$i]}" GIGMESH_HTTP_THREADS=2 \
    GIGMESH_LOG_LEVEL=warn GIGMESH_JWT_SECRET=$bench_secret GIGMESH_NODE_ID="node$i" \
    GIGMESH_CLUSTER_PORT="${cluster_port[$i]}" GIGMESH_SEEDS="$seeds" \
    GIGMESH_ENTITY_IDLE_TIMEOUT_MS=3600000 \
    GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
    "$GM_ROOT/build/release/gigmesh" >>"$bench_data/node$i.log" 2>&1 &
  node_pid[$i]=$!
  bench_pids+=($!)
  bench_wait_ok "http://127.0.0.1:${http_port[$i]}/readyz" ||
    gm_die "node $i did not become ready: see $bench_data/node$i.log"
}

wait_members() {  # n: until every running node sees n members
  local i m
  for _ in $(seq 1 100); do
    local all=1
    for ((i = 1; i <= $1; i++)); do
      m=$(curl -s "http://127.0.0.1:${http_port[$i]}/readyz" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["checks"]["cluster"]["members"])' 2>/dev/null || echo 0)
      [ "$m" = "$1" ] || all=""
    done
    [ -n "$all" ] && { sleep 2; return 0; }  # and the handoff wait
    sleep 0.1
  done
  gm_die "the nodes did not all see $1 members"
}

# Transfers/s with the first N nodes: one wrk per node, conns/N each.
run_spread() {
  local n=$1 i total=0 outs=()
  for ((i = 1; i <= n; i++)); do
    wrk -t1 -c"$((conns / n))" -d2s -s "$lua" "http://127.0.0.1:${http_port[$i]}/" >/dev/null &
  done
  wait  # warm-up: activates the wallets where they live now
  for ((i = 1; i <= n; i++)); do
    bench_wrk_ok -t1 -c"$((conns / n))" -d"${secs}s" -s "$lua" "http://127.0.0.1:${http_port[$i]}/" \
      >"$bench_data/spread$i.out" &
  done
  wait
  for ((i = 1; i <= n; i++)); do
    read -r rps _ _ <"$bench_data/spread$i.out"
    total=$(awk -v a="$total" -v b="$rps" 'BEGIN {printf "%.0f", a + b}')
  done
  echo "$total"
}

start_node 1
wait_members 1
bench_make_users "$users" 100000000  # after node 1 applied the migrations
lua=$bench_data/transfer.lua
bench_transfer_lua "$lua"
one=$(run_spread 1)
start_node 2
wait_members 2
two=$(run_spread 2)

# Same-node against cross-node, on 2 nodes, both sent to node 1.
read -r src dst < <(python3 "$tool" lua same node1,node2 "$bench_data/user_ids" "$bench_data/tokens" "$bench_data/same.lua")
python3 "$tool" lua cross node1,node2 "$bench_data/user_ids" "$bench_data/tokens" "$bench_data/cross.lua" >/dev/null
for kind in same cross; do
  wrk -t1 -c"$conns" -d2s -s "$bench_data/$kind.lua" "http://127.0.0.1:${http_port[1]}/" >/dev/null
  sleep 1
  lat1=$(wrk --latency -t1 -c1 -d"$((secs / 2 + 1))s" -s "$bench_data/$kind.lua" "http://127.0.0.1:${http_port[1]}/" |
    awk '$1 == "50%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)}; print v}')
  read -r rps p99 bad < <(bench_wrk_ok -t2 -c"$conns" -d"${secs}s" -s "$bench_data/$kind.lua" "http://127.0.0.1:${http_port[1]}/")
  sleep 1
  printf -v "${kind}_rps" '%s' "$rps"
  printf -v "${kind}_p99" '%s' "$p99"
  printf -v "${kind}_p50_1" '%s' "$lat1"
  printf -v "${kind}_bad" '%s' "$bad"
done

start_node 3
wait_members 3
three=$(run_spread 3)

# Failover: kill -9 node 3, ask node 1 for node 3's wallets.
python3 "$tool" owned node3 node1,node2,node3 "$bench_data/user_ids" "$bench_data/tokens" >"$bench_data/node3_tokens"
head -n 200 "$bench_data/node3_tokens" >"$bench_data/probe_tokens"
# Activate them on node 3 first (as live entities are what fails over).
while read -r t; do curl -s -o /dev/null -H "Authorization: Bearer $t" "http://127.0.0.1:${http_port[1]}/api/v1/wallet"; done <"$bench_data/probe_tokens"
read -r f_all f_first f_ok f_n < <(python3 "$tool" failover "${http_port[1]}" "$bench_data/probe_tokens" "${node_pid[3]}")

echo
echo "Cluster bench: $users users, $conns connections, ${secs}s runs, nodes on one machine"
bench_header
printf '%-60s %12s\n' "transfers/s, 1 node" "$one"
printf '%-60s %12s\n' "transfers/s, 2 nodes" "$two"
printf '%-60s %12s\n' "transfers/s, 3 nodes" "$three"
awk -v a="$one" -v b="$two" -v c="$three" 'BEGIN {printf "%-60s %12.2f %.2f\n", "2 and 3 nodes against 1", b / a, c / a}'
printf '%-60s %12s\n' "same-node transfers/s on 2 nodes (p99 ms $same_p99)" "$same_rps"
printf '%-60s %12s\n' "cross-node transfers/s on 2 nodes (p99 ms $cross_p99)" "$cross_rps"
printf '%-60s %12s\n' "one connection, p50 ms: same-node / cross-node" "$same_p50_1 / $cross_p50_1"
awk -v a="$cross_rps" -v b="$same_rps" 'BEGIN {printf "%-60s %12.2f\n", "cross / same (throughput)", a / b}'
echo "  ($src source wallets on node 1, $dst receivers; non-2xx: same $same_bad, cross $cross_bad)"
printf '%-60s %12s\n' "failover: kill -9 to every moved wallet answering, s" "$f_all"
printf '%-60s %12s\n' "failover: kill -9 to the first answer, s" "$f_first"
echo "  ($f_ok of $f_n of node 3's wallets answered on node 1)"
echo "RESULT cluster one=$one two=$two three=$three same=$same_rps cross=$cross_rps same_p50_1=$same_p50_1 cross_p50_1=$cross_p50_1 failover_s=$f_all"
