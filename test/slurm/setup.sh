#!/usr/bin/env bash
# Starts a one-node Slurm cluster on loopback for the Slurm backend's tests
# (Debian 12, Slurm 22.05, as root): munged on a private socket, slurmctld,
# slurmd and slurmrestd with JWT authentication, every file under $STATE.
# Nothing of the system's own Slurm or munge is used or touched (no
# /etc/slurm, no system munge socket), so it runs beside a real install.
# Safe to run again: what already answers is left alone. The pid of each
# daemon started here is recorded, and test/slurm/teardown.sh stops only
# those.
#
# Afterwards $STATE/env holds what a client needs (shell syntax):
#   SLURM_CONF, OCPS_SLURM_SOCKET (slurmrestd's unix socket),
#   OCPS_SLURM_URL (its TCP address), OCPS_SLURM_JWT_KEY, OCPS_SLURM_NODE
#   (the one node's name).
#
# A second cluster beside the first needs its own state dir and ports:
#   OCPS_SLURM_STATE=/tmp/other OCPS_SLURM_PORT_BASE=26817 bash test/slurm/setup.sh
# (slurmctld on the base, slurmd on base+1, slurmrestd on base+3). With
# OCPS_SLURM_STARTED=FILE, the names of the daemons this run started (not
# those it found running) are written to FILE, one a line, for
# `test/slurm/teardown.sh --started FILE`. OCPS_SLURM_EXTRA_CONF, lines
# appended to slurm.conf (a later line wins), tunes a cluster for one use
# (bench/slurm.sh raises MaxJobCount).
set -euo pipefail

STATE=${OCPS_SLURM_STATE:-/tmp/ocps-slurm}
PORT_BASE=${OCPS_SLURM_PORT_BASE:-16817}
CTLD_PORT=${OCPS_SLURM_CTLD_PORT:-$PORT_BASE}
SLURMD_PORT=${OCPS_SLURM_SLURMD_PORT:-$((PORT_BASE + 1))}
REST_PORT=${OCPS_SLURM_REST_PORT:-$((PORT_BASE + 3))}
STARTED=${OCPS_SLURM_STARTED:-/dev/null}
# A port among the kernel's ephemeral ones may be held by any client's
# connection at the moment a daemon binds it.
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
for p in "$CTLD_PORT" "$SLURMD_PORT" "$REST_PORT"; do
  if [ "$p" -ge "$eph_lo" ] && [ "$p" -le "$eph_hi" ]; then
    echo "setup: warning: port $p is among the ephemeral ports ($eph_lo-$eph_hi): its bind may fail" >&2
  fi
done
EXTRA_CONF=${OCPS_SLURM_EXTRA_CONF:-}
# slurmrestd refuses to run as root; any unprivileged uid will do, since
# every request carries its own JWT.
REST_USER=${OCPS_SLURM_REST_USER:-nobody}

step() { echo "setup: $*"; }
die() { echo "setup: FAILED: $*" >&2; exit 1; }
trap 'echo "setup: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

# wait_for SECONDS CMD...: polls CMD every half second.
wait_for() {
  local n=$(($1 * 2)); shift
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}
# alive NAME COMM: the daemon whose pid file is $STATE/NAME.pid still runs.
alive() {
  local pid
  pid=$(cat "$STATE/$1.pid" 2>/dev/null) || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# started NAME: this run started NAME (see OCPS_SLURM_STARTED).
started() { echo "$1" >>"$STARTED"; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
: >"$STARTED"
HOST=$(hostname -s)
# The node's name is also the name of slurmd's cgroups (slurm_<node>/, as
# Debian builds Slurm with --enable-multiple-slurmd), so a second cluster
# on this host gets a node name of its own: two slurmds sharing
# slurm_<host>/uid_0/job_1 would remove each other's job groups.
if [ "$CTLD_PORT" = 16817 ]; then NODE=$HOST; else NODE=$HOST-$CTLD_PORT; fi
NODE=${OCPS_SLURM_NODE:-$NODE}

step "packages"
# slurm-wlm is slurmctld, slurmd and the client commands; auth/jwt is in a
# package of its own that slurm-wlm only recommends (as scripts/install-deps.sh
# installs it, without recommends).
missing=()
for p in slurm-wlm slurm-wlm-jwt-plugin slurmrestd munge curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  apt-get update -qq || die "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]}"
fi
# The Debian packages enable their own daemons on /etc/slurm; nothing of
# ours depends on them, and they cannot start without a slurm.conf anyway.

# The state dir is root's (SlurmUser=root); slurmrestd (nobody) needs to
# reach only its own socket dir and slurm.conf.
# A state dir another account made (in /tmp, say) would hand it our keys.
mkdir -p "$STATE"
[ "$(stat -c %u "$STATE")" = 0 ] || die "$STATE is not root's"
chmod 0755 "$STATE"
mkdir -p "$STATE"/{munge,ctld,spool,log,rest}
chown munge:munge "$STATE/munge"
# munged insists that everyone may reach its socket dir.
chmod 0755 "$STATE/munge"
chown "$REST_USER" "$STATE/rest"

step "keys"
# A munge key of our own: the system's may be absent or shared.
if [ ! -s "$STATE/munge.key" ]; then
  dd if=/dev/urandom of="$STATE/munge.key" bs=1024 count=1 status=none
fi
chown munge:munge "$STATE/munge.key"
chmod 0400 "$STATE/munge.key"
# The JWT key: 32 random bytes, read by slurmctld (as SlurmUser, root) and
# by whoever signs tokens (the proxy, as root).
if [ ! -s "$STATE/jwt_hs256.key" ]; then
  (umask 077; dd if=/dev/urandom of="$STATE/jwt_hs256.key" bs=32 count=1 status=none)
fi
chmod 0600 "$STATE/jwt_hs256.key"

step "config"
cat >"$STATE/slurm.conf" <<CONF
# Written by test/slurm/setup.sh: a one-node cluster on loopback.
ClusterName=ocps
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
CommunicationParameters=NoInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$STATE/jwt_hs256.key
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.daemon.pid
SlurmdPidFile=$STATE/slurmd.daemon.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=100
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
KillWait=5
OverTimeLimit=0
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$NODE NodeHostname=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2)) State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
$EXTRA_CONF
CONF
cat >"$STATE/cgroup.conf" <<CONF
CgroupPlugin=autodetect
ConstrainCores=yes
ConstrainRAMSpace=yes
ConstrainSwapSpace=no
CONF
chmod 0644 "$STATE/slurm.conf" "$STATE/cgroup.conf"
export SLURM_CONF=$STATE/slurm.conf

