#!/usr/bin/env bash
# Builds the sidecar image ocps-proxy:VERSION and ocps-proxy:latest offline
# (no registry is reachable): a release build of this tree in build-image/
# (tests disabled), a root filesystem staged in build-image/sidecar/rootfs
# (the three binaries; the shared libraries they load, with the ones the
# daemon and the CLI dlopen() - libcurl, libxml2 - and theirs; CA
# certificates; passwd/group stubs; the sidecar config), then `docker build`
# of sidecar/Dockerfile, FROM scratch. Prints the image's size.
#
#   bash scripts/build-image.sh            (as root, or a member of docker)
#
# OCPS_IMAGE=NAME: another repository name (the tests' own);
# OCPS_IMAGE_BUILD_DIR=DIR: the release build's directory (default
# build-image/ in the tree; the tests keep theirs in meson's build dir).
#
# Debian's libxml2 links ICU, whose data library alone is 31 MB: the image
# gets an empty one instead (sidecar/icudata-stub.c says why that is safe).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
image=${OCPS_IMAGE:-ocps-proxy}
build=${OCPS_IMAGE_BUILD_DIR:-$src/build-image}
docker=${DOCKER:-docker}

die() { echo "build-image: $*" >&2; exit 1; }

# No libsystemd in the image: nothing runs it under systemd there, and it
# would bring liblzma, libzstd, liblz4 and libgcrypt along.
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=disabled -Ddocker=enabled -Dxml=enabled \
    -Dsystemd=disabled >/dev/null || die "meson setup failed"
fi
ninja -C "$build" >/dev/null || die "ninja failed"
version=$(meson introspect --projectinfo "$build" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')

stage=$build/sidecar
root=$stage/rootfs
rm -rf "$stage"
mkdir -p "$root"/{usr/bin,usr/lib/x86_64-linux-gnu,lib64,etc/ocps-proxy,etc/ssl/certs,srv/ocps,run/ocps-proxy,host,tmp,var/run}
chmod 1777 "$root/tmp"
chmod 0700 "$root/srv/ocps"

bins=("$build/cmd/ocps-proxyd" "$build/cmd/ocps-shim" "$build/cmd/ocps-proxy/ocps-proxy")
for b in "${bins[@]}"; do
  [ -x "$b" ] || die "$b was not built"
  install -m 0755 -s "$b" "$root/usr/bin/"
done

# The libraries: what the binaries need, what they dlopen() (by soname,
# as the daemon does) and, transitively, what those need. glibc itself
# dlopens libnss_files (accounts) and libgcc_s (the unwinder
# pthread_cancel needs: lib/util/as-user.c cancels a blocked open).
libdir=/usr/lib/x86_64-linux-gnu
dlopened=("$libdir/libcurl.so.4" "$libdir/libxml2.so.2" "$libdir/libnss_files.so.2"
          "$libdir/libgcc_s.so.1")
declare -A seen=()
queue=("${bins[@]}" "${dlopened[@]}")
while [ ${#queue[@]} -gt 0 ]; do
  f=${queue[0]}; queue=("${queue[@]:1}")
  [ -n "${seen[$f]:-}" ] && continue
  seen[$f]=1
  while read -r lib; do
    [ -n "$lib" ] && [ -z "${seen[$lib]:-}" ] && queue+=("$lib")
  done < <(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
done
for f in "${!seen[@]}"; do
  case $f in "$build"/*) continue ;; esac
  name=$(basename "$f")
  case $name in
    ld-linux-x86-64.so.2) dest=$root/lib64 ;;
    *) dest=$root/usr/lib/x86_64-linux-gnu ;;
  esac
  case $name in
    libicudata.so.*)
      # ICU's data, replaced by an empty table of the same version.
      ver=${name#libicudata.so.}; ver=${ver%%.*}
      cc -shared -fPIC -O2 -s -DICUDT_SYM="icudt${ver}_dat" -Wl,-soname,"$name" \
        -o "$dest/$name" sidecar/icudata-stub.c || die "icudata stub"
      continue ;;
  esac
  cp -L "$f" "$dest/$name"
  chmod 0755 "$dest/$name"
done
# /lib/x86_64-linux-gnu is where ld.so looks by default; a cache makes it find the rest.
ln -s usr/lib "$root/lib"
printf '/usr/lib/x86_64-linux-gnu\n' >"$root/etc/ld.so.conf"
ldconfig -r "$root" || die "ldconfig"

# The container's own accounts (the daemon runs as root; tasks' accounts
# are the host's, read under host_root).
printf 'root:x:0:0:root:/:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
  >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
install -m 0644 sidecar/config.yaml "$root/etc/ocps-proxy/config.yaml"

# The image.
cp sidecar/Dockerfile "$stage/Dockerfile"
"$docker" build -q -t "$image:$version" -t "$image:latest" "$stage" >/dev/null || die "docker build"
size=$("$docker" image inspect -f '{{.Size}}' "$image:$version")
echo "built $image:$version and $image:latest: $size bytes ($((size / 1024 / 1024)) MiB)"
