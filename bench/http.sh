#!/usr/bin/env bash
# Measures GET /healthz on a gigmesh node against a minimal Beast server
# (bench/beast_hello.cpp) in the same run, with wrk on 127.0.0.1, and prints
# one table with the ratio. Both servers get the same number of io threads.
# Rounds alternate between the two to spread the machine's noise.
#
#   bench/http.sh [seconds per round (10)] [rounds (3)] [connections (64)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
rounds=${2:-3}
conns=${3:-64}

bench_setup
bench_start_node
beast_port=$(gm_free_port bench-beast)
"$GM_ROOT/build/release/bench/beast_hello" "$beast_port" 2 &
bench_pids+=($!)
for ((i = 0; i < 100; i++)); do gm_port_busy "$beast_port" && break; sleep 0.1; done

node=http://127.0.0.1:$BENCH_NODE_PORT/healthz
beast=http://127.0.0.1:$beast_port/healthz
wrk -t2 -c"$conns" -d2s "$node" >/dev/null  # warm-up, not counted
wrk -t2 -c"$conns" -d2s "$beast" >/dev/null

node_rps=(); node_p99=(); beast_rps=(); beast_p99=()
for ((r = 0; r < rounds; r++)); do
  read -r a b < <(bench_wrk -t2 -c"$conns" -d"${secs}s" "$node"); node_rps+=("$a"); node_p99+=("$b")
  read -r a b < <(bench_wrk -t2 -c"$conns" -d"${secs}s" "$beast"); beast_rps+=("$a"); beast_p99+=("$b")
done
nr=$(bench_median "${node_rps[@]}"); np=$(bench_median "${node_p99[@]}")
br=$(bench_median "${beast_rps[@]}"); bp=$(bench_median "${beast_p99[@]}")

echo
echo "GET /healthz, wrk -t2 -c$conns, $rounds x ${secs}s rounds (median), 2 io threads each"
bench_header
printf '%-22s %14s %10s\n' "server" "requests/s" "p99 ms"
printf '%-22s %14.0f %10.2f\n' "gigmesh node" "$nr" "$np"
printf '%-22s %14.0f %10.2f\n' "raw Beast (baseline)" "$br" "$bp"
awk -v n="$nr" -v b="$br" 'BEGIN {printf "ratio node/raw Beast: %.2f (target >= 0.80)\n", n / b}'
echo "per round node: ${node_rps[*]}; raw Beast: ${beast_rps[*]}"
