#!/usr/bin/env bash
# A throwaway OpenSSH server on loopback for the channel tests (no mocks).
#
# Usage: bash scripts/sshd.sh start|stop DIR
#   start  install Debian's openssh-server if missing (root only; services are kept from starting
#          during the install, so no system sshd appears on port 22), make in DIR an ed25519 host
#          key and an ed25519 client key, create (once) the local user `parslrepro` with a home
#          directory and a random password (made once per machine in /var/lib/parslrepro-sshd,
#          copied to DIR/password, 0600), authorize the client key for root
#          and for that user, write DIR/known_hosts ("[127.0.0.1]:PORT <host key>") and
#          DIR/sshd_config, start `/usr/sbin/sshd -D -e` on 127.0.0.1 at a port the kernel
#          considers free, wait until it answers with its SSH-2.0 banner, and print ONE line to
#          stdout: the path of DIR/sshd.json, which holds
#            {port, host, root_key, user, user_key, password_file, known_hosts}
#          Already running: just prints that path.
#   stop   SIGTERM the server, then wait until it is gone; deletes nothing.
# Logins: root by key only (PermitRootLogin prohibit-password); parslrepro by key or password.
# With SSHD_KEYBOARD_INTERACTIVE=1 in start's environment, the password is asked for through PAM
# by keyboard-interactive instead (the way sites ask for one-time codes), not by the password method.
# The password is written only to /var/lib/parslrepro-sshd/password, DIR/password and chpasswd's
# stdin, never printed.
# The user's key is authorized in ~parslrepro/.ssh/authorized_keys.d/<port> (the user cannot read
# DIR: pytest's directories are 0700), removed again by stop.
set -euo pipefail

TEST_USER=parslrepro
USER_STATE=/var/lib/parslrepro-sshd   # the test user's password, shared by every server here
SSHD=/usr/sbin/sshd

die() { echo "sshd.sh: $*" >&2; exit 1; }
note() { echo "sshd.sh: $*" >&2; }

[ $# -eq 2 ] || die "usage: $0 start|stop DIR"
CMD=$1
[ -n "$2" ] || die "DIR must not be empty"
if [ ! -d "$2" ]; then
  case $CMD in
    start) mkdir -p -- "$2" ;;
    stop) exit 0 ;;
    *) die "usage: $0 start|stop DIR" ;;
  esac
