#!/usr/bin/env bash
# neon.sh — builds tests/unit/test_kernels, test_tern and test_qk for AArch64 (static) and runs them
# under qemu-user: the ternary and qk kernels with plain NEON and with the ARMv8.2 dot-product
# instructions, the Q1_0 kernels (plain ARMv8.0 NEON only) once. Exit 0 on success; skips (exit 0,
# with a message) when the cross tools are not installed.
# Needs the Debian packages gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${AARCH64_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
if ! command -v "$CC" >/dev/null 2>&1 || ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "neon.sh: skipped: $CC or $QEMU not found (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    exit 0
fi
out=build/aarch64
mkdir -p "$out"
# The library minus the WebGPU backend (a wasm-only file), plus the test.
srcs=$(ls src/*/*.c | grep -v -e /webgpu/ -e /wasm/)
status=0
for variant in armv8-a armv8.2-a+dotprod; do
    # the ternary kernels' test too (tests/unit/test_tern.c: tern_neon.c against the portable ones)
    tbin="$out/test_tern-${variant//[.+]/_}"
    $CC -O2 -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -Isrc/core -Isrc/gen -Isrc/models -Isrc/cpu \
        -march="$variant" -static -o "$tbin" tests/unit/test_tern.c $srcs -lm -lpthread
    echo "neon.sh: running $tbin under $QEMU"
    if "$QEMU" "$tbin" neon | tee "$tbin.log" | grep -E "^(FAIL|skip|neon|[0-9]+ checks)"; then :; fi
    if [ "${PIPESTATUS[0]}" -ne 0 ] || grep -q "^FAIL" "$tbin.log"; then status=1; fi
    grep -q "^neon ternary kernels checked" "$tbin.log" || { echo "neon.sh: the NEON ternary kernels did not run"; status=1; }
    # qk.h's integer-dot kernels (Q8_0 ... Q6_K) against the portable ones.
    qbin="$out/test_qk-${variant//[.+]/_}"
    $CC -O2 -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -Isrc/core -Isrc/gen -Isrc/models -Isrc/cpu \
        -march="$variant" -static -o "$qbin" tests/unit/test_qk.c $srcs -lm -lpthread
    echo "neon.sh: running $qbin under $QEMU"
    if "$QEMU" "$qbin" | tee "$qbin.log" | grep -E "^(FAIL|test_qk)"; then :; fi
    if [ "${PIPESTATUS[0]}" -ne 0 ] || grep -q "^FAIL" "$qbin.log"; then status=1; fi
    grep -q "^test_qk: neon checked" "$qbin.log" || { echo "neon.sh: the NEON qk kernels did not run"; status=1; }
    # the Q1_0 kernels use nothing past ARMv8.0: one variant
    [ "$variant" = armv8-a ] || continue
    bin="$out/test_kernels-${variant//[.+]/_}"
    $CC -O2 -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -Isrc/core -Isrc/gen -Isrc/models -Isrc/cpu \
        -march="$variant" -static -o "$bin" tests/unit/test_kernels.c $srcs -lm -lpthread
    echo "neon.sh: running $bin under $QEMU"
    # "-" skips the whole-model comparison: the scalar reference is too slow under emulation.
    if "$QEMU" "$bin" - | tee "$bin.log" | grep -E "^(FAIL|skip|neon|generic|[0-9]+ checks)"; then :; fi
    if [ "${PIPESTATUS[0]}" -ne 0 ] || grep -q "^FAIL" "$bin.log"; then status=1; fi
    grep -q "^neon:" "$bin.log" || { echo "neon.sh: the NEON kernels did not run"; status=1; }
done
[ $status -eq 0 ] && echo "neon.sh: ok"
exit $status
