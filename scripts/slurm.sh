#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on this machine for the test suite (no mocks).
#
# Usage: bash scripts/slurm.sh start|stop DIR
#   start  install Debian's slurm-wlm and munge if missing (root only), start munged if no munge
#          daemon answers, write DIR/slurm.conf (this host as the one node, partition "debug",
#          accounting off, so sacct says "accounting storage is disabled" and squeue is the way
#          to ask about jobs), start slurmctld and slurmd, wait until the node is idle, and print
#          ONE line to stdout: the path of slurm.conf, for SLURM_CONF in the clients' environment.
#   stop   scontrol shutdown, then wait until both daemons are gone; stops munged if start
#          started it. Deletes nothing.
# The daemons run as root (the node runs jobs as their submitter); state, spool, pid and log files
# all live in DIR.
set -euo pipefail

die() { echo "slurm.sh: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 start|stop DIR"
CMD=$1
mkdir -p -- "$2"
DIR=$(cd -- "$2" && pwd -P)
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

wait_for() {  # wait_for SECONDS COMMAND...: poll every 0.2 s
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
gone() { [ ! -e "$1" ] || ! kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null || [ "$(ps -o stat= -p "$(cat "$1")" 2>/dev/null | cut -c1)" = Z ]; }
node_idle() { [ "$(sinfo -h -o %T 2>/dev/null | head -1)" = idle ]; }

case $CMD in
start)
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    bash "$(dirname "$0")/system-packages.sh" slurmctld:slurm-wlm slurmd:slurm-wlm munged:munge
  fi
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [ ! -s /etc/munge/munge.key ]; then
      mungekey --create >/dev/null 2>&1 || /usr/sbin/create-munge-key -f >/dev/null 2>&1
      chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key
    fi
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$DIR/started-munged"
    wait_for 20 bash -c 'munge -n | unmunge' || die "munged did not start"
  fi
  if [ -f "$DIR/slurmctld.pid" ] && ! gone "$DIR/slurmctld.pid" && node_idle; then
    echo "$CONF"; exit 0   # already running
  fi
  mkdir -p "$DIR/ctld" "$DIR/d"
  node=$(slurmd -C | head -1)   # NodeName=<host> CPUs=... RealMemory=...
  host=$(hostname -s)
  # ports the kernel considers free now, so that another Slurm on this machine (Debian's default
  # ports 6817/6818, or another test run's cluster) is never the one our clients reach
  read -r ctld_port slurmd_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s:
    x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
  cat > "$CONF" <<CONF
ClusterName=parslrepro
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
MinJobAge=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
${node%% Boards=*} $(echo "$node" | grep -o 'RealMemory=[0-9]*') State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  slurmctld || die "slurmctld did not start; see $DIR/slurmctld.log"
  slurmd || die "slurmd did not start; see $DIR/slurmd.log"
  wait_for 30 node_idle || die "the node never became idle: $(sinfo 2>&1 | tail -2); see $DIR/slurmctld.log"
  for daemon in slurmctld slurmd; do   # ours, not a stale one that happened to answer
    gone "$DIR/$daemon.pid" && die "$daemon exited after starting; see $DIR/$daemon.log"
  done
  echo "$CONF"
  ;;
stop)
  if [ -f "$CONF" ]; then
    scontrol shutdown >/dev/null 2>&1 || true
    wait_for 30 gone "$DIR/slurmctld.pid" || kill -9 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null || true
    wait_for 30 gone "$DIR/slurmd.pid" || kill -9 "$(cat "$DIR/slurmd.pid")" 2>/dev/null || true
  fi
  if [ -f "$DIR/started-munged" ]; then
    kill "$(cat /run/munge/munged.pid 2>/dev/null)" 2>/dev/null || true
    rm -f "$DIR/started-munged"
  fi
  ;;
*) die "usage: $0 start|stop DIR" ;;
esac
