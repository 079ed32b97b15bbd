#!/usr/bin/env bash
# Gig contracts: lifecycles per second and search latency.
#
# 1. Contract lifecycles (accept → deliver → approve, each answered only once
#    durable) through REST: the gig's contract entity reads the gig and the
#    proposal, the client's wallet locks the escrow (one write), deliver is
#    one write, approve writes its decision, the wallets release the escrow
#    (a saga of two), and the contract writes its end. Beside it, the same
#    life as one PostgreSQL transaction per request (PL/pgSQL functions doing
#    the same checks and postings under row locks, driven by pgbench over
#    libpq: no HTTP, the strictest baseline), against the same PostgreSQL in
#    the same run. Each side has gigs, proposals and users of its own.
# 2. GET /api/v1/gigs?q= latency (sequential, 200 per query) with 100,000
#    gigs of generated text in the table.
#
#   bench/contracts.sh [seconds per run (10)] [REST workers (64)] [baseline connections (16)]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
workers=${2:-64}
pool=${3:-16}
pairs=200          # client-hustler pairs per side
per_pair=200       # gigs per pair and side (pairs × per_pair lifecycles at most)

bench_setup
bench_start_node GIGMESH_RATE_LIMIT_IP_PER_MIN=100000000 GIGMESH_RATE_LIMIT_USER_PER_MIN=100000000 \
  GIGMESH_JWT_SECRET=$bench_secret GIGMESH_ENTITY_IDLE_TIMEOUT_MS=600000
pgbench=${GM_PGBIN:-/usr/lib/postgresql/15/bin}/pgbench
here=$(cd "$(dirname "$0")" && pwd)

# Users 1..2×pairs are REST's, the next 2×pairs the baseline's: odd k a
# client, even k its hustler.
bench_make_users $((4 * pairs)) 1000000000000
psql "$BENCH_PG_URL" -qAt >/dev/null -c "CREATE TABLE bench_ids (k serial, id uuid)"
psql "$BENCH_PG_URL" -qAt >/dev/null -c "\copy bench_ids (id) FROM '$bench_data/user_ids'"
psql "$BENCH_PG_URL" -qAt >/dev/null <<SQL
CREATE TABLE bench_gigs AS
  SELECT row_number() OVER () AS n, CASE WHEN c.k <= 2 * $pairs THEN 'rest' ELSE 'pg' END AS side,
         gen_random_uuid() AS gig, gen_random_uuid() AS proposal, c.k AS ck, c.id AS client,
         h.k AS hk, h.id AS hustler
  FROM bench_ids c JOIN bench_ids h ON h.k = c.k + 1, generate_series(1, $per_pair) g
  WHERE c.k % 2 = 1 ORDER BY random();
INSERT INTO gigs (id, client_id, title, description, category, budget_min, budget_max,
                  created_at, updated_at)
  SELECT gig, client, 'bench gig ' || n, 'a gig of the contract bench', 'bench', 100, 1000,
         now(), now() FROM bench_gigs;
INSERT INTO proposals (id, gig_id, hustler_id, cover_letter, proposed_price, delivery_days,
                       created_at)
  SELECT proposal, gig, hustler, 'bench', 500, 3, now() FROM bench_gigs;
SQL

