#!/usr/bin/env bash
# make-models.sh — generates the test models in BUILD/models/ with BUILD/mkmodel (fixed seeds):
#   tiny.gguf    2-layer tiny preset (seed 1): fast tests, golden data
#   bonsai.gguf  PrismML Bonsai 1.7B shape, random weights (seed 1): ~250 MB, realistic sizes
# A model is rebuilt only when missing or older than mkmodel. Usage: bash tools/make-models.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
B="${1:-build}"
MK="$B/mkmodel"
if [ ! -x "$MK" ]; then
    echo "make-models: $MK not found: run make first" >&2
    exit 1
fi
mkdir -p "$B/models"

gen() { # name, mkmodel arguments...
    local out="$B/models/$1.gguf"
    shift
    if [ ! -f "$out" ] || [ "$MK" -nt "$out" ]; then
        echo "make-models: writing $out"
        # A private temporary name: parallel runs never see or clobber a half-written model.
        "$MK" "$@" -o "$out.tmp.$$"
        mv -f "$out.tmp.$$" "$out"
    fi
}

gen tiny --preset tiny --seed 1
gen bonsai --preset bonsai --seed 1
