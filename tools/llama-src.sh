#!/usr/bin/env bash
# llama-src.sh — prints the path of llama.cpp's source tree, cloning it first when missing.
#
# llama.cpp is onebit's oracle and peer. Its full source ships inside the npm package node-llama-cpp
# (node_modules/node-llama-cpp/llama/gitRelease.bundle, a git bundle); this clones that bundle once
# into build/llama.cpp (or $ONEBIT_LLAMA_SRC). The tests use its gguf-py (writes real GGUF files of
# any architecture), its models/ggml-vocab-*.gguf with their .inp/.out token vectors, and its
# models/templates/*.jinja chat templates. Nothing here is compiled into onebit.
# Usage: dir=$(bash tools/llama-src.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${ONEBIT_LLAMA_SRC:-build/llama.cpp}
bundle=node_modules/node-llama-cpp/llama/gitRelease.bundle
if [ ! -f "$dir/.onebit-cloned" ]; then
    if [ ! -f "$bundle" ]; then
        echo "llama-src: $bundle not found: run 'make deps' (npm install) first" >&2
        exit 1
    fi
    rm -rf "$dir.tmp.$$"
    mkdir -p "$(dirname "$dir")"
    git -c advice.detachedHead=false clone -q "$bundle" "$dir.tmp.$$" >&2
    rm -rf "$dir"
    mv "$dir.tmp.$$" "$dir"
    touch "$dir/.onebit-cloned"
fi
cd "$dir" && pwd
