#!/usr/bin/env bash
# Chat rooms, two benchmarks, each beside a baseline in the same run, with
# the same client (bench/chat_load.cpp):
#
# One room, many listeners: SESSIONS sockets of the room's members subscribe
# to room:<id>; SENDERS more sockets send messages over the WebSocket `send`
# op at a steady rate. On the node each message is durable (its row
# committed) before the ack and the event; the baseline is a broadcast
# server on Node's `ws` package (bench/node-ws/server.js) that numbers and
# forwards messages in memory (nothing durable). Latency: send → receive,
# over every delivered event; and send → ack.
#
# Many rooms: ROOMS sockets, socket i a member of room i, each keeping
# INFLIGHT messages unacknowledged (durable acks) for the run: durable
# messages per second across the rooms. Beside it, pgbench sends one
# INSERT per message (its own transaction, synchronous commit) of the same
# row into a table like room_messages, over PG_CLIENTS connections: what a
# service that writes each message as it comes pays PostgreSQL at least.
#
#   bench/chat.sh [seconds per run (10)] [sessions (1000)] [rates ("50 100 200")]
#                 [rooms (1000)] [inflight (2)] [pg clients (32)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
sessions=${2:-1000}
rates=${3:-"50 100 200"}
nrooms=${4:-1000}
inflight=${5:-2}
pg_clients=${6:-32}
senders=4

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
command -v node >/dev/null && command -v npm >/dev/null || gm_install_deps nodejs npm
bench_setup
bin=$GM_ROOT/build/release/bench
bench_start_node GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
  GIGMESH_JWT_SECRET=$bench_secret GIGMESH_ENTITY_IDLE_TIMEOUT_MS=3600000 ${BENCH_NODE_ENV:-}
node_pid=${bench_pids[0]}
node_port=$BENCH_NODE_PORT

nodews_dir=$bench_data/node-ws
mkdir -p "$nodews_dir"
cp "$GM_ROOT/bench/node-ws/package.json" "$GM_ROOT/bench/node-ws/server.js" "$nodews_dir/"
(cd "$nodews_dir" && npm install --no-audit --no-fund --no-package-lock --loglevel=error >/dev/null)
nodews_port=$(gm_free_port bench-chat-node)
node "$nodews_dir/server.js" "$nodews_port" &
nodews_pid=$!
bench_pids+=("$nodews_pid")
nodews_version=$(node -p "require('$nodews_dir/node_modules/ws/package.json').version")
for ((i = 0; i < 100; i++)); do gm_port_busy "$nodews_port" && break; sleep 0.1; done

