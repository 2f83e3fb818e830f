#!/usr/bin/env bash
# Installs the Debian packages ehrnet builds against, or says exactly what to run when it cannot.
set -euo pipefail
missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ehrnet: missing system packages: ${missing[*]} (no apt-get here; install their equivalents)" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
else
    echo "ehrnet: missing system packages: ${missing[*]}" >&2
    echo "        install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "ehrnet: installing system packages: ${missing[*]}"
DEBIAN_FRONTEND=noninteractive $sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
