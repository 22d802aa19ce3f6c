#!/usr/bin/env bash
# gpu-prep.sh — run HERE (the build machine) before bench/gpu.sh runs on a GPU host: builds the
# wasm core and the model generator and gathers what the host lacks (cJSON for mkmodel) under
# build/, and the gpu kit if it is not there yet. Then the device tool carries:
#   build/wasm  build/mkmodel  build/gpu-lib  build/gpu-kit
# and runs:  bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make -s wasm build/mkmodel
mkdir -p build/gpu-lib
lib=$(ldd build/mkmodel | awk '/libcjson/ {print $3}')
[ -n "$lib" ] && cp -L "$lib" build/gpu-lib/
if [ ! -f build/gpu-kit/unpack.sh ]; then
    bash ../shared/gpu-kit/make-kit.sh build/gpu-kit
fi
du -sh build/wasm build/mkmodel build/gpu-lib build/gpu-kit
echo "gpu-prep: carry build/wasm build/mkmodel build/gpu-lib build/gpu-kit; run: bash bench/gpu.sh"
