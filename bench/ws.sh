#!/usr/bin/env bash
# WebSocket fan-out and idle-session memory: a gigmesh node beside two
# baseline broadcast servers measured in the same run with the same client
# (bench/ws_load.cpp): a minimal raw Beast server (bench/ws_broadcast_beast.cpp,
# same io threads as the node) and one on Node's `ws` package
# (bench/node-ws/server.js, installed from npm into the bench folder).
#
# Fan-out: SESSIONS sockets subscribe to one topic (on the node: one user's
# wallet:<id>, all sessions that user's); deposits are POSTed at a steady rate;
# each deposit is one event to every socket. On the node a deposit is a
# durable write (journal group commit) before its event is published; the
# baselines keep the balance in memory. Latency is publish (deposit sent) to
# receive, over every delivered event.
#
# Idle: IDLE sockets of distinct users, each subscribed to its user:<id>
# topic; resident memory of the server before and after, divided by IDLE.
#
#   bench/ws.sh [seconds per run (10)] [sessions (1000)] [rates ("20 50 100")] [idle (10000)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
sessions=${2:-1000}
rates=${3:-"20 50 100"}
idle=${4:-10000}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((idle + 1000)) ] || gm_die "need more than $((idle + 1000)) open files (ulimit -n)"

# Node.js and npm for the `ws` baseline: Debian's, unless the machine has its own.
command -v node >/dev/null && command -v npm >/dev/null || gm_install_deps nodejs npm
bench_setup
bin=$GM_ROOT/build/release/bench
bench_start_node GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
  GIGMESH_JWT_SECRET=$bench_secret GIGMESH_ENTITY_IDLE_TIMEOUT_MS=3600000 ${BENCH_NODE_ENV:-}
node_pid=${bench_pids[0]}
node_port=$BENCH_NODE_PORT

beast_port=$(gm_free_port bench-ws-beast)
"$bin/ws_broadcast_beast" "$beast_port" 2 &
beast_pid=$!
bench_pids+=("$beast_pid")

nodews_dir=$bench_data/node-ws
mkdir -p "$nodews_dir"
cp "$GM_ROOT/bench/node-ws/package.json" "$GM_ROOT/bench/node-ws/server.js" "$nodews_dir/"
(cd "$nodews_dir" && npm install --no-audit --no-fund --no-package-lock --loglevel=error >/dev/null)
nodews_port=$(gm_free_port bench-ws-node)
node "$nodews_dir/server.js" "$nodews_port" &
nodews_pid=$!
bench_pids+=("$nodews_pid")
nodews_version=$(node -p "require('$nodews_dir/node_modules/ws/package.json').version")
for p in "$beast_port" "$nodews_port"; do
  for ((i = 0; i < 100; i++)); do gm_port_busy "$p" && break; sleep 0.1; done
done

bench_make_users "$idle" 0
token=$(head -1 "$bench_data/tokens")
wallet=$(psql "$BENCH_PG_URL" -Atqc "SELECT id FROM wallets WHERE user_id = '$(head -1 "$bench_data/user_ids")'")

names=("gigmesh node" "raw Beast (baseline)" "Node ws $nodews_version (baseline)")
ports=("$node_port" "$beast_port" "$nodews_port")
pids=("$node_pid" "$beast_pid" "$nodews_pid")

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Idle sessions first, while every server is fresh: memory per session.
declare -A mem
for s in 0 1 2; do
  before=$(rss_kib "${pids[$s]}")
  coproc holder { "$bin/ws_load" idle "${ports[$s]}" "$bench_data/tokens" "$bench_data/user_ids" "$idle"; }
  read -r _ opened <&"${holder[0]}"
  sleep 3
  after=$(rss_kib "${pids[$s]}")
  echo done >&"${holder[1]}"
  wait "$holder_PID" || true
  mem[$s]="$opened $before $after"
  sleep 2
done

# Fan-out: one run per rate and server, servers alternating.
"$bin/ws_load" fanout "$node_port" "$token" "wallet:$wallet" 100 50 2 >/dev/null  # warm-up
declare -A fan cpu
for rate in $rates; do
  for s in 0 1 2; do
    t0=$(bench_cpu_ticks "${pids[$s]}")
    fan[$rate,$s]=$("$bin/ws_load" fanout "${ports[$s]}" "$token" "wallet:$wallet" "$sessions" \
      "$rate" "$secs")
    cpu[$rate,$s]=$(($(bench_cpu_ticks "${pids[$s]}") - t0))
    sleep 1
  done
done

echo
echo "WebSocket bench: $sessions sessions on one topic, ${secs}s per run; $idle idle sessions"
bench_header
echo
echo "Fan-out: events delivered (of expected) and per second; latency deposit sent → event"
echo "received (p50, p99) and deposit sent → its HTTP answer (dep); server CPU per delivered"
echo "event (user + system); sessions closed by the server:"
printf '%-30s %6s %16s %9s %8s %8s %8s %8s %8s %6s\n' "server" "rate/s" "delivered" \
  "events/s" "p50 ms" "p99 ms" "dep p50" "dep p99" "CPU us/ev" "closed"
for rate in $rates; do
  for s in 0 1 2; do
    read -r published failed delivered expected eps p50 p99 closed d50 d99 <<<"${fan[$rate,$s]}"
    us=$(bench_us_per "${cpu[$rate,$s]}" "$delivered")
    printf '%-30s %6s %16s %9s %8.2f %8.2f %8.2f %8.2f %8s %6s\n' "${names[$s]}" "$rate" \
      "$delivered/$expected" "$eps" "$p50" "$p99" "$d50" "$d99" "$us" "$closed"
    [ "$failed" = 0 ] || echo "  ($failed deposits not answered 2xx)"
  done
  read -r _ _ _ _ n _ _ _ <<<"${fan[$rate,0]}"
  read -r _ _ _ _ b _ _ _ <<<"${fan[$rate,1]}"
  read -r _ _ _ _ w _ _ _ <<<"${fan[$rate,2]}"
  awk -v n="$n" -v b="$b" -v w="$w" -v r="$rate" \
    'BEGIN {printf "  rate %s: events/s node / raw Beast %.2f, node / Node ws %.2f\n", r, n / b, n / w}'
done
echo
echo "Idle sessions (resident memory delta / open sessions):"
printf '%-30s %8s %12s %12s %12s\n' "server" "open" "RSS before" "RSS after" "per session"
for s in 0 1 2; do
  read -r opened before after <<<"${mem[$s]}"
  awk -v name="${names[$s]}" -v o="$opened" -v a="$before" -v b="$after" \
    'BEGIN {printf "%-30s %8d %9.1f MiB %9.1f MiB %9.0f B\n", name, o, a / 1024, b / 1024, (b - a) * 1024 / o}'
done
echo "(target for the node: under 16 KiB per session)"
