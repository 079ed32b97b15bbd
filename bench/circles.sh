#!/usr/bin/env bash
# Savings circle contributions per second: POST /api/v1/circles/{id}/contribute
# through REST (JWT, the circle entity's checks, the money mechanism's move
# from the member's wallet into the pot: two durable steps), beside one
# PostgreSQL transaction per contribution (a PL/pgSQL function doing the same
# checks and postings under row locks, driven by pgbench over libpq: no HTTP
# at all, the strictest baseline), against the same PostgreSQL in the same
# run. Two shapes:
#   - one circle of 100 members (every contribution meets at one pot);
#   - 1,000 circles of 10 members (spread).
# Circles pay out by themselves (auto_payout) once every member has paid, so
# rounds keep coming; a member asking before the next round began is
# refused (409) on both sides. Only contributions that moved money count:
# the ledger's `contribution` entries into the run's pots, over the time
# from the run's first to its last (one circle of 100 may complete all its
# 100 rounds before the run ends). Each run has circles of its own.
#
#   bench/circles.sh [seconds per run (10)] [clients (128)] [baseline connections (16)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
conns=${2:-128}
pool=${3:-16}

bench_setup
bench_start_node GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
  GIGMESH_JWT_SECRET=$bench_secret GIGMESH_ENTITY_IDLE_TIMEOUT_MS=600000
base=http://127.0.0.1:$BENCH_NODE_PORT
pgbench=${GM_PGBIN:-/usr/lib/postgresql/15/bin}/pgbench

# Each run gets circles of its own (a set), so that no run starts where
# another left off: `big_rest`, `big_pg` (one circle of 100 each) and
# `small_rest`, `small_pg` (1,000 circles of 10 each): 20,200 users with
# funded wallets, tokens minted with the node's secret.
bench_make_users 20200 1000000000000
psql "$BENCH_PG_URL" -qAt -c "CREATE TABLE bench_ids (k serial, id uuid)" >/dev/null
psql "$BENCH_PG_URL" -qAt -c "\copy bench_ids (id) FROM '$bench_data/user_ids'" >/dev/null
# User k (in the order bench_make_users wrote them) is in circle
# `set:c` at position `position`.
psql "$BENCH_PG_URL" -qAt <<'SQL' >/dev/null
CREATE TABLE bench_members AS
  SELECT k, id AS user_id,
         CASE WHEN k <= 100 THEN 'big_rest' WHEN k <= 200 THEN 'big_pg'
              WHEN k <= 10200 THEN 'small_rest' ELSE 'small_pg' END AS set,
         CASE WHEN k <= 200 THEN 0 ELSE (k - 201) / 10 END AS c,
         CASE WHEN k <= 200 THEN (k - 1) % 100 + 1 ELSE (k - 201) % 10 + 1 END AS position
  FROM bench_ids;
CREATE TABLE bench_circles AS
  SELECT set, c, gen_random_uuid() AS id FROM (SELECT DISTINCT set, c FROM bench_members) x;
INSERT INTO circles (id, name, creator_id, contribution_amount, frequency, max_members,
                     auto_payout, status, current_round, started_at, version, created_at)
  SELECT bc.id, 'bench ' || bc.set || ' ' || bc.c,
         (SELECT user_id FROM bench_members m WHERE m.set = bc.set AND m.c = bc.c
          AND m.position = 1),
         100, 'monthly', CASE WHEN bc.set LIKE 'big%' THEN 100 ELSE 10 END,
         true, 'active', 1, now(), 1, now()
  FROM bench_circles bc;
INSERT INTO circle_members (circle_id, user_id, joined, position, version, joined_at)
  SELECT bc.id, m.user_id, m.position, m.position, 1, now()
  FROM bench_members m JOIN bench_circles bc ON bc.set = m.set AND bc.c = m.c;
SQL

