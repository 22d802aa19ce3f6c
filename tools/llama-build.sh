#!/usr/bin/env bash
# llama-build.sh — builds llama.cpp's llama-quantize (CPU only, portable, Release) once and prints
# the directory holding the binary.
#
# The tests use llama.cpp's own quantizer to write real Q8_0/Q4_0/.../K-quant GGUF files
# (tools/make-arch-models.sh). The source comes from tools/llama-src.sh (node-llama-cpp's bundle).
# This is an install step, cached: the binary lives in build/llama-bin/ (or $ONEBIT_LLAMA_BIN) and
# is not rebuilt when present (about 7 minutes on two cores otherwise). Nothing here is linked into
# onebit. Usage: bin=$(bash tools/llama-build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${ONEBIT_LLAMA_BIN:-build/llama-bin}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)
if [ ! -x "$bin/llama-quantize" ]; then
    src=$(bash tools/llama-src.sh)
    work="$bin/cmake-build"
    echo "llama-build: building llama-quantize from $src in $work (several minutes)" >&2
    t0=$SECONDS
    cmake -S "$src" -B "$work" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=OFF \
        -DGGML_BACKEND_DL=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DGGML_OPENMP=OFF -DGGML_METAL=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF >&2
    cmake --build "$work" --config Release --target llama-quantize -j"${ONEBIT_LLAMA_JOBS:-2}" >&2
    found=$(find "$work" -type f -name llama-quantize -perm -u+x | head -n 1)
    [ -n "$found" ] || { echo "llama-build: llama-quantize not found after the build" >&2; exit 1; }
    cp "$found" "$bin/llama-quantize.tmp.$$"
    mv -f "$bin/llama-quantize.tmp.$$" "$bin/llama-quantize"
    echo "llama-build: built in $((SECONDS - t0)) s" >&2
fi
echo "$bin"
