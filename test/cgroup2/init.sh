#!/bin/sh
# The guest's first process (run.sh boots User-Mode Linux with it): mounts
# the kernel's filesystems, the cgroup v2 hierarchy alone (cgroup_no_v1=all)
# with the memory, cpu and pids controllers given to the root's children as
# a systemd host gives them, the source tree (read-only) and the build tree
# from the host by hostfs, and the run's directory where results go back.
# Then runs /out/guest.sh (which run.sh writes) and halts: linux.uml exits
# 0 whatever happened, so everything comes back through /out.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t hostfs -o "rw,$ocps_out" none /out
mount -t hostfs -o "ro,$ocps_src" none /src
mount -t hostfs -o "rw,$ocps_build" none /build
ip link set lo up
hostname ocps-uml
echo "+cpu +memory +pids" >/sys/fs/cgroup/cgroup.subtree_control
sh /out/guest.sh >/out/guest.out 2>&1
echo $? >/out/guest.rc
sync
poweroff -f
