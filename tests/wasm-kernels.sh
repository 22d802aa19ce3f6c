#!/usr/bin/env bash
# wasm-kernels.sh — builds tests/unit/test_kernels, test_tern and test_qk for WebAssembly with SIMD128 (emcc) and runs them
# under Node, so the wasm kernels are checked against the scalar reference like the native ones.
# Exit 0 on success; skips (exit 0, with a message) when emcc or node is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v emcc >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "wasm-kernels.sh: skipped: emcc or node not found"
    exit 0
fi
out=build/wasm-test
mkdir -p "$out"
srcs=$(ls src/*/*.c)
NODE_PATH=/usr/share/nodejs emcc -O2 -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -Iinclude -Isrc/core -Isrc/gen -Isrc/models -Isrc/cpu -Isrc/webgpu -msimd128 \
    -sALLOW_MEMORY_GROWTH=1 -sENVIRONMENT=node -sSINGLE_FILE=1 -o "$out/test_kernels.cjs" tests/unit/test_kernels.c $srcs
# "-" skips the whole-model comparison (no model file inside the wasm file system).
node "$out/test_kernels.cjs" - > "$out/test_kernels.log" 2>&1 && status=0 || status=$?
grep -E "^(FAIL|skip|wasm|generic|[0-9]+ checks)" "$out/test_kernels.log" || true
grep -q "^wasm:" "$out/test_kernels.log" || { echo "wasm-kernels.sh: the wasm kernels did not run"; status=1; }
# The ternary kernels (tests/unit/test_tern.c: tern_wasm.c against the portable ones).
NODE_PATH=/usr/share/nodejs emcc -O2 -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -Iinclude -Isrc/core -Isrc/gen -Isrc/models -Isrc/cpu -Isrc/webgpu -msimd128 \
    -sALLOW_MEMORY_GROWTH=1 -sENVIRONMENT=node -sSINGLE_FILE=1 -o "$out/test_tern.cjs" tests/unit/test_tern.c $srcs
node "$out/test_tern.cjs" wasm > "$out/test_tern.log" 2>&1 || status=1
grep -E "^(FAIL|skip|wasm|[0-9]+ checks)" "$out/test_tern.log" || true
grep -q "^wasm ternary kernels checked" "$out/test_tern.log" || { echo "wasm-kernels.sh: the wasm ternary kernels did not run"; status=1; }
# qk.h's integer-dot kernels (Q8_0 ... Q6_K) against the portable ones.
NODE_PATH=/usr/share/nodejs emcc -O2 -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -Iinclude -Isrc/core -Isrc/gen -Isrc/models -Isrc/cpu -Isrc/webgpu -msimd128 \
    -sALLOW_MEMORY_GROWTH=1 -sENVIRONMENT=node -sSINGLE_FILE=1 -o "$out/test_qk.cjs" tests/unit/test_qk.c $srcs
node "$out/test_qk.cjs" > "$out/test_qk.log" 2>&1 || status=1
grep -E "^(FAIL|test_qk)" "$out/test_qk.log" || true
grep -q "^test_qk: wasm checked" "$out/test_qk.log" || { echo "wasm-kernels.sh: the wasm qk kernels did not run"; status=1; }
[ "$status" -eq 0 ] && echo "wasm-kernels.sh: ok"
exit "$status"
