#!/usr/bin/env bash
# ab-gpubtg-build.sh — here (the build machine), from a clean checkout of branch gpubtg: builds the
# wasm variants bench/ab-gpubtg.sh times into var/NAME (onebit.wasm, onebit-core.mjs, kernels.mjs):
# base from main's backend_webgpu.c and decode kernels, the others from this branch with the
# build knobs of src/webgpu/backend_webgpu.c given as EMCC_CFLAGS. Then rebuilds build/wasm as
# the branch's default.
#   usage: bash bench/ab-gpubtg-build.sh [NAME=FLAGS ...]
#   (default: base pfq="-DWG_PF_QKV=128" pfqg="-DWG_PF_QKV=128 -DWG_PF_GU=64" h256="-DWG_HEAD_ROWS=256"
#    all="-DWG_PF_QKV=128 -DWG_PF_GU=64 -DWG_HEAD_ROWS=256"; more: pfag="-DWG_PF_ATT=32 -DWG_PF_GU=64",
#    h64="-DWG_HEAD_ROWS=64"; pfo="-DWG_PF_WO=64" and pfs="-DWG_PF_QKV=128 -DWG_PF_WO=64 -DWG_PF_GU=64
#    -DWG_PF_SPLIT=1" need commit c98fe55, whose knobs WG_PF_WO / WG_PF_SPLIT were dropped after it
#    for the page's 200 KB)
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="src/webgpu/backend_webgpu.c src/webgpu/kernels/matvec.wgsl src/webgpu/kernels/gateup.wgsl src/webgpu/kernels/attn_dec.wgsl"
git diff --quiet HEAD -- $FILES || { echo "commit or stash the changes of $FILES first"; exit 1; }
if [ $# = 0 ]; then
    set -- base "pfq=-DWG_PF_QKV=128" "pfqg=-DWG_PF_QKV=128 -DWG_PF_GU=64" "h256=-DWG_HEAD_ROWS=256" \
        "all=-DWG_PF_QKV=128 -DWG_PF_GU=64 -DWG_HEAD_ROWS=256"
fi
build() {  # NAME FLAGS
    rm -f build/wasm/obj/webgpu/backend_webgpu.o build/wasm/onebit.wasm
    EMCC_CFLAGS="$2" nice make -s build/wasm/onebit.wasm build/wasm/kernels.mjs build/wasm/kernels-generic.mjs
    mkdir -p "var/$1"
    cp build/wasm/onebit.wasm build/wasm/onebit-core.mjs build/wasm/kernels.mjs build/wasm/kernels-generic.mjs "var/$1/"
    echo "var/$1: ${2:-(defaults)}"
}
for spec in "$@"; do
    name=${spec%%=*} flags=
    [[ "$spec" == *=* ]] && flags=${spec#*=}
    if [ "$name" = base ]; then
        git checkout main -- $FILES
        touch $FILES
        build base "" || { git checkout HEAD -- $FILES; exit 1; }
        git checkout HEAD -- $FILES
        touch $FILES
    else
        build "$name" "$flags"
    fi
done
build default ""
rm -rf var/default
