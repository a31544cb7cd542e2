#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for the test suite (no mocks).
#
# Usage: bash scripts/postgres.sh start|stop|url|status DIR
#   start   install Debian's postgresql if missing (root only), initdb a cluster in DIR (or reuse the
#           one there), start it on 127.0.0.1 and print ONE line to stdout: the SQLAlchemy URL
#           postgresql+psycopg://parsl_repro:<pw>@127.0.0.1:<port>/provenance_test
#           Already running: just prints the URL. Port: $PGPORT if set, else 5433 if free, else a
#           free one picked by the kernel.
#   url     print that URL again
#   status  exit 0 if the cluster accepts connections, 1 if not
#   stop    pg_ctl -m fast -w stop, then wait until the postmaster process is gone; deletes nothing
#
# Layout of DIR: password (0600, the role's password), port, pg/ (0700, owned by the server's user)
# holding data/, server.log and the Unix socket (0700, for the superuser over trust auth; TCP needs
# the scram-sha-256 password). The password appears only in DIR/password and in the URL on stdout.
# As root the server runs as the `postgres` user (initdb and pg_ctl refuse root); otherwise as the
# caller.
set -euo pipefail

ROLE=parsl_repro
DB=provenance_test

die() { echo "postgres.sh: $*" >&2; exit 1; }
note() { echo "postgres.sh: $*" >&2; }

[ $# -eq 2 ] || die "usage: $0 start|stop|url|status DIR"
CMD=$1
[ -n "$2" ] || die "DIR must not be empty"
if [ ! -d "$2" ]; then
  case $CMD in
    start) mkdir -p -- "$2" ;;
    stop) exit 0 ;;
    status) echo "not running"; exit 1 ;;
    *) die "no such directory: $2" ;;
  esac
fi
DIR=$(cd -- "$2" && pwd -P)
case $DIR in *"'"* | *$'\n'* | *'"'* | *\\*) die "DIR must not contain quotes, backslashes or newlines: $DIR" ;; esac
PG=$DIR/pg
DATA=$PG/data
LOG=$PG/server.log

# The caller's PG* variables must not steer our own psql/pg_ctl calls; PGPORT is read as a request.
REQ_PORT=${PGPORT:-}
for v in $(compgen -e); do case $v in PG*) unset "$v" ;; esac; done
cd /   # the server's user may not be able to enter the caller's cwd (e.g. /root)

if [ "$(id -u)" -eq 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

bindir() {  # newest installed major version's bin dir
  local d best="" v bestv=-1
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] || continue
    v=${d#/usr/lib/postgresql/}; v=${v%%/*}; v=${v%%.*}
    case $v in '' | *[!0-9]*) continue ;; esac
    if [ "$v" -gt "$bestv" ]; then best=$d; bestv=$v; fi
  done
  [ -n "$best" ] && echo "$best"
}

sockdir() { if [ -f "$DIR/socket_dir" ]; then cat "$DIR/socket_dir"; else echo "$PG"; fi; }

