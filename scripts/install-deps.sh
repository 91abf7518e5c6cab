#!/usr/bin/env bash
# Installs the build and test dependencies from Debian 12 if any is missing
# (libgnutls28-dev: the https listeners; gnutls-bin: certtool, which the TLS
# tests make their certificates with; prometheus: promtool, which
# test_metrics checks the /metrics exposition with - Debian packages it
# only with the server, about 100 MB installed; libsystemd-dev: sd_notify,
# socket activation and the journal's fields; systemd: systemd-analyze,
# systemd-socket-activate and systemd-journald for test_systemd.py;
# user-mode-linux, busybox-static and debootstrap: the cgroup v2 suite's
# kernel and guests, test/cgroup2/).
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc libc6-dev libmicrohttpd-dev libcjson-dev libyaml-dev
      libxml2-dev libsqlite3-dev sqlite3 libcap-dev libcurl4-openssl-dev python3 python3-yaml passwd
      procps scdoc nettle-dev libgnutls28-dev gnutls-bin prometheus libsystemd-dev systemd
      user-mode-linux busybox-static debootstrap)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
