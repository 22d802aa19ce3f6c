#!/usr/bin/env bash
# build.sh — rebuilds models/demo.gguf from scratch: corpus, tokens, training, GGUF.
#
# Usage: bash tools/train-demo/build.sh [cpu|cuda] [OUT.gguf]
#   cpu  (default) trains with Debian's python3-torch on this machine's CPU (about 25 minutes on
#        two idle cores; much longer when other work shares them);
#   cuda trains on a GPU with whatever python3 has a CUDA PyTorch (about a minute on an H100).
# Both run the same steps in the same order from the same seeds; their weights agree up to float
# rounding, not bit for bit. Installs the Debian packages it needs. Not run by `make`: the built
# model is committed, and this is how to remake it.
set -euo pipefail
cd "$(dirname "$0")/../.."
device=${1:-cpu}
out=${2:-models/demo.gguf}
data=build/train-demo-data
run=build/train-demo

need=()
command -v bible >/dev/null || need+=(bible-kjv bible-kjv-text)
[ -e /usr/lib/python3/dist-packages/torch ] || need+=(python3-torch)
# Debian's torch calls the reference BLAS unless an optimised one is installed: 30x slower.
ls /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 >/dev/null 2>&1 || need+=(libopenblas0-openmp)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

mkdir -p "$data" "$run"
/usr/bin/python3 tools/train-demo/prepare.py --out "$data"
node tools/train-demo/tokenize.mjs "$data"
if [ "$device" = cuda ]; then
    python3 tools/train-demo/train.py --data "$data" --out "$run" --device cuda --threads 1
else
    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tools/train-demo/train.py --data "$data" --out "$run"
fi
make build/mkmodel
build/mkmodel --weights "$run/weights" -o "$out"
echo "build.sh: wrote $out"
