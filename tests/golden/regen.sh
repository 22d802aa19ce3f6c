#!/usr/bin/env bash
# regen.sh — regenerates the golden data under tests/golden/ with llama.cpp (node-llama-cpp).
# Builds mkmodel, (re)generates build/models/tiny.gguf, then writes tests/golden/tiny.json.
# Run after a deliberate change to tools/mkmodel.c, review the diff, and commit it.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s build/mkmodel
bash tools/make-models.sh build
node tests/golden/regen.mjs