port_free() {  # could the server bind 127.0.0.1:$1 now? (SO_REUSEADDR as it does: TIME_WAIT is fine)
  python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

free_port() {  # a port the kernel considers free now
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running() { [ -f "$DATA/PG_VERSION" ] && as_pg "$B/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

ready() { [ -f "$DIR/port" ] && "$B/pg_isready" -q -h 127.0.0.1 -p "$(cat "$DIR/port")" -t 2; }

print_url() {
  { [ -s "$DIR/password" ] && [ -s "$DIR/port" ]; } || die "no cluster set up in $DIR (run: $0 start $DIR)"
  echo "postgresql+psycopg://$ROLE:$(cat "$DIR/password")@127.0.0.1:$(cat "$DIR/port")/$DB"
}

postmaster_pid() { if [ -f "$DATA/postmaster.pid" ]; then head -n 1 "$DATA/postmaster.pid"; fi; }

wait_gone() {  # PID 1 reaps late: a stopped postmaster can linger as a zombie for a second or two
  local pid=$1 st
  [ -n "$pid" ] || return 0
  for _ in $(seq 1 600); do
    st=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    [ -z "$st" ] && return 0
    sleep 0.1
  done
  case $st in Z*) note "postmaster $pid has exited but is still an unreaped zombie after 60 s" ;;
              *) die "postmaster $pid is still running after 60 s" ;; esac
}

psql_admin() {  # superuser over the Unix socket; terse errors never echo the statement text
  "$B/psql" -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=terse -h "$(sockdir)" -p "$(cat "$DIR/port")" \
    -U postgres -d postgres
}

ensure_installed() {
  B=$(bindir) && return 0
  [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb) and only root can install it"
  command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is not available"
  note "installing Debian's postgresql"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2 \
    || die "apt-get install postgresql failed"
  B=$(bindir) || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
}

make_traversable() {  # the server's user must reach DIR (pytest's tmp root and mktemp dirs are 0700)
  [ "$(id -u)" -eq 0 ] || return 0
  as_pg test -x "$DIR" && return 0
  local d=$DIR
  while [ "$d" != / ]; do
    if [ -z "$(find "$d" -maxdepth 0 -perm -o+x)" ]; then
      note "chmod o+x $d (so the postgres user can reach the cluster)"
      chmod o+x "$d"
    fi
    d=$(dirname "$d")
  done
  as_pg test -x "$DIR" || die "the postgres user cannot enter $DIR"
}

ensure_sockdir() {  # the short socket dir outside DIR (if any) is removed by stop
  local sd
  sd=$(sockdir)
  [ "$sd" = "$PG" ] && return 0
  mkdir -p "$sd"; chmod 755 "$sd"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$sd"; fi
}

init_cluster() {
  make_traversable
  rm -rf "$PG"; rm -f "$DIR/password" "$DIR/port" "$DIR/socket_dir"
  mkdir -m 700 "$PG"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PG"; fi
  as_pg "$B/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C --no-sync \
    --auth-local=trust --auth-host=trust >"$PG/initdb.log" 2>&1 \
    || { cat "$PG/initdb.log" >&2; die "initdb failed"; }
  # Unix socket paths are limited to 107 bytes: fall back to a short directory if DIR is deep.
  local sd=$PG
  if [ $(( ${#PG} + 16 )) -gt 100 ]; then
    sd=$(mktemp -d "${TMPDIR:-/tmp}/pgsock.XXXXXX")
    echo "$sd" >"$DIR/socket_dir"
    ensure_sockdir
  fi
  as_pg tee "$DATA/pg_hba.conf" >/dev/null <<EOF
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
EOF
  as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<EOF

# --- scripts/postgres.sh: throwaway test cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sd'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

start_server() {  # pick a port, start, retry on a port race unless the caller fixed the port
  local port tries=0
  while :; do
    tries=$((tries + 1))
    if [ -n "$REQ_PORT" ]; then port=$REQ_PORT
    elif [ $tries -eq 1 ] && port_free 5433; then port=5433
    else port=$(free_port)
    fi
    echo "$port" >"$DIR/port"
    if as_pg "$B/pg_ctl" -D "$DATA" -l "$LOG" -w -t 30 -o "-p $port" start >"$PG/pg_ctl.log" 2>&1 9>&-; then
      return 0
    fi
    if [ -z "$REQ_PORT" ] && [ $tries -lt 5 ] && tail -n 20 "$LOG" 2>/dev/null | grep -q 'could not bind\|already in use'; then
      note "port $port was taken, trying another"
      continue
    fi
    cat "$PG/pg_ctl.log" >&2; tail -n 20 "$LOG" >&2 2>/dev/null || true
    die "could not start PostgreSQL in $DATA on 127.0.0.1:$port"
  done
}

wait_ready() {
  for _ in $(seq 1 300); do ready && return 0; sleep 0.1; done
  tail -n 20 "$LOG" >&2 2>/dev/null || true
  die "PostgreSQL did not accept connections on 127.0.0.1:$(cat "$DIR/port") within 30 s"
}

setup_role() {  # idempotent; the password goes only to DIR/password and to psql's stdin
  [ -s "$DIR/password" ] && return 0
  local pw
  pw=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  # log_min_error_statement=panic: a failing statement (with the password) is not written to the log
  psql_admin >/dev/null <<EOF || die "creating role $ROLE / database $DB failed"
SET log_min_error_statement = panic;
SET log_statement = 'none';
SELECT format('CREATE ROLE %I LOGIN CREATEDB', '$ROLE')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') \gexec
ALTER ROLE $ROLE PASSWORD '$pw';
SELECT format('CREATE DATABASE %I OWNER %I', '$DB', '$ROLE')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB') \gexec
EOF
  (umask 077; echo "$pw" >"$DIR/password.tmp")
  chmod 600 "$DIR/password.tmp"; mv "$DIR/password.tmp" "$DIR/password"
}

case $CMD in
  start)
    exec 9>"$DIR/.lock"; flock 9
    ensure_installed
    if running; then
      wait_ready
    else
      [ -f "$DATA/PG_VERSION" ] || init_cluster
      make_traversable
      ensure_sockdir
      start_server
      wait_ready
    fi
    setup_role
    print_url
    ;;
  url)
    print_url
    ;;
  status)
    B=$(bindir) || { echo "not installed"; exit 1; }
    if running && ready; then echo "accepting connections on 127.0.0.1:$(cat "$DIR/port")"; exit 0; fi
    echo "not running"; exit 1
    ;;
  stop)
    exec 9>"$DIR/.lock"; flock 9
    B=$(bindir) || exit 0
    [ -f "$DATA/PG_VERSION" ] || { note "no cluster in $DIR"; exit 0; }
    pid=$(postmaster_pid)
    # decide by the postmaster's own pid, not `pg_ctl status`, which has been seen to answer "not
    # running" for a live server on a loaded machine; SIGINT is the postmaster's fast shutdown
    st=$( [ -n "$pid" ] && ps -o stat= -p "$pid" 2>/dev/null || true)
    if [ -n "$st" ] && [ "${st#Z}" = "$st" ]; then
      as_pg "$B/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >"$PG/pg_ctl.log" 2>&1 \
        || { note "pg_ctl stop failed: $(cat "$PG/pg_ctl.log"); sending SIGINT to $pid"; kill -INT "$pid" 2>/dev/null || true; }
    fi
    wait_gone "$pid"
    if [ -f "$DIR/socket_dir" ]; then rmdir "$(cat "$DIR/socket_dir")" 2>/dev/null || true; fi
    ;;
  *)
    die "unknown command '$CMD' (start|stop|url|status)"
    ;;
esac