# The baseline: the three requests as three functions, one transaction each.
psql "$BENCH_PG_URL" -qAt >/dev/null <<'SQL'
CREATE OR REPLACE FUNCTION bench_accept(p_gig uuid, p_prop uuid, p_client uuid, cid uuid)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  g gigs%ROWTYPE; p proposals%ROWTYPE; w wallets%ROWTYPE; move uuid := gen_random_uuid();
BEGIN
  SELECT * INTO g FROM gigs WHERE id = p_gig FOR UPDATE;
  IF g.client_id <> p_client OR g.status <> 'open' THEN RETURN NULL; END IF;
  SELECT * INTO p FROM proposals WHERE id = p_prop AND gig_id = p_gig;
  UPDATE wallets SET balance = balance - p.proposed_price,
    escrow_balance = escrow_balance + p.proposed_price, version = version + 2
    WHERE user_id = p_client AND balance >= p.proposed_price RETURNING * INTO w;
  IF NOT FOUND THEN RETURN NULL; END IF;
  INSERT INTO ledger_entries (id, transfer_id, account, wallet_id, type, amount, delta,
                              balance_after, wallet_version, counterparty, created_at)
    VALUES (gen_random_uuid(), move, w.id::text, w.id, 'escrow_lock', p.proposed_price,
            -p.proposed_price, w.balance, w.version - 1, p.hustler_id, now()),
           (gen_random_uuid(), move, 'escrow:' || w.id, w.id, 'escrow_lock', p.proposed_price,
            p.proposed_price, w.escrow_balance, w.version, p.hustler_id, now());
  INSERT INTO contracts (id, gig_id, proposal_id, client_id, hustler_id, title, agreed_price,
                         delivery_days, status, version, created_at, updated_at)
    VALUES (cid, p_gig, p_prop, p_client, p.hustler_id, g.title, p.proposed_price,
            p.delivery_days, 'active', 1, now(), now());
  UPDATE gigs SET status = 'closed', contract_id = cid, proposal_id = p_prop,
    close_version = 1, updated_at = now() WHERE id = p_gig;
  RETURN cid;