users=$((sessions > nrooms ? sessions : nrooms))
bench_make_users "$users" 0
# One big room with every user, and one room per user (its only member),
# straight in SQL as the gateway writes them.
room=$(psql "$BENCH_PG_URL" -Atqc "
  WITH r AS (INSERT INTO rooms (id, name, creator_id, created_at)
             SELECT gen_random_uuid(), 'bench', (SELECT id FROM users ORDER BY phone LIMIT 1), now()
             RETURNING id),
  m AS (INSERT INTO room_members (room_id, user_id, joined, read_seq, version, joined_at)
        SELECT r.id, u.id, row_number() OVER (ORDER BY u.phone), 0, 1, now() FROM r, users u
        RETURNING 1)
  SELECT id FROM r, (SELECT count(*) FROM m) x")
psql "$BENCH_PG_URL" -Atqc "
  CREATE TEMP TABLE ord AS SELECT u, row_number() OVER () AS n
    FROM unnest(string_to_array('$(paste -sd, "$bench_data/user_ids")', ',')::uuid[]) u;
  WITH r AS (INSERT INTO rooms (id, name, creator_id, created_at)
             SELECT gen_random_uuid(), 'bench ' || n, u, now() FROM ord WHERE n <= $nrooms
             RETURNING id, creator_id)
  INSERT INTO room_members (room_id, user_id, joined, read_seq, version, joined_at)
  SELECT id, creator_id, 1, 0, 1, now() FROM r" >/dev/null
# Room i's id, in the order of the tokens.
psql "$BENCH_PG_URL" -Atqc "
  SELECT r.id FROM unnest(string_to_array('$(paste -sd, "$bench_data/user_ids")', ',')::uuid[])
    WITH ORDINALITY AS t(u, n)
  JOIN rooms r ON r.creator_id = t.u AND r.name <> 'bench' ORDER BY t.n" >"$bench_data/rooms"

names=("gigmesh node (durable)" "Node ws $nodews_version (memory)")
ports=("$node_port" "$nodews_port")
pids=("$node_pid" "$nodews_pid")

# One room: warm-up, then one run per rate and server, alternating.
"$bin/chat_load" room "$node_port" "$bench_data/tokens" "$room" 100 2 50 2 >/dev/null
declare -A fan cpu
for rate in $rates; do
  for s in 0 1; do
    t0=$(bench_cpu_ticks "${pids[$s]}")
    fan[$rate,$s]=$("$bin/chat_load" room "${ports[$s]}" "$bench_data/tokens" "$room" \
      "$sessions" "$senders" "$rate" "$secs")
    cpu[$rate,$s]=$(($(bench_cpu_ticks "${pids[$s]}") - t0))
    sleep 1
  done
done

# Many rooms: the node, then pgbench.
rooms_out=$("$bin/chat_load" rooms "$node_port" "$bench_data/tokens" "$bench_data/rooms" \
  "$nrooms" "$inflight" "$secs")
psql "$BENCH_PG_URL" -Atqc "
  CREATE TABLE IF NOT EXISTS bench_messages (LIKE room_messages INCLUDING ALL);
  CREATE SEQUENCE IF NOT EXISTS bench_seq" >/dev/null
cat >"$bench_data/insert.sql" <<EOF
\set r random(1, $nrooms)
INSERT INTO bench_messages (room_id, seq, id, sender_id, text, created_at)
VALUES (md5(:r::text)::uuid, nextval('bench_seq'), gen_random_uuid(), md5(:r::text)::uuid, 'hello from the bench', now());
EOF
pgbench_bin=${GIGMESH_PGBIN:-$GM_PGBIN}/pgbench
pg_tps=$("$pgbench_bin" -n -M prepared -c "$pg_clients" -j 2 -T "$secs" -f "$bench_data/insert.sql" \
  "$BENCH_PG_URL" 2>/dev/null | awk '/^tps/ {printf "%d", $3}')
pg_lat=$("$pgbench_bin" -n -M prepared -c "$pg_clients" -j 2 -T 3 -f "$bench_data/insert.sql" \
  "$BENCH_PG_URL" 2>/dev/null | awk '/latency average/ {print $4}')

echo
echo "Chat bench: ${secs}s per run; one room of $sessions subscribed sessions, $senders senders;"
echo "$nrooms rooms with $inflight messages in flight each"
bench_header
echo
echo "One room: messages sent at a rate; every member's session gets each (events delivered"
echo "of expected, per second); send → receive p50/p99 over every event; send → ack; server CPU"
echo "per delivered event (user + system); sessions closed by the server:"
printf '%-32s %6s %16s %9s %8s %8s %8s %8s %9s %6s\n' "server" "msg/s" "delivered" \
  "events/s" "p50 ms" "p99 ms" "ack p50" "ack p99" "CPU us/ev" "closed"
for rate in $rates; do
  for s in 0 1; do
    read -r sent acked errors delivered expected eps p50 p99 a50 a99 closed <<<"${fan[$rate,$s]}"
    us=$(bench_us_per "${cpu[$rate,$s]}" "$delivered")
    printf '%-32s %6s %16s %9s %8.2f %8.2f %8.2f %8.2f %9s %6s\n' "${names[$s]}" "$rate" \
      "$delivered/$expected" "$eps" "$p50" "$p99" "$a50" "$a99" "$us" "$closed"
    [ "$errors" = 0 ] && [ "$acked" = "$sent" ] || echo "  ($sent sent, $acked acked, $errors refused)"
  done
done
echo
read -r acked errors aps a50 a99 closed <<<"$rooms_out"
echo "Many rooms: durable messages per second"
printf '%-46s %10s %10s %10s\n' "" "msg/s" "p50 ms" "p99 ms"
printf '%-46s %10s %10.2f %10.2f\n' "gigmesh node, $nrooms rooms x $inflight in flight" "$aps" "$a50" "$a99"
printf '%-46s %10s %10s %10s\n' "pgbench, one INSERT per message, $pg_clients clients" "$pg_tps" \
  "${pg_lat:-?}" "(mean)"
[ "$errors" = 0 ] || echo "  ($errors sends refused on the node)"
awk -v n="$aps" -v p="$pg_tps" 'BEGIN {printf "  node / one INSERT per message: %.2fx\n", n / (p > 0 ? p : 1)}'
