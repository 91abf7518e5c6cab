#!/usr/bin/env bash
# Installs what building and running the daemon needs from Debian 12 if any
# is missing; with --tests, what the test suite needs too:
#   gnutls-bin       certtool, which the TLS tests make their certificates with
#   prometheus       promtool, which test_metrics checks /metrics with (Debian
#                    packages it only with the server, about 100 MB installed)
#   systemd          systemd-analyze, systemd-socket-activate and
#                    systemd-journald for test_systemd.py
#   user-mode-linux, busybox-static, debootstrap
#                    the cgroup v2 suite's kernel and guests (test/cgroup2/)
#   slurm-wlm, slurm-wlm-jwt-plugin, slurmrestd, munge
#                    the one-node Slurm cluster of the Slurm backend's tests
#                    (test/slurm/setup.sh): slurmctld, slurmd and the client
#                    commands, auth/jwt (only recommended by slurm-wlm)
# (libgnutls28-dev: the https listeners; libsystemd-dev: sd_notify, socket
# activation and the journal's fields.)
#   bash scripts/install-deps.sh [--tests]
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc libc6-dev libmicrohttpd-dev libcjson-dev libyaml-dev
      libxml2-dev libsqlite3-dev sqlite3 libcap-dev libcurl4-openssl-dev python3 python3-yaml passwd
      procps scdoc nettle-dev libgnutls28-dev libsystemd-dev)
case "${1:-}" in
  --tests) pkgs+=(gnutls-bin prometheus systemd user-mode-linux busybox-static debootstrap
                 slurm-wlm slurm-wlm-jwt-plugin slurmrestd munge curl) ;;
  "") ;;
  *) echo "usage: $0 [--tests]" >&2; exit 2 ;;
esac
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
