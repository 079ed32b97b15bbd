#!/usr/bin/env bash
# Measures, against one node in one run: GET /healthz (no auth), the
# authenticated GET /api/v1/users/me (token check, rate limit in Redis, a
# PostgreSQL read), and POST /api/v1/auth/login (bound by scrypt on the KDF
# pool). Prints one table with the ratio of the authenticated read to
# /healthz.
#
#   bench/auth.sh [seconds per run (10)] [connections (32)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
conns=${2:-32}

bench_setup
bench_start_node GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
  GIGMESH_JWT_SECRET=$bench_secret GIGMESH_KDF_THREADS=2
base=http://127.0.0.1:$BENCH_NODE_PORT

phone="+25471$(printf '%07d' $((RANDOM * RANDOM % 10000000)))"
body="{\"phone\":\"$phone\",\"full_name\":\"Bench\",\"password\":\"bench-password\",\"role\":\"rider\"}"
token=$(curl -sf -H 'Content-Type: application/json' -d "$body" "$base/api/v1/auth/register" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

login_lua=$bench_data/login.lua
cat >"$login_lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"phone":"$phone","password":"bench-password"}'
LUA

wrk -t2 -c"$conns" -d2s "$base/healthz" >/dev/null  # warm-up
read -r h_rps h_p99 < <(bench_wrk -t2 -c"$conns" -d"${secs}s" "$base/healthz")
read -r m_rps m_p99 < <(bench_wrk -t2 -c"$conns" -d"${secs}s" -H "Authorization: Bearer $token" \
  "$base/api/v1/users/me")
read -r l_rps l_p99 < <(bench_wrk -t2 -c8 -d"${secs}s" -s "$login_lua" "$base/api/v1/auth/login")
# A login storm (KDF threads saturated) while /healthz is measured again.
wrk -t1 -c16 -d"$((secs + 2))s" -s "$login_lua" "$base/api/v1/auth/login" >/dev/null &
storm=$!
sleep 1
read -r s_rps s_p99 < <(bench_wrk -t1 -c"$conns" -d"${secs}s" "$base/healthz")
wait "$storm" || true
statuses=$(grep -o 'gigmesh_http_requests_total{route="/api/v1/users/me",status="[0-9]*"} [0-9]*' \
  <(curl -s "$base/metrics") | tr '\n' ' ')

echo
echo "auth bench: wrk -t2, ${secs}s per line, one node (2 io threads, 2 KDF threads)"
bench_header
printf '%-36s %12s %10s\n' "request" "requests/s" "p99 ms"
printf '%-36s %12.0f %10.2f\n' "GET /healthz (c=$conns)" "$h_rps" "$h_p99"
printf '%-36s %12.0f %10.2f\n' "GET /api/v1/users/me, Bearer (c=$conns)" "$m_rps" "$m_p99"
printf '%-36s %12.1f %10.2f\n' "POST /api/v1/auth/login (c=8)" "$l_rps" "$l_p99"
printf '%-36s %12.0f %10.2f\n' "GET /healthz during a login storm" "$s_rps" "$s_p99"
awk -v m="$m_rps" -v h="$h_rps" 'BEGIN {printf "ratio authenticated read / healthz: %.2f\n", m / h}'
echo "(the storm line uses one wrk thread, the storm the other: compare its p99, not its rate)"
echo "users/me answers by status: $statuses"
