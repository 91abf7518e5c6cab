#!/usr/bin/env bash
# The guest's root filesystem for run.sh, built offline from this host's
# files and cached: busybox-static for the shell and tools, the host's
# python3 with its standard library (the guest tests use ocps.py), and the
# shared libraries the given binaries, curl and python's modules load, with the
# host's glibc loader, so host-built binaries run in the guest as they are.
#
#   rootfs.sh CACHE_DIR BINARY...   prints the root directory's path
#
# The cache key is the versions of the packages copied whole, the list of
# libraries (each with its size and time), this script and init.sh: a package
# upgrade or a new library makes a new tree; trees unused for a day are
# removed. Nothing writes to a tree once made: runs may share it.
set -euo pipefail

cache=$1
shift
py=$(readlink -f /usr/bin/python3)
pyver=$(basename "$py")                          # python3.11
stdlib=/usr/lib/$pyver
command -v busybox >/dev/null && [ -x "$py" ] && [ -d "$stdlib" ] || {
  echo "rootfs: needs busybox-static and python3 on the host" >&2
  exit 1
}

# Every shared object the binaries, python and python's modules load.
libs() {
  { ldd "$@" "$py" "$stdlib"/lib-dynload/*.so 2>/dev/null || true; } |
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | sort -u
}
# curl: bench/tasks.py submits with it (bench/uml.sh).
mapfile -t closure < <(libs "$@" /usr/bin/curl)
key=$( {
  dpkg-query -W -f='${Package} ${Version}\n' busybox-static libc6 "$pyver"-minimal \
    "lib$pyver"-minimal "lib$pyver"-stdlib 2>/dev/null || true
  for f in "${closure[@]}"; do stat -L -c '%n %s %Y' "$f"; done
  cat "$0" "$(dirname "$0")/init.sh" | sha256sum
} | sha256sum | cut -c1-16)
root=$cache/root-$key
if [ -f "$root/.complete" ]; then
  touch "$root"
  echo "$root"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
[ -f "$root/.complete" ] && { echo "$root"; exit 0; }
# Trees of other keys unused for a day (another checkout may use one now).
find "$cache" -mindepth 1 -maxdepth 1 -name 'root-*' ! -name "root-$key" -mtime +1 -exec rm -rf {} +
tmp=$cache/.tmp-$key
rm -rf "$tmp"
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,lib64,lib/x86_64-linux-gnu,etc,proc,sys,dev,tmp,run,root,src,build,out,var/tmp}
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
ln -s ../lib "$tmp/usr/lib"

cp /bin/busybox "$tmp/bin/busybox"
for a in $(busybox --list-full); do
  [ -e "$tmp/$a" ] || ln -s /bin/busybox "$tmp/$a"
done
for f in "${closure[@]}"; do
  case $f in
    */ld-linux*) cp -L "$f" "$tmp/lib64/$(basename "$f")" ;;
    *) cp -L "$f" "$tmp/lib/x86_64-linux-gnu/$(basename "$f")" ;;
  esac
done
cp /usr/bin/curl "$tmp/usr/bin/curl"
rm -f "$tmp/usr/bin/python3"
cp "$py" "$tmp/usr/bin/$pyver"
ln -s "$pyver" "$tmp/usr/bin/python3"
# The standard library without what no test imports (tests, GUI, installers).
tar -C /usr/lib -cf - --exclude=__pycache__ --exclude="$pyver/test" --exclude="$pyver/idlelib" \
  --exclude="$pyver/tkinter" --exclude="$pyver/turtledemo" --exclude="$pyver/ensurepip" \
  --exclude="$pyver/lib2to3" --exclude="$pyver/pydoc_data" --exclude="$pyver/config-*" \
  --exclude="$pyver/site-packages" --exclude="$pyver/dist-packages" "$pyver" | tar -C "$tmp/lib" -xf -

# Accounts: the test user owns nothing and may run tasks (uid >= 1000).
cat >"$tmp/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
ocpstest:x:1000:1000::/nonexistent:/bin/sh
EOF
cat >"$tmp/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
ocpstest:x:1000:
EOF
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' >"$tmp/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$tmp/etc/hosts"
install -m 0755 "$(dirname "$0")/init.sh" "$tmp/init"
touch "$tmp/.complete"
mv "$tmp" "$root"
echo "$root"
