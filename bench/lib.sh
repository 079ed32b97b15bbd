# Shared by the bench scripts: a private PostgreSQL and Redis, one node, and
# wrk helpers. Sourced, not run. Everything started is stopped on exit.
# BENCH_NODE_BIN runs another node binary (to compare two builds in turns).
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

bench_data=$GM_ROOT/build/bench-data
bench_pids=()

bench_cleanup() {
  local p
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  gm_pg_stop "$bench_pgdir"
  gm_redis_stop "$bench_data/redis"
}

# Installs, builds, starts PostgreSQL and Redis; sets BENCH_PG_URL, BENCH_REDIS_URL.
bench_setup() {
  gm_install_deps
  gm_build "$GM_ROOT/build/release" Release
  rm -rf "$bench_data"
  mkdir -p "$bench_data"
  bench_pgdir=$(gm_pg_dir "$bench_data/pg")
  trap bench_cleanup EXIT
  local pg_port redis_port
  pg_port=$(gm_free_port bench-pg)
  gm_pg_start "$bench_pgdir" "$pg_port"
  redis_port=$(gm_free_port bench-redis)
  gm_redis_start "$redis_port" "$bench_data/redis"
  BENCH_PG_URL=postgresql://postgres@127.0.0.1:$pg_port/gigmesh
  BENCH_REDIS_URL=redis://127.0.0.1:$redis_port/0
}

# Starts a node with 2 io threads and any extra VAR=value arguments; waits
# until it is ready; sets BENCH_NODE_PORT.
bench_start_node() {
  BENCH_NODE_PORT=$(gm_free_port bench-node)
  env GIGMESH_PG_URL="$BENCH_PG_URL" GIGMESH_REDIS_URL="$BENCH_REDIS_URL" \
    GIGMESH_HTTP_HOST=127.0.0.1 GIGMESH_HTTP_PORT="$BENCH_NODE_PORT" GIGMESH_HTTP_THREADS=2 \
    GIGMESH_LOG_LEVEL=warn "$@" "${BENCH_NODE_BIN:-$GM_ROOT/build/release/gigmesh}" >"$bench_data/node.log" 2>&1 &
  bench_pids+=($!)
  bench_wait_ok "http://127.0.0.1:$BENCH_NODE_PORT/readyz" ||
    gm_die "the bench node did not become ready: see $bench_data/node.log"
}

# The JWT secret bench nodes are started with, so scripts can mint tokens.
bench_secret=bench-secret-bench-secret-bench-secret-0

# Creates $1 client users with wallets holding $2 minor units straight in SQL
# (registering thousands through the KDF would take minutes) and mints an
# hour's access token for each with $bench_secret. Writes the user ids to
# $bench_data/user_ids and the tokens, in the same order, to
# $bench_data/tokens.
bench_make_users() {
  psql "$BENCH_PG_URL" -Atqc "
    WITH u AS (
      INSERT INTO users (id, phone, full_name, password_hash, role)
      SELECT gen_random_uuid(), '+2547' || lpad(g::text, 8, '0'), 'Bench ' || g, 'x', 'client'
      FROM generate_series(1, $1) g RETURNING id)
    INSERT INTO wallets (id, user_id, balance) SELECT gen_random_uuid(), id, $2 FROM u
    RETURNING user_id" >"$bench_data/user_ids"
  python3 - "$bench_secret" "$bench_data/user_ids" >"$bench_data/tokens" <<'PY'
import base64, hashlib, hmac, json, sys, time
secret, path = sys.argv[1].encode(), sys.argv[2]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
now = int(time.time())
for uid in open(path).read().split():
    body = b64(json.dumps({"sub": uid, "role": "client", "iat": now, "exp": now + 3600,
                           "jti": uid[:8]}).encode())
    sig = hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest()
    print(head + "." + body + "." + b64(sig))
PY
}

