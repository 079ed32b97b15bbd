#!/usr/bin/env bash
# Short REST transfer runs of node variants in turn, against one PostgreSQL,
# with where each run's time went: for deciding whether a change moves the
# uniform transfer bench before spending a full bench/transfers.sh on it.
#
#   bench/transfer_ab.sh [seconds (15)] [clients (512)] [users (1000)] [variant...]
#
# A variant is a node binary, optionally with environment settings after a
# colon, separated by commas: `/tmp/gm-old`, `build/release/gigmesh:GIGMESH_JOURNAL_GROUP_COMMIT=interval`.
# Without variants: the release build, twice. Variants run in the order
# given: alternate them (A B B A ...), because a run's rate drifts with the
# machine and with the tables' growth.
#
# An older binary knows fewer migrations and refuses a database with newer
# ones applied: give it `BENCH_SCHEMA_VERSION=N` among its settings (not
# passed to the node) and the records of migrations above N are removed
# before it starts; the newer binary applies them again when it starts,
# which is safe because migrations are written to be (IF [NOT] EXISTS).
# The older binary then runs on the newer schema. `BENCH_SQL_FILE=path` runs
# that SQL before the variant starts (for a diagnosis, e.g. without an index).
#
# Each run starts after `VACUUM (ANALYZE)` and a `CHECKPOINT` (as in
# transfers.sh), warms up for 5 s, then measures for the given seconds and
# prints one line:
#   - transfers/s (2xx answers only) and other answers;
#   - CPU per transfer in µs: the node, every PostgreSQL process, wrk, and
#     the machine's idle time (the two cores give 100 µs per transfer at
#     20,000/s between them);
#   - the journal: the share of the run a batch was in flight (the sum of
#     `gigmesh_journal_flush_seconds` over the run's wall time: near 100%,
#     its one connection is the stage that sets the rate), rows per batch,
#     and WAL bytes per transfer.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-15}
conns=${2:-512}
users=${3:-1000}
shift $(($# < 3 ? $# : 3))
variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then
  variants=("$GM_ROOT/build/release/gigmesh" "$GM_ROOT/build/release/gigmesh")
fi

common=(GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000
  GIGMESH_JWT_SECRET=$bench_secret GIGMESH_KDF_THREADS=2 GIGMESH_ENTITY_IDLE_TIMEOUT_MS=600000)

bench_setup
for v in "${variants[@]}"; do
  [ -x "${v%%:*}" ] || gm_die "no node binary at ${v%%:*}"
done

# Users and their wallets, with a node of the first variant (migrations).
BENCH_NODE_BIN=${variants[0]%%:*} bench_start_node "${common[@]}"
bench_make_users "$users" 1000000000000
kill "${bench_pids[0]}" && wait "${bench_pids[0]}" 2>/dev/null || true
bench_pids=()
lua=$bench_data/transfer.lua
bench_transfer_lua "$lua"

# Prints "<flush seconds sum> <batch rows sum> <batches>" from the node's metrics.
journal_figures() {
  curl -s "$1/metrics" | awk '/^gigmesh_journal_flush_seconds_sum/ {f = $2}
    /^gigmesh_journal_batch_rows_sum/ {r = $2} /^gigmesh_journal_batch_rows_count/ {c = $2}
    END {print f + 0, r + 0, c + 0}'
}

wal_bytes() { psql "$BENCH_PG_URL" -Atc "SELECT wal_bytes FROM pg_stat_wal"; }

# The machine's idle time in clock ticks.
idle_ticks() { awk '/^cpu / {print $5}' /proc/stat; }

bench_header
echo "transfer A/B: ${secs}s per run after 5 s of warm-up, $conns clients, $users wallets"
k=0
for v in "${variants[@]}"; do
  k=$((k + 1))
  bin=${v%%:*}
  extra=()
  if [ "$v" != "$bin" ]; then IFS=',' read -ra extra <<<"${v#*:}"; fi
  node_env=()
  for e in "${extra[@]}"; do
    case $e in
      BENCH_SCHEMA_VERSION=*)
        psql "$BENCH_PG_URL" -qAtc "DELETE FROM schema_migrations WHERE version > ${e#*=}" ;;
      BENCH_SQL_FILE=*)  # SQL run before this variant starts (a diagnosis: drop an index, say)
        psql "$BENCH_PG_URL" -qAt -f "${e#*=}" ;;
      *) node_env+=("$e") ;;
    esac
  done
  BENCH_NODE_BIN=$bin bench_start_node "${common[@]}" "${node_env[@]}"
  pid=${bench_pids[0]}
  base=http://127.0.0.1:$BENCH_NODE_PORT
  wrk -t2 -c"$conns" -d5s -s "$lua" "$base/" >/dev/null
  bench_settle_db
  read -r f0 r0 c0 < <(journal_figures "$base")
  n0=$(bench_cpu_ticks "$pid"); p0=$(bench_pg_ticks); i0=$(idle_ticks); w0=$(wal_bytes)
  /usr/bin/time -f "%U %S" -o "$bench_data/wrk.time" wrk --latency -t2 -c"$conns" -d"${secs}s" \
    -s "$lua" "$base/" >"$bench_data/wrk.out"
  n1=$(bench_cpu_ticks "$pid"); p1=$(bench_pg_ticks); i1=$(idle_ticks); w1=$(wal_bytes)
  read -r f1 r1 c1 < <(journal_figures "$base")
  kill -INT "$pid" && wait "$pid" 2>/dev/null || true
  bench_pids=()
  # "<n> requests in <d>s": wrk's own span, without its script's set-up.
  read -r n wall < <(awk '/ requests in / {d = $4; sub(/,$/, "", d)
    if (d ~ /ms$/) {sub(/ms$/, "", d); d /= 1000} else if (d ~ /m$/) {sub(/m$/, "", d); d *= 60}
    else sub(/s$/, "", d); print $1, d}' "$bench_data/wrk.out")
  bad=$(awk '/Non-2xx or 3xx responses:/ {b += $5} /Socket errors:/ {for (i = 3; i <= NF; i += 2) {x = $(i + 1); sub(/,/, "", x); b += x}} END {print b + 0}' "$bench_data/wrk.out")
  ok=$((n - bad))
  wt=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($1 + $2) * hz}' "$bench_data/wrk.time")
  awk -v k="$k" -v v="$v" -v ok="$ok" -v bad="$bad" -v wall="$wall" \
    -v node=$((n1 - n0)) -v pg=$((p1 - p0)) -v wrk="$wt" -v idle=$((i1 - i0)) \
    -v hz="$(getconf CLK_TCK)" -v f="$f0 $f1" -v r=$((r1 - r0)) -v c=$((c1 - c0)) -v wal=$((w1 - w0)) '
    function us(t) { return ok > 0 ? t / hz * 1e6 / ok : 0 }
    BEGIN {
      split(f, ff, " ")
      printf "%d. %s: %.0f transfers/s (%d other answers); CPU per transfer: node %.0f us, PostgreSQL %.0f us, wrk %.0f us, idle %.0f us; journal in flight %.0f%%, %.0f rows/batch, WAL %.0f bytes/transfer\n",
        k, v, ok / wall, bad, us(node), us(pg), us(wrk), us(idle),
        100 * (ff[2] - ff[1]) / wall, (c > 0 ? r / c : 0), (ok > 0 ? wal / ok : 0)
    }'
  sleep 1
done
