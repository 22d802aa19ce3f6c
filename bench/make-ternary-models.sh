#!/usr/bin/env bash
# make-ternary-models.sh — the full-shape ternary files of BENCHMARKS.md (issue 20), generated, not
# downloaded: random weights written by llama.cpp's gguf-py (tools/gen-arch-model.py presets) as F16,
# then quantised by llama.cpp's own llama-quantize with --pure (every matrix, the tied embedding /
# output included, has the ternary type, as in the published Ternary-Bonsai files):
#   BUILD/models/bitnet-2b4t-tq2_0.gguf          BitNet b1.58 2B4T shape, TQ2_0
#   BUILD/models/ternary-bonsai-1.7b-q2_0.gguf   Ternary-Bonsai-1.7B (Qwen3-1.7B) shape, Q2_0
# Also writes the TQ1_0 variant of the BitNet shape. The F16 intermediates (~5 GB and ~4 GB) are
# deleted afterwards. Idempotent (a file is rewritten only when missing). Several minutes on 2 cores.
# Usage: bash bench/make-ternary-models.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
B="${1:-build}"
D="$B/models"
mkdir -p "$D"
export ONEBIT_LLAMA_SRC=${ONEBIT_LLAMA_SRC:-$B/llama.cpp}
export ONEBIT_LLAMA_BIN=${ONEBIT_LLAMA_BIN:-$B/llama-bin}
SRC=$(bash tools/llama-src.sh)
BIN=$(bash tools/llama-build.sh)
PY=/usr/bin/python3

make_one() { # preset type(s)...
    local preset=$1; shift
    local f16="$D/$preset-f16.gguf" need=0
    for t in "$@"; do [ -f "$D/$preset-$(echo "$t" | tr 'A-Z' 'a-z').gguf" ] || need=1; done
    [ $need = 1 ] || return 0
    [ -f "$f16" ] || "$PY" tools/gen-arch-model.py --llama-src "$SRC" --preset "$preset" --seed 1 -o "$f16"
    for t in "$@"; do
        local out="$D/$preset-$(echo "$t" | tr 'A-Z' 'a-z').gguf"
        [ -f "$out" ] || { "$BIN/llama-quantize" --pure "$f16" "$out.tmp.$$" "$t" 2 >"$out.log" 2>&1 && mv -f "$out.tmp.$$" "$out"; } ||
            { cat "$out.log" >&2; exit 1; }
        echo "make-ternary-models: $out ($(stat -c %s "$out") bytes)"
    done
    rm -f "$f16"
}

make_one bitnet-2b4t TQ2_0 TQ1_0
make_one ternary-bonsai-1.7b Q2_0