# The baseline: one transaction per contribution, the same checks and
# postings as the node (member and round, funds, the wallet's leg and the
# pot's, the member's round), and the payout in the same transaction when
# the last member paid.
psql "$BENCH_PG_URL" -qAt >/dev/null <<'SQL'
CREATE OR REPLACE FUNCTION bench_contribute(p_circle uuid, p_user uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  c circles%ROWTYPE;
  paid integer;
  w wallets%ROWTYPE;
  move uuid := gen_random_uuid();
  to_user uuid;
BEGIN
  SELECT * INTO c FROM circles WHERE id = p_circle FOR UPDATE;
  IF c.status <> 'active' THEN RETURN 409; END IF;
  SELECT paid_round INTO paid FROM circle_members
    WHERE circle_id = p_circle AND user_id = p_user FOR UPDATE;
  IF paid IS NULL THEN RETURN 403; END IF;
  IF paid >= c.current_round THEN RETURN 409; END IF;
  UPDATE wallets SET balance = balance - c.contribution_amount, version = version + 1
    WHERE user_id = p_user AND balance >= c.contribution_amount RETURNING * INTO w;
  IF NOT FOUND THEN RETURN 409; END IF;
  INSERT INTO ledger_entries (id, transfer_id, account, wallet_id, type, amount, delta,
                              balance_after, wallet_version, counterparty, created_at)
    VALUES (gen_random_uuid(), move, w.id::text, w.id, 'contribution', c.contribution_amount,
            -c.contribution_amount, w.balance, w.version, p_circle, now()),
           (gen_random_uuid(), move, 'circle:' || p_circle, NULL, 'contribution',
            c.contribution_amount, c.contribution_amount, c.pot + c.contribution_amount,
            c.version + 1, p_user, now());
  UPDATE circle_members SET paid_round = c.current_round, version = c.version + 1
    WHERE circle_id = p_circle AND user_id = p_user;
  UPDATE circles SET pot = pot + c.contribution_amount, version = version + 1
    WHERE id = p_circle RETURNING * INTO c;
  IF NOT EXISTS (SELECT 1 FROM circle_members WHERE circle_id = p_circle
                 AND paid_round < c.current_round) THEN
    SELECT user_id INTO to_user FROM circle_members
      WHERE circle_id = p_circle AND position = c.current_round;
    move := gen_random_uuid();
    UPDATE wallets SET balance = balance + c.pot, version = version + 1
      WHERE user_id = to_user RETURNING * INTO w;
    INSERT INTO ledger_entries (id, transfer_id, account, wallet_id, type, amount, delta,
                                balance_after, wallet_version, counterparty, created_at)
      VALUES (gen_random_uuid(), move, 'circle:' || p_circle, NULL, 'payout', c.pot, -c.pot,
              0, c.version + 1, to_user, now()),
             (gen_random_uuid(), move, w.id::text, w.id, 'payout', c.pot, c.pot, w.balance,
              w.version, p_circle, now());
    UPDATE circle_members SET received_payout = true WHERE circle_id = p_circle
      AND user_id = to_user;
    UPDATE circles SET pot = 0, version = version + 1,
      current_round = CASE WHEN current_round >= max_members THEN current_round
                           ELSE current_round + 1 END,
      status = CASE WHEN current_round >= max_members THEN 'completed' ELSE 'active' END
      WHERE id = p_circle;
  END IF;
  RETURN 200;
END $$;
SQL

# Contributions into pots so far (the measure of both sides).
contributions() {
  psql "$BENCH_PG_URL" -qAt -c "SELECT count(*) FROM ledger_entries
    WHERE type = 'contribution' AND account LIKE 'circle:%'"
}

# The wrk script of one set: each member of its circles asks to contribute
# in turn (in a random order), with the member's own token.
set_lua() {
  local set=$1 lua=$2
  {
    echo "local pairs_src = {"
    psql "$BENCH_PG_URL" -qAt -F ' ' -c "
      SELECT bc.id, m.k FROM bench_members m JOIN bench_circles bc
        ON bc.set = m.set AND bc.c = m.c WHERE m.set = '$set' ORDER BY random()" |
      awk -v tokens="$bench_data/tokens" 'BEGIN {while ((getline t < tokens) > 0) tok[++n] = t}
        {printf "{\"%s\", \"%s\"},\n", $1, tok[$2]}'
    echo "}"
    cat <<'LUA'
local reqs = {}
init = function(args)
  for i, p in ipairs(pairs_src) do
    reqs[i] = wrk.format("POST", "/api/v1/circles/" .. p[1] .. "/contribute",
                         {["Authorization"] = "Bearer " .. p[2]})
  end
end
local next_req = 0
request = function()
  next_req = next_req % #reqs + 1
  return reqs[next_req]
end
LUA
  } >"$lua"
}

# The baseline's pgbench script of one set.
set_sql() {
  local set=$1 file=$2 n
  n=$(psql "$BENCH_PG_URL" -qAt -c "SELECT count(*) FROM bench_members WHERE set = '$set'")
  psql "$BENCH_PG_URL" -qAt >/dev/null -c "
    CREATE TABLE bench_pairs_$set AS SELECT row_number() OVER () AS i, bc.id AS circle_id,
      m.user_id FROM bench_members m JOIN bench_circles bc ON bc.set = m.set AND bc.c = m.c
      WHERE m.set = '$set';
    CREATE UNIQUE INDEX ON bench_pairs_$set (i);"
  printf '\\set i random(1, %d)\nSELECT bench_contribute(circle_id, user_id) FROM bench_pairs_%s WHERE i = :i;\n' \
    "$n" "$set" >"$file"
}

# Contributions into the pots of one set, the time from its first to its
# last (ms; a run that completes its circles early is measured up to its
# end, not over the whole run), and how many of its circles completed.
set_figures() {
  psql "$BENCH_PG_URL" -qAt -F ' ' -c "
    SELECT count(*), coalesce(round(extract(epoch FROM max(e.created_at) - min(e.created_at))
                                    * 1000), 0),
           (SELECT count(*) FROM circles c JOIN bench_circles bc ON bc.id = c.id
              WHERE bc.set = '$1' AND c.status = 'completed')
    FROM ledger_entries e JOIN bench_circles bc ON e.account = 'circle:' || bc.id
    WHERE bc.set = '$1' AND e.type = 'contribution'"
}

echo "date: $(date -u +%Y-%m-%dT%H:%MZ), machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB"
echo "circle contributions: ${secs}s per run, REST with $conns clients, the baseline with $pool connections"
for shape in big small; do
  # REST first for one shape, the baseline first for the other.
  if [ "$shape" = big ]; then order="rest pg"; else order="pg rest"; fi
  declare -A rate=()
  for side in $order; do
    set=${shape}_$side
    bench_settle_db
    if [ "$side" = rest ]; then
      set_lua "$set" "$bench_data/$set.lua"
      read -r _ p99 _ < <(bench_wrk_ok -t2 -c"$conns" -d"${secs}s" -s "$bench_data/$set.lua" "$base/")
      sleep 1  # the last answers' credits commit
    else
      set_sql "$set" "$bench_data/$set.sql"
      "$pgbench" -n -c "$pool" -j 2 -T "$secs" -f "$bench_data/$set.sql" "$BENCH_PG_URL" >/dev/null 2>&1
    fi
    read -r n span done < <(set_figures "$set")
    rate[$side]=$(( span > 0 ? n * 1000 / span : 0 ))
    echo "  $set: $n contributions in $span ms, ${rate[$side]}/s; circles completed: $done${p99:+; REST p99 of all answers $p99 ms}"
    p99=
  done
  awk -v s="$shape" -v a="${rate[rest]}" -v b="${rate[pg]}" 'BEGIN {
    printf "%s: REST %d contributions/s, PL/pgSQL %d/s: %.2fx\n",
           (s == "big" ? "one circle of 100" : "1,000 circles of 10"), a, b, (b > 0 ? a / b : 0)}'
done
