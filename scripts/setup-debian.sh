#!/usr/bin/env bash
# Installs the Debian packages mod_rgi builds and tests with (only the missing ones).
# Usage: scripts/setup-debian.sh [extra packages...]
set -euo pipefail

# redis-server, memcached and chromium: the session tests share sessions through Redis and
# memcache and drive the demo in a headless browser; wrk loads the server in the fault tests.
packages=(apache2 apache2-dev apache2-utils libclang-dev clang gcc curl make redis-server memcached chromium wrk "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
