#!/usr/bin/env bash
# A throwaway single-node Grid Engine cell on this machine for the test suite (no mocks).
#
# Usage: bash scripts/gridengine.sh start|stop DIR
#   start  install Debian's gridengine-{master,exec,client} if missing (root only; debconf is
#          preseeded so the packages configure no cell of their own), build a cell "test" under
#          DIR (SGE_ROOT=DIR/root, spool in DIR/spool) on two ports the kernel says are free,
#          start sge_qmaster, add this host as submit and exec host and a queue all.q with
#          2 slots, start sge_execd, wait until all.q@HOST is up, and print ONE line to stdout:
#          the path of DIR/env.sh, which exports SGE_ROOT, SGE_CELL, SGE_QMASTER_PORT and
#          SGE_EXECD_PORT for the clients. A cell already up in DIR is reused; one that is not
#          is built afresh (new ports, empty spool).
#   stop   kill the exec daemon with its jobs, then the qmaster, and wait until both are gone.
#          Deletes nothing.
# Every setting comes from the environment, never /etc/default/gridengine nor Debian's init
# scripts (whose stop kills every cell's daemons), so several cells can run side by side.
# The daemons run as root and listen on all interfaces (Grid Engine has no loopback-only option).
set -euo pipefail

die() { echo "gridengine.sh: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 start|stop DIR"
CMD=$1
mkdir -p -- "$2"
DIR=$(cd -- "$2" && pwd -P)
ENV_FILE=$DIR/env.sh
SGE_LIB=/usr/lib/gridengine
HOST=$(hostname)
export SGE_ROOT=$DIR/root SGE_CELL=test
QMASTER_PID=$DIR/spool/qmaster/qmaster.pid
# execd names its spool subdirectory after what it resolves itself to ("localhost" here, where
# /etc/hosts maps 127.0.0.1 to both), not after $(hostname)
execd_pid() { local f; for f in "$DIR"/spool/execd/*/execd.pid; do echo "$f"; return; done; }

wait_for() {  # wait_for SECONDS COMMAND...: poll every 0.2 s
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
gone() { [ ! -e "$1" ] || ! kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null || [ "$(ps -o stat= -p "$(cat "$1")" 2>/dev/null | cut -c1)" = Z ]; }
# all.q@HOST listed by qstat -f with no state flags (au, E, d...): the exec daemon reports and
# the queue takes jobs (qhost alone can list the host before the queue instance is usable)
queue_up() { qstat -f -q all.q 2>/dev/null | awk -v q="all.q@$HOST" '$1 == q && NF == 5 {ok = 1} END {exit !ok}'; }

case $CMD in
start)
  if ! command -v qsub >/dev/null || [ ! -x $SGE_LIB/sge_qmaster ] || [ ! -x $SGE_LIB/sge_execd ]; then
    # without the preseed, gridengine-common's postinst asks (or configures Debian's own cell)
    debconf-set-selections <<'SEL' 2>/dev/null || true
gridengine-common shared/gridengineconfig boolean false
gridengine-common shared/gridenginecell string default
gridengine-common shared/gridenginemaster string localhost
SEL
    bash "$(dirname "$0")/system-packages.sh" qsub:gridengine-client $SGE_LIB/sge_qmaster:gridengine-master \
      $SGE_LIB/sge_execd:gridengine-exec
  fi
  if [ -f "$ENV_FILE" ]; then
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    if ! gone "$QMASTER_PID" && ! gone "$(execd_pid)" && queue_up; then
      echo "$ENV_FILE"; exit 0   # already running
    fi
    # half up or stopped: stop what is left, then build afresh below
    bash "$0" stop "$DIR" >&2 || true
  fi
  rm -rf -- "$SGE_ROOT" "$DIR/spool" "$ENV_FILE"
  # ports the kernel considers free now, so that Debian's default cell (6444/6445) or another
  # test run's cell is never the one our clients reach
  read -r qmaster_port execd_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s:
    x.bind(("", 0))
print(*(x.getsockname()[1] for x in s))')
  export SGE_QMASTER_PORT=$qmaster_port SGE_EXECD_PORT=$execd_port

  mkdir -p "$SGE_ROOT/$SGE_CELL/common" "$DIR/spool/qmaster" "$DIR/spool/execd" "$DIR/spool/spooldb"
  for sub in bin lib utilbin util; do ln -s "/var/lib/gridengine/$sub" "$SGE_ROOT/$sub"; done
  sed -e 's|^admin_user .*|admin_user              none|' \
      -e "s|^spooling_params .*|spooling_params         $DIR/spool/spooldb|" \
      -e "s|^qmaster_spool_dir .*|qmaster_spool_dir       $DIR/spool/qmaster|" \
      /usr/share/gridengine/default-bootstrap > "$SGE_ROOT/$SGE_CELL/common/bootstrap"
  echo "$HOST" > "$SGE_ROOT/$SGE_CELL/common/act_qmaster"
  # without it 127.0.0.1 reverse-resolves to "localhost", commlib refuses the connection as
  # "local host name error" and every client hangs for ~110 s
  echo "$HOST localhost" > "$SGE_ROOT/$SGE_CELL/common/host_aliases"

  log=$DIR/init.log
  {
    $SGE_LIB/spoolinit berkeleydb libspoolb "$DIR/spool/spooldb" init
    # min_uid/min_gid 0: root submits the test jobs ("your user id 0 is lower than minimum user id")
    sed -e "s|^execd_spool_dir .*|execd_spool_dir        $DIR/spool/execd|" \
        -e 's|^min_uid .*|min_uid                0|' -e 's|^min_gid .*|min_gid                0|' \
        -e 's|^load_report_time .*|load_report_time       00:00:05|' \
        /usr/share/gridengine/default-configuration > "$DIR/global-configuration"
    $SGE_LIB/spooldefaults configuration "$DIR/global-configuration"
    $SGE_LIB/spooldefaults complexes /usr/share/gridengine/util/resources/centry
    $SGE_LIB/spooldefaults usersets /usr/share/gridengine/util/resources/usersets
    $SGE_LIB/spooldefaults managers root
  } >"$log" 2>&1 || die "could not initialise the cell's spool; see $log"
  cat > "$ENV_FILE" <<ENV
export SGE_ROOT=$SGE_ROOT
export SGE_CELL=$SGE_CELL
export SGE_QMASTER_PORT=$SGE_QMASTER_PORT
export SGE_EXECD_PORT=$SGE_EXECD_PORT
ENV

  # the daemons must not keep this script's stdout open: the caller reads it to its end
  (cd "$DIR/spool/qmaster" && $SGE_LIB/sge_qmaster) </dev/null >"$DIR/qmaster.out" 2>&1 \
    || die "sge_qmaster did not start: $(cat "$DIR/qmaster.out"); see $DIR/spool/qmaster/messages"
  wait_for 30 qstat || die "the qmaster never answered; see $DIR/spool/qmaster/messages"
  {
    qconf -ssconf | sed -e 's|^schedule_interval .*|schedule_interval 0:0:1|' \
      -e 's|^flush_submit_sec .*|flush_submit_sec 1|' -e 's|^flush_finish_sec .*|flush_finish_sec 1|' \
      > "$DIR/scheduler.conf"
    qconf -Msconf "$DIR/scheduler.conf"
    qconf -as "$HOST"
    cat > "$DIR/exechost.conf" <<EXEC
hostname              $HOST
load_scaling          NONE
complex_values        NONE
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EXEC
    qconf -Ae "$DIR/exechost.conf"
    cat > "$DIR/all.q.conf" <<QUEUE
qname                 all.q
hostlist              $HOST
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               NONE
rerun                 FALSE
slots                 2
tmpdir                /tmp
shell                 /bin/bash
prolog                NONE
epilog                NONE
shell_start_mode      unix_behavior
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
QUEUE
    qconf -Aq "$DIR/all.q.conf"
  } >>"$log" 2>&1 || die "could not configure the cell: $(tail -3 "$log")"
  (cd "$DIR/spool/execd" && $SGE_LIB/sge_execd) </dev/null >"$DIR/execd.out" 2>&1 \
    || die "sge_execd did not start: $(cat "$DIR/execd.out")"
  wait_for 60 queue_up || die "all.q@$HOST never came up: $(qstat -f 2>&1 | tail -3); see $DIR/spool/execd/*/messages"
  for pid_file in "$QMASTER_PID" "$(execd_pid)"; do   # ours, not a stale one that happened to answer
    gone "$pid_file" && die "the daemon of $pid_file exited after starting; see $(dirname "$pid_file")/messages"
  done
  echo "$ENV_FILE"
  ;;
stop)
  if [ -f "$ENV_FILE" ]; then
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    # -kej, not -ke: the exec daemon takes its running jobs down with it instead of orphaning them
    EXECD_PID=$(execd_pid)
    if ! gone "$EXECD_PID"; then
      qconf -kej "$HOST" >/dev/null 2>&1 || kill "$(cat "$EXECD_PID")" 2>/dev/null || true
      wait_for 30 gone "$EXECD_PID" || kill -9 "$(cat "$EXECD_PID")" 2>/dev/null || true
    fi
    if ! gone "$QMASTER_PID"; then
      qconf -km >/dev/null 2>&1 || kill "$(cat "$QMASTER_PID")" 2>/dev/null || true
      wait_for 30 gone "$QMASTER_PID" || kill -9 "$(cat "$QMASTER_PID")" 2>/dev/null || true
    fi
    wait_for 10 gone "$EXECD_PID" || die "sge_execd (pid $(cat "$EXECD_PID")) is still running"
    wait_for 10 gone "$QMASTER_PID" || die "sge_qmaster (pid $(cat "$QMASTER_PID")) is still running"
  fi
  ;;
*) die "usage: $0 start|stop DIR" ;;
esac
