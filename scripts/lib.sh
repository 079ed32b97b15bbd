# Shared by scripts/run and scripts/test: install what is missing, build,
# and start/stop a private PostgreSQL 15 and Redis for this checkout.
# Sourced, not run.

GM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GM_PGBIN=/usr/lib/postgresql/15/bin
GM_PACKAGES=(
  g++ make cmake ninja-build ccache pkg-config git ca-certificates curl procps
  libcaf-dev libboost1.81-dev libpq-dev libhiredis-dev nlohmann-json3-dev
  libspdlog-dev doctest-dev libssl-dev libjemalloc-dev libs2-dev
  postgresql-15 postgresql-client-15 redis-server python3 wrk
)

gm_log() { echo "[gigmesh] $*" >&2; }
gm_die() { echo "[gigmesh] error: $*" >&2; exit 1; }

# Installs the Debian packages that are missing (idempotent): ours and any
# given as arguments.
gm_install_deps() {
  local missing=() p
  for p in "${GM_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || gm_die "missing packages (${missing[*]}): run as root to install them"
  gm_log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Package scripts must not start the system's own PostgreSQL/Redis services.
  local policy=/usr/sbin/policy-rc.d created_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
  fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
    { [ -n "$created_policy" ] && rm -f "$policy"; gm_die "apt-get install failed"; }
  [ -n "$created_policy" ] && rm -f "$policy"
  return 0
}

# Installs Node.js and npm from Debian when no npm is on the PATH (the
# OpenAPI linter, tests/openapi/, runs on it). A machine that has its own
# Node.js keeps it: Debian's npm package would conflict with it.
gm_install_node() {
  command -v npm >/dev/null && return 0
  gm_install_deps nodejs npm
}

# Configures and builds into $1 with build type $2 and extra CMake args.
gm_build() {
  local dir=$1 type=$2; shift 2
  # The cache lives outside the checkout so a fresh clone rebuilds quickly;
  # BASEDIR makes its keys independent of where the clone is.
  export CCACHE_DIR=${CCACHE_DIR:-/var/cache/gigmesh-ccache}
  export CCACHE_BASEDIR=$GM_ROOT CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
  mkdir -p "$CCACHE_DIR" 2>/dev/null || export CCACHE_DIR=$HOME/.cache/gigmesh-ccache
  cmake -S "$GM_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null ||
    gm_die "cmake configure failed for $dir"
  gm_log "building $dir ($type)"
  cmake --build "$dir" -j "${GM_JOBS:-$(nproc)}" || gm_die "build failed for $dir"
}

# Returns success if something listens on 127.0.0.1:$1.
gm_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints a free port, searching upwards from a base derived from $1 and the
# checkout path, so that two checkouts rarely collide.
gm_free_port() {
  local seed base p
  seed=$(printf '%s:%s' "$GM_ROOT" "$1" | cksum | cut -d' ' -f1)
  base=$(( 20000 + seed % 20000 ))
  for ((p = base; p < base + 500; p++)); do
    gm_port_busy "$p" || { echo "$p"; return 0; }
  done
  gm_die "no free port near $base"
}

# Prints a directory for PostgreSQL data that the postgres user can write:
# $1 if postgres can reach it, else a folder under /var/tmp for this checkout.
gm_pg_dir() {
  local want=$1
  mkdir -p "$want"
  chown postgres:postgres "$want" 2>/dev/null || true
  if su postgres -s /bin/sh -c "test -w '$want'" 2>/dev/null; then
    echo "$want"
  else
    local alt
    alt=/var/tmp/gigmesh-$(printf '%s' "$want" | cksum | cut -d' ' -f1)
    mkdir -p "$alt" && chown postgres:postgres "$alt"
    echo "$alt"
  fi
}

