#!/usr/bin/env bash
# Journal rows per second with batching versus one transaction per change,
# against the same private PostgreSQL in the same run (bench/journal_bench.cpp).
#
#   bench/journal.sh [seconds per side (10)] [durable|interval|eager]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
mode=${2:-durable}
bench_setup
echo
echo "journal bench: ${secs}s per line, one PostgreSQL (fsync on)"
bench_header
"$GM_ROOT/build/release/bench/journal_bench" "$BENCH_PG_URL" "$secs" "$mode" 2>/dev/null
