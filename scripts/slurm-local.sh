#!/usr/bin/env bash
# A one-machine Slurm cluster for alinea's tests, from Debian's packages (slurm-wlm, munge):
#   scripts/slurm-local.sh install   # apt-get install the packages (root)
#   scripts/slurm-local.sh up        # munge key, slurm.conf for this host, daemons started and waited for
#   scripts/slurm-local.sh down      # stop the daemons
# Idempotent: `up` on a running cluster only checks it. Accounting is off (no slurmdbd): alinea must not need it.
# Daemons talk over 127.0.0.1 only (no name lookup). Memory limits are enforced by job accounting
# (JobAcctGatherParams=OverMemoryKill, no cgroups needed), time limits by slurmctld.
set -euo pipefail

state=/var/lib/alinea-slurm
conf=/etc/slurm/slurm.conf

need() {
  command -v "$1" >/dev/null || { echo "slurm-local: $1 not found; run '$0 install' (needs root and Debian's slurm-wlm, munge)" >&2; exit 2; }
}

install() {
  # Package lists may be missing or stale on a fresh machine: refresh them once if the first try fails.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null; }
}

write_conf() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  mkdir -p "$state"/{ctld,d} /var/log/slurm
  cat > "$conf" <<CONF
ClusterName=alinea-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
KillWait=2
OverTimeLimit=0
InactiveLimit=0
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
}

up() {
  need slurmctld; need slurmd; need munged; need sinfo
  if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then
    return 0
  fi
  [ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none; }
  chown -R munge:munge /etc/munge 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  pgrep -x munged >/dev/null || runuser -u munge -- munged 2>/dev/null || munged --force
  write_conf
  pgrep -x slurmctld >/dev/null || slurmctld -i
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then
      return 0
    fi
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  echo "slurm-local: the node did not become idle; see /var/log/slurm/" >&2
  sinfo >&2 || true
  exit 1
}

down() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 install|up|down" >&2; exit 2 ;;
esac
