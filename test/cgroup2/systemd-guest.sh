#!/bin/sh
# The systemd guest's test runner (run.sh installs it as
# /usr/local/bin/ocps-uml-test, started by ocps-uml-test.service once the
# system is up): mounts the trees named on the kernel command line, runs
# /out/guest.sh, and powers off.
for a in $(cat /proc/cmdline); do
  case $a in ocps_src=* | ocps_build=* | ocps_out=*) export "$a" ;; esac
done
mkdir -p /src /build /out
mount -t hostfs -o "rw,$ocps_out" none /out
mount -t hostfs -o "ro,$ocps_src" none /src
mount -t hostfs -o "rw,$ocps_build" none /build
sh /out/guest.sh >/out/guest.out 2>&1
echo $? >/out/guest.rc
journalctl -b --no-pager -o short-monotonic >/out/journal.txt 2>&1
sync
systemctl poweroff -ff
