#!/usr/bin/env bash
# Measures GET /healthz on a gigmesh node against a minimal Beast server
# (bench/beast_hello.cpp) in the same run, with wrk on 127.0.0.1, and prints
# one table with the ratio. Both servers get the same number of io threads.
# Rounds alternate between the two to spread the machine's noise.
#
#   bench/http.sh [seconds per round (10)] [rounds (3)] [connections (64)]
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

secs=${1:-10}
rounds=${2:-3}
conns=${3:-64}
threads=2

gm_install_deps
gm_build "$GM_ROOT/build/release" Release

data=$GM_ROOT/build/bench-data
rm -rf "$data"
mkdir -p "$data"
pgdir=$(gm_pg_dir "$data/pg")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  gm_pg_stop "$pgdir"
  gm_redis_stop "$data/redis"
}
trap cleanup EXIT

pg_port=$(gm_free_port bench-pg)
gm_pg_start "$pgdir" "$pg_port"
redis_port=$(gm_free_port bench-redis)
gm_redis_start "$redis_port" "$data/redis"

node_port=$(gm_free_port bench-node)
GIGMESH_PG_URL=postgresql://postgres@127.0.0.1:$pg_port/gigmesh \
GIGMESH_REDIS_URL=redis://127.0.0.1:$redis_port/0 \
GIGMESH_HTTP_HOST=127.0.0.1 GIGMESH_HTTP_PORT=$node_port GIGMESH_HTTP_THREADS=$threads \
GIGMESH_LOG_LEVEL=warn \
  "$GM_ROOT/build/release/gigmesh" >"$data/node.log" 2>&1 &
pids+=($!)
beast_port=$(gm_free_port bench-beast)
"$GM_ROOT/build/release/bench/beast_hello" "$beast_port" "$threads" &
pids+=($!)
for port in "$node_port" "$beast_port"; do
  for ((i = 0; i < 100; i++)); do gm_port_busy "$port" && break; sleep 0.1; done
done

# Prints "requests_per_second p99_ms" for one wrk round against port $1.
measure() {
  local out rps p99
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$1/healthz")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
  echo "$rps $p99"
}

# Warm-up, not counted.
wrk -t2 -c"$conns" -d2s "http://127.0.0.1:$node_port/healthz" >/dev/null
wrk -t2 -c"$conns" -d2s "http://127.0.0.1:$beast_port/healthz" >/dev/null

node_rps=(); node_p99=(); beast_rps=(); beast_p99=()
for ((r = 0; r < rounds; r++)); do
  read -r a b < <(measure "$node_port"); node_rps+=("$a"); node_p99+=("$b")
  read -r a b < <(measure "$beast_port"); beast_rps+=("$a"); beast_p99+=("$b")
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
nr=$(median "${node_rps[@]}"); np=$(median "${node_p99[@]}")
br=$(median "${beast_rps[@]}"); bp=$(median "${beast_p99[@]}")

echo
echo "GET /healthz, wrk -t2 -c$conns, $rounds x ${secs}s rounds (median), $threads io threads each"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
printf '%-22s %14s %10s\n' "server" "requests/s" "p99 ms"
printf '%-22s %14.0f %10.2f\n' "gigmesh node" "$nr" "$np"
printf '%-22s %14.0f %10.2f\n' "raw Beast (baseline)" "$br" "$bp"
awk -v n="$nr" -v b="$br" 'BEGIN {printf "ratio node/raw Beast: %.2f (target >= 0.80)\n", n / b}'
echo "per round node: ${node_rps[*]}; raw Beast: ${beast_rps[*]}"