END $$;
CREATE OR REPLACE FUNCTION bench_deliver(p_contract uuid, p_hustler uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE c contracts%ROWTYPE;
BEGIN
  SELECT * INTO c FROM contracts WHERE id = p_contract FOR UPDATE;
  IF c.hustler_id <> p_hustler OR c.status <> 'active' THEN RETURN 409; END IF;
  UPDATE contracts SET status = 'delivered', delivered_at = now(),
    auto_release_at = now() + interval '14 days', version = version + 1, updated_at = now()
    WHERE id = p_contract;
  RETURN 200;
END $$;
CREATE OR REPLACE FUNCTION bench_approve(p_contract uuid, p_client uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE c contracts%ROWTYPE; w wallets%ROWTYPE; h wallets%ROWTYPE; move uuid := gen_random_uuid();
BEGIN
  SELECT * INTO c FROM contracts WHERE id = p_contract FOR UPDATE;
  IF c.client_id <> p_client OR c.status <> 'delivered' THEN RETURN 409; END IF;
  UPDATE wallets SET escrow_balance = escrow_balance - c.agreed_price, version = version + 1
    WHERE user_id = c.client_id RETURNING * INTO w;
  UPDATE wallets SET balance = balance + c.agreed_price, version = version + 1
    WHERE user_id = c.hustler_id RETURNING * INTO h;
  INSERT INTO ledger_entries (id, transfer_id, account, wallet_id, type, amount, delta,
                              balance_after, wallet_version, counterparty, created_at)
    VALUES (gen_random_uuid(), move, 'escrow:' || w.id, w.id, 'escrow_release', c.agreed_price,
            -c.agreed_price, w.escrow_balance, w.version, c.hustler_id, now()),
           (gen_random_uuid(), move, h.id::text, h.id, 'escrow_release', c.agreed_price,
            c.agreed_price, h.balance, h.version, c.client_id, now());
  UPDATE contracts SET status = 'completed', completed_at = now(), auto_release_at = NULL,
    version = version + 1, updated_at = now() WHERE id = p_contract;
  RETURN 200;
END $$;
CREATE SEQUENCE bench_next;
CREATE TABLE bench_pg AS SELECT row_number() OVER () AS i, gig, proposal, client, hustler,
  gen_random_uuid() AS cid FROM bench_gigs WHERE side = 'pg';
CREATE UNIQUE INDEX ON bench_pg (i);
-- One request each, by the line's number (pgbench's variables are numbers).
CREATE FUNCTION bench_accept_i(n bigint) RETURNS uuid LANGUAGE sql AS
  'SELECT bench_accept(gig, proposal, client, cid) FROM bench_pg WHERE i = n';
CREATE FUNCTION bench_deliver_i(n bigint) RETURNS integer LANGUAGE sql AS
  'SELECT bench_deliver(cid, hustler) FROM bench_pg WHERE i = n';
CREATE FUNCTION bench_approve_i(n bigint) RETURNS integer LANGUAGE sql AS
  'SELECT bench_approve(cid, client) FROM bench_pg WHERE i = n';
SQL
cat >"$bench_data/lifecycle.sql" <<'SQL'
SELECT nextval('bench_next') AS n \gset
SELECT bench_accept_i(:n);
SELECT bench_deliver_i(:n);
SELECT bench_approve_i(:n);
SQL
# REST's lines: gig, proposal, the client's token, the hustler's.
psql "$BENCH_PG_URL" -qAt -F ' ' -c "SELECT gig, proposal, ck, hk FROM bench_gigs
  WHERE side = 'rest'" |
  awk -v tokens="$bench_data/tokens" 'BEGIN {while ((getline t < tokens) > 0) tok[++n] = t}
    {print $1, $2, tok[$3], tok[$4]}' >"$bench_data/rest_lines"

completed() {
  psql "$BENCH_PG_URL" -qAt -c "SELECT count(*) FROM contracts c JOIN bench_gigs b
    ON b.gig = c.gig_id WHERE b.side = '$1' AND c.status = 'completed'"
}

echo "date: $(date -u +%Y-%m-%dT%H:%MZ), machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB"
echo "contract lifecycles (accept, deliver, approve): ${secs}s per run, REST with $workers workers, the baseline with $pool connections"
bench_settle_db
read -r n took failed < <(python3 "$here/contract_load.py" lifecycles "$bench_data/rest_lines" \
  "$BENCH_NODE_PORT" "$secs" "$workers")
rest_done=$(completed rest)
rest_rate=$(awk -v n="$rest_done" -v t="$took" 'BEGIN {printf "%d", n / t}')
echo "  REST: $n lifecycles answered in ${took}s ($failed refused), $rest_done completed in PostgreSQL: $rest_rate/s"
bench_settle_db
"$pgbench" -n -c "$pool" -j 2 -T "$secs" -f "$bench_data/lifecycle.sql" "$BENCH_PG_URL" \
  >"$bench_data/pgbench.log" 2>&1 || gm_die "pgbench failed: see $bench_data/pgbench.log"
pg_done=$(completed pg)
pg_rate=$((pg_done / secs))
echo "  PL/pgSQL: $pg_done completed: $pg_rate/s"
awk -v a="$rest_rate" -v b="$pg_rate" 'BEGIN {printf "lifecycles: REST %d/s, PL/pgSQL %d/s: %.2fx\n", a, b, (b > 0 ? a / b : 0)}'

# Search: 100,000 gigs of generated text (titles of 3..6 words, descriptions
# of 20..40, from a vocabulary of 2,000 words, one word in 100 "plumbing").
psql "$BENCH_PG_URL" -qAt >/dev/null <<'SQL'
CREATE TABLE bench_words AS SELECT i, CASE WHEN i = 1 THEN 'plumbing' WHEN i = 2 THEN 'logo'
  ELSE substr(md5(i::text), 1, 3 + i % 6) END AS w FROM generate_series(1, 2000) i;
INSERT INTO gigs (id, client_id, title, description, category, budget_min, budget_max,
                  created_at, updated_at)
  SELECT gen_random_uuid(), (SELECT id FROM bench_ids WHERE k = 1),
         (SELECT string_agg(w, ' ') FROM bench_words WHERE i IN (
            SELECT 1 + floor(random() * 2000)::int + 0 * g FROM generate_series(1, 3 + g % 4))),
         (SELECT string_agg(CASE WHEN random() < 0.01 THEN 'plumbing' ELSE w END, ' ')
            FROM bench_words WHERE i IN (
            SELECT 1 + floor(random() * 2000)::int + 0 * g FROM generate_series(1, 20 + g % 21))),
         'c' || (g % 20), 100, 1000, now(), now()
  FROM generate_series(1, 100000) g;
ANALYZE gigs;
SQL
echo "search: $(psql "$BENCH_PG_URL" -qAt -c "SELECT count(*) FROM gigs") gigs; 200 sequential GET /api/v1/gigs?q=&limit=20 per query (query p50_ms p99_ms items)"
token=$(head -1 "$bench_data/tokens")
python3 "$here/contract_load.py" search "$BENCH_NODE_PORT" "$token" 200 "plumbing" "logo" "logo plumbing" \
  "$(psql "$BENCH_PG_URL" -qAt -c "SELECT w FROM bench_words WHERE i = 777")" "nothingmatches" |
  sed 's/^/  /'
