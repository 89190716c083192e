#!/usr/bin/env bash
# A one-machine Slurm cluster for alinea's tests, from Debian's packages (slurm-wlm, munge):
#   scripts/slurm-local.sh install   # apt-get install the packages (root)
#   scripts/slurm-local.sh up        # munge key, slurm.conf for this host, daemons started and waited for
#   scripts/slurm-local.sh down      # stop the daemons
#   scripts/slurm-local.sh up-two    # a second cluster of two compute nodes, n1 and n2, each a network and host-name
#                                    # namespace of its own (veth pairs on a bridge, 10.77.0.0/24), its slurmctld on
#                                    # 10.77.0.1:6827 of this host; clients reach it with SLURM_CONF=/etc/slurm/two-nodes.conf
#   scripts/slurm-local.sh down-two  # stop it and remove its namespaces and bridge
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
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge iproute2 >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge iproute2 >/dev/null; }
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
  alive "$state/slurmctld.pid" || slurmctld -i
  alive "$state/slurmd.pid" || slurmd
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

# Whether the daemon whose pid file this is runs (both clusters' daemons share process names).
alive() {
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop() {
  if alive "$1"; then kill "$(cat "$1")" 2>/dev/null || true; fi
}

down() {
  stop "$state/slurmd.pid"
  stop "$state/slurmctld.pid"
}

# The two-node cluster. Each node is a network namespace (its own address, so the controller reaches two slurmd on
# one port, as on real hosts) and a host-name namespace (so `hostname` and SLURMD_NODENAME say n1 or n2 in a job).
# The filesystem stays shared, as a cluster's shared store would be.
two=/var/lib/alinea-slurm-two
two_conf=/etc/slurm/two-nodes.conf
bridge=alinea-br0
net=10.77.0

net_up() {
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$net.1/24" dev "$bridge"
    ip link set "$bridge" up
  fi
  for i in 1 2; do
    ip netns list | grep -qw "alinea-n$i" && continue
    ip netns add "alinea-n$i"
    ip link add "alinea-v$i" type veth peer name eth0 netns "alinea-n$i"
    ip link set "alinea-v$i" master "$bridge" up
    ip -n "alinea-n$i" addr add "$net.1$i/24" dev eth0
    ip -n "alinea-n$i" link set eth0 up
    ip -n "alinea-n$i" link set lo up
  done
}

# Node names resolve, as a cluster's DNS makes them: distributed runtimes (gloo, NCCL) bind to the address their
# host name resolves to, and fall back to 127.0.0.1, which the other node cannot reach.
hosts_up() {
  for i in 1 2; do
    grep -q "^$net.1$i n$i\$" /etc/hosts || echo "$net.1$i n$i" >> /etc/hosts
  done
}

write_two_conf() {
  local host mem
  host=$(hostname -s)
  # Each node gets one CPU, so that two one-CPU jobs at once must land on two nodes.
  mem=$(( ($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048) / 2 ))
  mkdir -p "$two"/ctld /var/log/slurm
  sed -e "s|^ClusterName=.*|ClusterName=alinea-two|" \
      -e "s|^SlurmctldHost=.*|SlurmctldHost=$host($net.1)\nSlurmctldPort=6827\nSlurmdPort=6828|" \
      -e "s|^StateSaveLocation=.*|StateSaveLocation=$two/ctld|" \
      -e "s|^SlurmdSpoolDir=.*|SlurmdSpoolDir=$two/%n|" \
      -e "s|^SlurmctldPidFile=.*|SlurmctldPidFile=$two/slurmctld.pid|" \
      -e "s|^SlurmdPidFile=.*|SlurmdPidFile=$two/slurmd-%n.pid|" \
      -e "s|^SlurmctldLogFile=.*|SlurmctldLogFile=/var/log/slurm/slurmctld-two.log|" \
      -e "s|^SlurmdLogFile=.*|SlurmdLogFile=/var/log/slurm/slurmd-%n.log|" \
      -e "/^NodeName=/d" -e "/^PartitionName=/d" "$conf" > "$two_conf"
  cat >> "$two_conf" <<CONF
SlurmdParameters=config_overrides
NodeName=n1 NodeAddr=$net.11 CPUs=1 RealMemory=$mem State=UNKNOWN
NodeName=n2 NodeAddr=$net.12 CPUs=1 RealMemory=$mem State=UNKNOWN
PartitionName=two Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
CONF
}

two_idle() {
  [ "$(SLURM_CONF=$two_conf sinfo -h -N -o '%N %T' 2>/dev/null | grep -cE ' (idle|mix|alloc)')" = 2 ]
}

up_two() {
  up # the munge daemon, and the base slurm.conf the two-node one is derived from
  hosts_up
  two_idle && return 0
  net_up
  write_two_conf
  alive "$two/slurmctld.pid" || slurmctld -f "$two_conf" -i
  for i in 1 2; do
    mkdir -p "$two/n$i"
    # nsenter, not `ip netns exec`: that one remounts /sys, hiding the cgroup filesystem slurmd initializes from.
    alive "$two/slurmd-n$i.pid" ||
      nsenter --net="/run/netns/alinea-n$i" unshare --uts sh -c "hostname n$i && exec slurmd -f $two_conf"
  done
  for _ in $(seq 1 60); do
    two_idle && return 0
    SLURM_CONF=$two_conf scontrol update nodename=n1,n2 state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  echo "slurm-local: the two nodes did not become idle; see /var/log/slurm/slurmd-n1.log, slurmd-n2.log, slurmctld-two.log" >&2
  SLURM_CONF=$two_conf sinfo -N >&2 || true
  exit 1
}

down_two() {
  stop "$two/slurmd-n1.pid"
  stop "$two/slurmd-n2.pid"
  stop "$two/slurmctld.pid"
  for i in 1 2; do
    ip netns del "alinea-n$i" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  # /etc/hosts may be a bind mount (containers): rewrite it in place rather than replacing the file.
  grep -v "^$net\.1[12] n[12]\$" /etc/hosts > /etc/hosts.alinea || true
  cat /etc/hosts.alinea > /etc/hosts && rm -f /etc/hosts.alinea
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  up-two) up_two ;;
  down-two) down_two ;;
  *) echo "usage: $0 install|up|down|up-two|down-two" >&2; exit 2 ;;
esac