fi
DIR=$(cd -- "$2" && pwd -P)
case $DIR in *[[:space:]\"\'\\]*) die "DIR must not contain spaces, quotes or backslashes: $DIR" ;; esac
CONF=$DIR/sshd_config
PIDFILE=$DIR/sshd.pid
LOG=$DIR/sshd.log
INFO=$DIR/sshd.json

alive() {  # the pid in $PIDFILE is a live process (a zombie lingers 1-2 s after exit: not alive)
  local pid st
  [ -s "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  st=$(ps -o stat= -p "$pid" 2>/dev/null || true)
  [ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

banner() {  # does 127.0.0.1:$1 answer with an SSH-2.0 banner?
  python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
    s.settimeout(2)
    sys.exit(0 if s.makefile("rb").readline().startswith(b"SSH-2.0") else 1)
EOF
}

free_port() {  # a port the kernel considers free now
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

user_keys_dir() { echo "$(getent passwd "$TEST_USER" | cut -d: -f6)/.ssh/authorized_keys.d"; }

ensure_installed() {
  [ -x "$SSHD" ] && return 0
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e "$policy" ] && [ "$(id -u)" -eq 0 ]; then  # keep the package from starting sshd on :22
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; made_policy=1
  fi
  local rc=0
  PATH=/usr/sbin:$PATH bash "$(dirname "$0")/system-packages.sh" sshd:openssh-server || rc=$?
  if [ -n "$made_policy" ]; then rm -f "$policy"; fi
  [ $rc -eq 0 ] && [ -x "$SSHD" ] || die "could not install openssh-server"
}

ensure_keys() {
  [ -s "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C parslrepro-test-host -f "$DIR/host_ed25519"
  [ -s "$DIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C parslrepro-test-client -f "$DIR/client_ed25519"
  chmod 600 "$DIR/host_ed25519" "$DIR/client_ed25519"
  cp "$DIR/client_ed25519.pub" "$DIR/authorized_keys"; chmod 600 "$DIR/authorized_keys"
}

ensure_user() {  # the user and its password, once per machine; DIR/password is a copy
  [ "$(id -u)" -eq 0 ] || die "only root can create the test user $TEST_USER"
  # One user serves every server on this machine (another test module's, another run's), so its
  # password lives in one place: a DIR of its own would change it under the others' feet.
  install -d -m 700 "$USER_STATE"
  exec 8>"$USER_STATE/.lock"; flock 8
  if ! id "$TEST_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$TEST_USER" || die "could not create user $TEST_USER"
  fi
  local home
  home=$(getent passwd "$TEST_USER" | cut -d: -f6)
  [ -d "$home" ] || { mkdir -p "$home"; chown "$TEST_USER:" "$home"; chmod 755 "$home"; }
  if [ ! -s "$USER_STATE/password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$USER_STATE/password.tmp")
    mv "$USER_STATE/password.tmp" "$USER_STATE/password"
  fi
  printf '%s:%s\n' "$TEST_USER" "$(cat "$USER_STATE/password")" | chpasswd || die "chpasswd failed for $TEST_USER"
  exec 8>&-
  (umask 077; cp "$USER_STATE/password" "$DIR/password.tmp")
  chmod 600 "$DIR/password.tmp"; mv "$DIR/password.tmp" "$DIR/password"
}

authorize_user_key() {  # $1: port
  local keys home
  keys=$(user_keys_dir)
  home=$(getent passwd "$TEST_USER" | cut -d: -f6)
  install -d -m 700 -o "$TEST_USER" -g "$(id -gn "$TEST_USER")" "$home/.ssh" "$keys"
  install -m 600 -o "$TEST_USER" -g "$(id -gn "$TEST_USER")" "$DIR/client_ed25519.pub" "$keys/$1"
}

write_config() {  # $1: port
  local password_auth=yes kbd_auth=no
  if [ "${SSHD_KEYBOARD_INTERACTIVE:-0}" = 1 ]; then
    password_auth=no kbd_auth=yes   # questions through PAM, as sites with one-time codes ask them
  fi
  cat >"$CONF" <<EOF
Port $1
ListenAddress 127.0.0.1
HostKey $DIR/host_ed25519
PidFile $PIDFILE
AuthorizedKeysFile $DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication $password_auth
PermitEmptyPasswords no
KbdInteractiveAuthentication $kbd_auth
UsePAM $kbd_auth
StrictModes no
Subsystem sftp internal-sftp
Match User $TEST_USER
    AuthorizedKeysFile $(user_keys_dir)/$1
EOF
  echo "[127.0.0.1]:$1 $(cut -d' ' -f1-2 "$DIR/host_ed25519.pub")" >"$DIR/known_hosts"
  cat >"$INFO" <<EOF
{"port": $1, "host": "127.0.0.1", "root_key": "$DIR/client_ed25519", "user": "$TEST_USER",
 "user_key": "$DIR/client_ed25519", "password_file": "$DIR/password", "known_hosts": "$DIR/known_hosts"}
EOF
}

start_server() {  # pick a port, start, retry on a port race
  local port tries pid
  mkdir -p /run/sshd && chmod 755 /run/sshd   # privilege-separation directory, required
  for tries in 1 2 3 4 5; do
    port=$(free_port)
    authorize_user_key "$port"
    write_config "$port"
    "$SSHD" -t -f "$CONF" 2>"$LOG" || { cat "$LOG" >&2; die "sshd rejected $CONF"; }
    rm -f "$PIDFILE"
    # its own session, all fds away from ours: the caller reads our stdout to its end
    setsid "$SSHD" -D -e -f "$CONF" </dev/null >>"$LOG" 2>&1 &
    pid=$!
    echo "$pid" >"$PIDFILE"
    for _ in $(seq 1 100); do
      banner "$port" && { echo "$port" >"$DIR/port"; return 0; }
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
    elif grep -q 'Address already in use' "$LOG"; then
      note "port $port was taken (try $tries), trying another"
      continue
    fi
    tail -n 20 "$LOG" >&2
    die "sshd did not answer on 127.0.0.1:$port; see $LOG"
  done
  die "no free port found for sshd; see $LOG"
}

case $CMD in
  start)
    exec 9>"$DIR/.lock"; flock 9
    ensure_installed
    if alive && [ -s "$DIR/port" ] && banner "$(cat "$DIR/port")"; then
      echo "$INFO"; exit 0
    fi
    ensure_keys
    ensure_user
    start_server
    echo "$INFO"
    ;;
  stop)
    exec 9>"$DIR/.lock"; flock 9
    if alive; then
      pid=$(cat "$PIDFILE")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 300); do alive || break; sleep 0.1; done
      if alive; then note "sshd $pid ignored SIGTERM for 30 s; sending SIGKILL"; kill -9 "$pid" 2>/dev/null || true; fi
    fi
    if [ -s "$DIR/port" ] && id "$TEST_USER" >/dev/null 2>&1; then rm -f "$(user_keys_dir)/$(cat "$DIR/port")"; fi
    ;;
  *)
    die "usage: $0 start|stop DIR"
    ;;
esac
