#!/bin/sh
# meson install script: puts the commented default configuration at
# $DESTDIR<sysconfdir>/ocps-proxy/config.yaml unless a file is there
# already: an upgrade never overwrites the operator's configuration.
# Usage: install-config.sh SOURCE SYSCONFDIR
set -eu
src=$1
dest="${DESTDIR:-}$2/ocps-proxy/config.yaml"
if [ -e "$dest" ] || [ -L "$dest" ]; then
    echo "Keeping the existing $dest (the default is $src)"
    exit 0
fi
mkdir -p "$(dirname "$dest")"
# Root's to change, anyone's to read: it holds no secret unless the
# operator adds one (registry passwords: then chmod 600 it).
install -m 0644 "$src" "$dest"
echo "Installing the default configuration to $dest"