# Starts PostgreSQL with data in $1 on port $2 (initdb on first use) and
# makes sure the database gigmesh exists.
gm_pg_start() {
  local data=$1 port=$2
  [ "$(id -u)" = 0 ] || gm_die "PostgreSQL is started as the postgres user: run as root"
  gm_port_busy "$port" && gm_die "port $port for PostgreSQL is already in use"
  if [ ! -f "$data/PG_VERSION" ]; then
    # The log is written by root: postgres may not write beside its data.
    su postgres -s /bin/sh -c "$GM_PGBIN/initdb -D '$data' -U postgres --auth=trust \
      --no-locale -E UTF8" >"$data.initdb.log" 2>&1 ||
      gm_die "initdb failed: see $data.initdb.log"
  fi
  # TCP on 127.0.0.1 only, no Unix socket: a socket in /tmp would need a lock
  # file there, and one left behind by an earlier run (or another user's
  # server on the same port) stops PostgreSQL from starting.
  if ! su postgres -s /bin/sh -c "$GM_PGBIN/pg_ctl -D '$data' -l '$data/server.log' -w -t 60 \
    -o \"-p $port -c unix_socket_directories='' -c listen_addresses=127.0.0.1\" \
    start >/dev/null"; then
    tail -n 20 "$data/server.log" >&2 2>/dev/null || true
    gm_die "PostgreSQL did not start on port $port: see $data/server.log"
  fi
  local i
  for ((i = 0; i < 50; i++)); do
    psql -h 127.0.0.1 -p "$port" -U postgres -Atqc "SELECT 1" postgres >/dev/null 2>&1 && break
    sleep 0.2
  done
  psql -h 127.0.0.1 -p "$port" -U postgres -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = 'gigmesh'" postgres | grep -q 1 ||
    psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE gigmesh" postgres >/dev/null ||
    gm_die "cannot create database gigmesh"
}

# Stops the PostgreSQL whose data is in $1 (pg_ctl signals the postmaster PID).
gm_pg_stop() {
  local data=$1
  [ -f "$data/postmaster.pid" ] || return 0
  su postgres -s /bin/sh -c "$GM_PGBIN/pg_ctl -D '$data' -m fast -w -t 30 stop >/dev/null" ||
    true
}

# Starts Redis on port $1 with its files in directory $2.
gm_redis_start() {
  local port=$1 dir=$2
  gm_port_busy "$port" && gm_die "port $port for Redis is already in use"
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" ||
    gm_die "Redis did not start on port $port: see $dir/redis.log"
  local i
  for ((i = 0; i < 50; i++)); do
    gm_port_busy "$port" && return 0
    sleep 0.1
  done
  gm_die "Redis did not start on port $port: see $dir/redis.log"
}

# Stops the Redis whose pid file is in directory $1, by its PID.
gm_redis_stop() {
  local pidfile=$1/redis.pid pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# The private PostgreSQL and Redis of this checkout (data in .data/), shared
# by scripts/run and scripts/cluster: started unless an earlier run's are
# still up. Sets PG_PORT and REDIS_PORT.
gm_private_servers() {
  local data=$GM_ROOT/.data state=$GM_ROOT/.data/servers.env pgdir
  mkdir -p "$data"
  if [ -f "$state" ]; then
    . "$state"
    if ! gm_port_busy "$PG_PORT" || ! gm_port_busy "$REDIS_PORT"; then
      gm_private_servers_stop
    fi
  fi
  if [ ! -f "$state" ]; then
    pgdir=$(gm_pg_dir "$data/pg")
    echo "$pgdir" > "$data/pgdir"
    PG_PORT=$(gm_free_port pg)
    gm_pg_start "$pgdir" "$PG_PORT"
    REDIS_PORT=$(gm_free_port redis)
    gm_redis_start "$REDIS_PORT" "$data/redis"
    printf 'PG_PORT=%s\nREDIS_PORT=%s\n' "$PG_PORT" "$REDIS_PORT" > "$state"
    gm_log "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT (stop: scripts/run stop)"
  fi
}

gm_private_servers_stop() {
  local data=$GM_ROOT/.data
  gm_pg_stop "$(cat "$data/pgdir" 2>/dev/null || echo "$data/pg")"
  gm_redis_stop "$data/redis"
  rm -f "$data/servers.env"
  gm_log "private PostgreSQL and Redis stopped"
}
