#!/usr/bin/env bash
# Prepares an offline Docker environment for the container tests (Debian 12,
# as root): dockerd, a loopback registry on 127.0.0.1:5000 and a busybox image
# built locally, since no outside registry is reachable. Safe to run again;
# test/docker/teardown.sh stops only what this script started.
set -euo pipefail

STATE=${OCPS_DOCKER_STATE:-/tmp/ocps-docker}
IMAGE=${OCPS_TEST_IMAGE:-ocps-test/busybox:1}
REGISTRY=127.0.0.1:5000
# /usr/local/bin/docker may be a newer client than the daemon speaks; the
# package's CLI always matches the package's dockerd.
DOCKER=/usr/bin/docker

step() { echo "setup: $*"; }
die() { echo "setup: FAILED: $*" >&2; exit 1; }
trap 'echo "setup: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

# wait_for SECONDS CMD...: polls CMD once a second.
wait_for() {
  local n=$1; shift
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  return 1
}
docker_up() { curl -sf --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null; }
registry_up() { curl -sf "http://$REGISTRY/v2/" >/dev/null; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
mkdir -p "$STATE"

step "packages"
missing=()
for p in docker.io busybox-static docker-registry curl docker-compose; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  apt-get update -qq || die "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]}"
fi

step "dockerd"
if docker_up; then
  step "dockerd already answers, leaving it alone"
else
  # No bridge or iptables: tests run containers with --network none and the
  # host's firewall must stay untouched. setsid keeps it alive after we exit.
  setsid dockerd --bridge=none --iptables=false --ip6tables=false \
    >"$STATE/dockerd.log" 2>&1 </dev/null &
  echo $! >"$STATE/dockerd.pid"
  wait_for 60 docker_up || die "dockerd did not answer within 60 s, see $STATE/dockerd.log"
  step "dockerd started, pid $(cat "$STATE/dockerd.pid")"
fi

step "registry"
if registry_up; then
  step "registry already answers on $REGISTRY"
else
  # Debian's /etc/docker/registry/config.yml listens on all addresses and
  # requires htpasswd auth, so write our own: loopback only, no auth.
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
  mkdir -p "$STATE/registry"
  setsid /usr/bin/docker-registry serve "$STATE/registry.yml" \
    >"$STATE/registry.log" 2>&1 </dev/null &
  echo $! >"$STATE/registry.pid"
  wait_for 30 registry_up || die "registry did not answer within 30 s, see $STATE/registry.log"
  step "registry started, pid $(cat "$STATE/registry.pid")"
fi

step "image $IMAGE"
if $DOCKER image inspect "$IMAGE" >/dev/null 2>&1; then
  step "image $IMAGE already present"
else
  root=$STATE/rootfs
  rm -rf "$root" "$STATE/rootfs.tar"
  mkdir -p "$root/bin" "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar -C "$root" -cf "$STATE/rootfs.tar" . || die "tar of $root"
  $DOCKER import --change 'CMD ["/bin/sh"]' "$STATE/rootfs.tar" "$IMAGE" >/dev/null \
    || die "docker import $IMAGE"
  rm -rf "$root" "$STATE/rootfs.tar"
  step "image $IMAGE imported"
fi

step "push $REGISTRY/$IMAGE"
$DOCKER tag "$IMAGE" "$REGISTRY/$IMAGE" || die "docker tag"
$DOCKER push "$REGISTRY/$IMAGE" >/dev/null || die "docker push $REGISTRY/$IMAGE"
# Drop the registry tag so a test's pull really fetches from the registry.
$DOCKER rmi "$REGISTRY/$IMAGE" >/dev/null || die "docker rmi $REGISTRY/$IMAGE"

step "done (state in $STATE)"
