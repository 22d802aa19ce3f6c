#!/usr/bin/env bash
# Installs what onebit's build and tests need and are missing: Debian packages with apt-get, npm
# packages locally under node_modules/. Quick and silent when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_hdr() { [ -f "/usr/include/$1" ]; }
have_cmd cc       || need+=(gcc)
have_cmd make     || need+=(make)
have_cmd node     || need+=(nodejs)
have_cmd npm      || need+=(npm)
have_cmd clang    || need+=(clang)
have_hdr cjson/cJSON.h || need+=(libcjson-dev)
if [ ${#need[@]} -gt 0 ]; then
    echo "deps: installing Debian packages: ${need[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# npm packages: reinstall when package.json changed since the last install.
stamp=node_modules/.onebit-stamp
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ]; then
    echo "deps: installing npm packages"
    npm install --no-audit --no-fund --loglevel=error >/dev/null
    touch "$stamp"
fi