# Runs wrk with the given arguments and prints "requests_per_second p99_ms
# answered_2xx_per_second other_answers" (other: wrk's non-2xx/3xx count
# plus its socket errors).
bench_wrk_all() {
  local out
  out=$(wrk --latency "$@")
  awk '/^Requests\/sec:/ {rps = $2}
       / requests in / {n = $1}
       /^  Non-2xx or 3xx responses:/ {bad += $5}
       /^  Socket errors:/ {for (i = 3; i <= NF; i += 2) {v = $(i + 1); sub(/,/, "", v); bad += v}}
       $1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000}
                    else if (v ~ /ms$/) {sub(/ms/, "", v)}
                    else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; p99 = v}
       END {ok = (n > 0 ? rps * (n - bad) / n : 0); if (ok < 0) ok = 0
            printf "%s %s %.2f %d\n", rps, p99, ok, bad}' <<<"$out"
}

# Prints "requests_per_second p99_ms" for wrk with the given arguments.
bench_wrk() { bench_wrk_all "$@" | awk '{print $1, $2}'; }

# Like bench_wrk, counting only 2xx answers: prints "answered_2xx_per_second
# p99_ms other_answers".
bench_wrk_ok() { bench_wrk_all "$@" | awk '{print $3, $2, $4}'; }

# Writes to $1 the wrk script of the transfer benches: POST
# /api/v1/wallet/transfer between random pairs of the users
# bench_make_users made, each with its own token.
bench_transfer_lua() {
  {
    echo "local tokens = {"
    sed 's/.*/"&",/' "$bench_data/tokens"
    echo "}"
    echo "local ids = {"
    sed 's/.*/"&",/' "$bench_data/user_ids"
    echo "}"
    # Random pairs and amounts, built before the run (20,000 per wrk thread,
    # sent in turn): formatting each request in Lua as it was sent took a
    # third of the load generator's CPU (18-22 -> 13-14 us per transfer),
    # CPU the node and PostgreSQL share on these two cores.
    cat <<'LUA'
local n = #tokens
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end
local reqs = {}
init = function(args)
  math.randomseed(7919 * (thread_no or 1))
  for k = 1, 20000 do
    local i = math.random(n)
    local j = math.random(n - 1)
    if j >= i then j = j + 1 end
    local body = '{"to_user_id":"' .. ids[j] .. '","amount":' .. math.random(100) .. '}'
    reqs[k] = wrk.format("POST", "/api/v1/wallet/transfer",
                         {["Authorization"] = "Bearer " .. tokens[i],
                          ["Content-Type"] = "application/json"}, body)
  end
end
local next_req = 0
request = function()
  next_req = next_req % #reqs + 1
  return reqs[next_req]
end
LUA
  } >"$1"
}

# Before every measured run, of either side: vacuum the tables both write
# and checkpoint, so that each run starts from the same state of the
# database. Runs follow each other faster than autovacuum wakes up (once a
# minute), so without it each run inherited the dead row versions of the
# ones before (the wallets table takes about 100,000 updates per run), and
# PostgreSQL's CPU per transfer rose from run to run on both sides (for the
# baseline from 254 to 386 us over three rounds).
bench_settle_db() {
  psql "$BENCH_PG_URL" -qX -c "VACUUM (ANALYZE) wallets, transfers, ledger_entries" \
    -c "CHECKPOINT" >/dev/null
}

# Waits up to 30 s until GET $1 answers 200; returns 1 if it never does.
bench_wait_ok() {
  local i
  for ((i = 0; i < 300; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

# CPU time (user + system) in clock ticks of process $1.
bench_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# CPU time in clock ticks of every PostgreSQL process, with the backends
# that have exited (the postmaster's reaped children).
bench_pg_ticks() {
  local p t=0
  for p in $(pgrep -x postgres); do
    t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

# Prints microseconds of CPU per operation: ticks $1 over $2 operations.
bench_us_per() { awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", t / hz * 1e6 / (n > 0 ? n : 1)}'; }

# Prints the median of its arguments.
bench_median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

bench_header() {
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ), machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
}
