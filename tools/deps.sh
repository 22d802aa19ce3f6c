#!/usr/bin/env bash
# Installs what onebit needs and is missing: Debian packages with apt-get, npm packages locally under
# node_modules/. Quick and silent when everything is present.
#   tools/deps.sh run    what `make run` needs (compiler, HTTP and JSON libraries, Emscripten for the
#                        page's wasm engine)
#   tools/deps.sh test   everything the tests use (adds npm, clang + libFuzzer, Chromium,
#                        the aarch64 cross compiler and qemu for the NEON tests, npm packages)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-test}

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_file() { [ -e "$1" ]; }
want() { # package, test command...
    local pkg=$1; shift
    "$@" || need+=("$pkg")
}
want gcc               have_cmd cc
want make              have_cmd make
want libcjson-dev      have_file /usr/include/cjson/cJSON.h
want libmicrohttpd-dev have_file /usr/include/microhttpd.h
want nodejs            have_cmd node
want emscripten        have_cmd emcc
if [ "$what" = test ]; then
    want npm                  have_cmd npm
    want clang                have_cmd clang
    want libclang-rt-14-dev   have_file /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a
    want chromium             have_cmd chromium
    want libvulkan1           have_file /usr/lib/x86_64-linux-gnu/libvulkan.so.1
    want curl                 have_cmd curl
    want gcc-aarch64-linux-gnu have_cmd aarch64-linux-gnu-gcc
    want libc6-dev-arm64-cross have_file /usr/aarch64-linux-gnu/include/stdio.h
    want qemu-user            have_cmd qemu-aarch64
    want git                  have_cmd git
    # Debian's packages are for Debian's interpreter (the python3 on PATH may be another one)
    want python3-numpy        /usr/bin/python3 -c 'import numpy' 2>/dev/null
    want python3-jinja2       /usr/bin/python3 -c 'import jinja2' 2>/dev/null
    want pkgconf              have_cmd pkg-config
    want man-db               have_cmd man
    want cmake                have_cmd cmake
    want g++                  have_cmd g++
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "deps: installing Debian packages: ${need[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# npm packages: reinstall when package.json changed since the last install.
if [ "$what" = test ]; then
    stamp=node_modules/.onebit-stamp
    if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ]; then
        echo "deps: installing npm packages"
        npm install --no-audit --no-fund --loglevel=error >/dev/null
        touch "$stamp"
    fi
fi