step "munged"
munge_up() { munge -n --socket="$STATE/munge/munge.socket" | unmunge --socket="$STATE/munge/munge.socket"; }
if alive munged munged && munge_up >/dev/null 2>&1; then
  step "munged already runs, pid $(cat "$STATE/munged.pid")"
else
  setsid runuser -u munge -- munged -F --socket="$STATE/munge/munge.socket" \
    --key-file="$STATE/munge.key" --pid-file="$STATE/munge/munged.pid" \
    --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed" \
    >"$STATE/log/munged.out" 2>&1 </dev/null &
  wait_for 10 munge_up || die "munged did not answer, see $STATE/munge/munged.log"
  # runuser forks: record munged's own pid, which it wrote itself.
  cp "$STATE/munge/munged.pid" "$STATE/munged.pid"
  started munged
  step "munged started, pid $(cat "$STATE/munged.pid")"
fi

step "slurmctld"
ctld_up() { scontrol ping | grep -q 'is UP'; }
if alive slurmctld slurmctld && ctld_up; then
  step "slurmctld already runs, pid $(cat "$STATE/slurmctld.pid")"
else
  setsid slurmctld -D -i -f "$STATE/slurm.conf" >"$STATE/log/slurmctld.out" 2>&1 </dev/null &
  echo $! >"$STATE/slurmctld.pid"
  started slurmctld
  wait_for 30 ctld_up || die "slurmctld did not answer, see $STATE/log/slurmctld.log"
  step "slurmctld started, pid $(cat "$STATE/slurmctld.pid")"
fi

step "slurmd"
node_up() { sinfo -h -N -o %t | grep -Eq '^(idle|mix|alloc)'; }
if alive slurmd slurmd && node_up; then
  step "slurmd already runs, pid $(cat "$STATE/slurmd.pid")"
else
  setsid slurmd -D -N "$NODE" -f "$STATE/slurm.conf" >"$STATE/log/slurmd.out" 2>&1 </dev/null &
  echo $! >"$STATE/slurmd.pid"
  started slurmd
  wait_for 30 node_up || die "node not idle, see $STATE/log/slurmd.log"
  step "slurmd started, pid $(cat "$STATE/slurmd.pid")"
fi

step "slurmrestd"
token() { scontrol token username=root lifespan=60 | sed -n 's/^SLURM_JWT=//p'; }
rest_up() {
  curl -sf --unix-socket "$STATE/rest/slurmrestd.socket" \
    -H "X-SLURM-USER-NAME: root" -H "X-SLURM-USER-TOKEN: $(token)" \
    http://localhost/slurm/v0.0.38/ping
}
if alive slurmrestd slurmrestd && rest_up >/dev/null 2>&1; then
  step "slurmrestd already runs, pid $(cat "$STATE/slurmrestd.pid")"
else
  rm -f "$STATE/rest/slurmrestd.socket"
  # SLURM_JWT=daemon: without it slurmrestd refuses every token. It drops
  # to REST_USER itself (-u); the unix socket is made as that user.
  SLURM_JWT=daemon setsid slurmrestd -f "$STATE/slurm.conf" -u "$REST_USER" \
    -s openapi/v0.0.38 -a rest_auth/jwt \
    "unix:$STATE/rest/slurmrestd.socket" "127.0.0.1:$REST_PORT" \
    >"$STATE/log/slurmrestd.log" 2>&1 </dev/null &
  echo $! >"$STATE/slurmrestd.pid"
  started slurmrestd
  wait_for 20 rest_up || die "slurmrestd did not answer, see $STATE/log/slurmrestd.log"
  step "slurmrestd started, pid $(cat "$STATE/slurmrestd.pid")"
fi

cat >"$STATE/env" <<ENV
SLURM_CONF=$STATE/slurm.conf
OCPS_SLURM_SOCKET=$STATE/rest/slurmrestd.socket
OCPS_SLURM_URL=http://127.0.0.1:$REST_PORT
OCPS_SLURM_JWT_KEY=$STATE/jwt_hs256.key
OCPS_SLURM_NODE=$NODE
ENV
step "ready: . $STATE/env"
