#!/usr/bin/env bash
# A local stand-in for AWS EC2 for the test suite: moto's server mode, a real HTTP implementation
# of the EC2 API on loopback (instances are records in its memory; nothing boots).
#
# Usage: bash scripts/moto.sh start|stop DIR
#   start  start moto_server from this repository's .venv (installed by pip with the test extra;
#          this script installs nothing) on 127.0.0.1 and a port the kernel says is free, wait
#          until GET /moto-api/ answers, and print ONE line to stdout: the endpoint URL, for
#          AWS_ENDPOINT_URL in the clients' environment. Already running: just prints the URL.
#   stop   stop the server started from DIR and wait until it is gone. Deletes nothing.
# DIR holds moto.pid, moto.port and moto.log.
set -euo pipefail

die() { echo "moto.sh: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 start|stop DIR"
CMD=$1
mkdir -p -- "$2"
DIR=$(cd -- "$2" && pwd -P)
VENV=$(cd -- "$(dirname "$0")/.." && pwd -P)/.venv
PIDFILE=$DIR/moto.pid

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
answers() { "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" >/dev/null 2>&1; }
url() { echo "http://127.0.0.1:$(cat "$DIR/moto.port")"; }

case $CMD in
start)
  [ -x "$VENV/bin/moto_server" ] || die "no $VENV/bin/moto_server: run .venv/bin/python -m pip install -e '.[test]'"
  if running && answers "$(url)/moto-api/"; then url; exit 0; fi
  port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "$port" > "$DIR/moto.port"
  # its own session, so that a signal meant for the caller's process group does not reach it
  setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$DIR/moto.log" 2>&1 &
  echo $! > "$PIDFILE"
  deadline=$(( $(date +%s) + 60 ))
  until answers "$(url)/moto-api/"; do
    running || die "moto_server exited: $(tail -5 "$DIR/moto.log")"
    [ "$(date +%s)" -lt "$deadline" ] || die "moto_server did not answer within 60 s; see $DIR/moto.log"
    sleep 0.2
  done
  url
  ;;
stop)
  if running; then
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  ;;
*) die "usage: $0 start|stop DIR" ;;
esac
