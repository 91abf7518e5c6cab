#!/usr/bin/env bash
# The systemd guest's root filesystem for run.sh (OCPS_UML_ROOTFS=systemd):
# a minimal Debian 12 with systemd 252 and python3, debootstrap'd from the
# apt mirror this host uses, cached (the key is the mirror, the suite, this
# script and systemd-guest.sh; trees unused for a day are removed). The
# libraries the given binaries need and Debian's tree lacks are copied in
# from the host at every run. The tests write under /run only, so runs may
# share a tree (systemd's own state aside).
#
#   systemd-rootfs.sh CACHE_DIR BINARY...   prints the root directory's path
set -euo pipefail

cache=$1
shift
suite=bookworm
mirror=$(sed -n 's/^URIs: *//p; s/^deb \([^ ]*\) bookworm main.*/\1/p' \
  /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || {
  echo "systemd-rootfs: debootstrap is not installed" >&2
  exit 1
}
key=$( { echo "$mirror $suite"; cat "$0" "$(dirname "$0")/systemd-guest.sh" | sha256sum; } |
  sha256sum | cut -c1-16)
root=$cache/systemd-$key
mkdir -p "$cache"
exec 9>"$cache/.lock-systemd"
flock 9
if [ ! -f "$root/.complete" ]; then
  find "$cache" -mindepth 1 -maxdepth 1 -name 'systemd-*' ! -name "systemd-$key" -mtime +1 \
    -exec rm -rf {} +
  tmp=$cache/.tmp-systemd-$key
  rm -rf "$tmp"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3 "$suite" "$tmp" \
    "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    echo "systemd-rootfs: debootstrap failed (see $cache/debootstrap.log)" >&2
    exit 1
  }
  # A quiet, fast boot on a console-less kernel; nothing kept between runs.
  for u in getty@.service serial-getty@.service console-getty.service systemd-timesyncd.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer systemd-remount-fs.service; do
    ln -sf /dev/null "$tmp/etc/systemd/system/$u"
  done
  mkdir -p "$tmp/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\n' >"$tmp/etc/systemd/journald.conf.d/volatile.conf"
  : >"$tmp/etc/machine-id"
  mkdir -p "$tmp/src" "$tmp/build" "$tmp/out"
  echo ocps-uml >"$tmp/etc/hostname"
  chroot "$tmp" useradd --no-create-home --shell /bin/sh ocpstest
  cat >"$tmp/etc/systemd/system/ocps-uml-test.service" <<'UNIT'
[Unit]
Description=the cgroup v2 suite's systemd guest tests
After=multi-user.target dbus.service

[Service]
Type=oneshot
ExecStart=/usr/local/bin/ocps-uml-test
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
  ln -sf ../ocps-uml-test.service "$tmp/etc/systemd/system/multi-user.target.wants/ocps-uml-test.service"
  install -m 0755 "$(dirname "$0")/systemd-guest.sh" "$tmp/usr/local/bin/ocps-uml-test"
  rm -rf "$tmp/var/cache/apt/archives"/*.deb
  touch "$tmp/.complete"
  mv "$tmp" "$root"
fi
# What the binaries load and Debian's minimal tree lacks, from the host.
{ ldd "$@" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  while read -r f; do
    [ -e "$root/usr/lib/x86_64-linux-gnu/$(basename "$f")" ] || cp -L "$f" "$root/usr/lib/x86_64-linux-gnu/"
  done
echo "$root"
