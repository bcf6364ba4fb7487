#!/usr/bin/env bash
# Install the Debian packages lossbench needs, when they are missing.
# Runs apt-get only as root; otherwise it lists what is missing and goes on.
set -euo pipefail

# libsndfile: soundfile's FLAC/WAV I/O (the wheel bundles one; the system one is a fallback)
PKGS=(libsndfile1)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "warning: missing system packages (install them as root): ${missing[*]}" >&2
fi
