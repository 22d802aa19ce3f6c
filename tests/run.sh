#!/usr/bin/env bash
# Runs every test of onebit and ends with one line "N passed, N failed".
#   C unit tests (build/test_*), the same under AddressSanitizer + UBSan (build/asan/test_*), and the
#   Node tests (tests/*.test.mjs: tokenizer and chat parity, logits vs references, CLI behaviour);
#   the WebGPU and Chromium ones run in the background beside everything else (two cores).
# Test models are generated first (tools/make-models.sh). Set ONEBIT_TEST_FILTER=regex to run a subset.
set -uo pipefail
cd "$(dirname "$0")/.."
B=build
filter=${ONEBIT_TEST_FILTER:-.}
pass=0
fail=0
failed=()
log=$B/test-logs
mkdir -p "$log"

note() { printf '%s\n' "$*"; }
run_one() { # name, command...
    local name=$1; shift
    [[ $name =~ $filter ]] || return 0
    local f="$log/$(echo "$name" | tr '/ ' '__').log" t0=$SECONDS
    if "$@" >"$f" 2>&1; then
        pass=$((pass + 1)); note "ok    $name ($((SECONDS - t0)) s)"
    else
        fail=$((fail + 1)); failed+=("$name"); note "FAIL  $name ($((SECONDS - t0)) s)"; tail -n 40 "$f" | sed 's/^/      /'
    fi
}

note "== build"
if ! make -s -j2 all >"$log/build.log" 2>&1; then
    cat "$log/build.log"; echo "0 passed, 1 failed"; exit 1
fi
note "== test models"
if ! bash tools/make-models.sh "$B" >"$log/models.log" 2>&1; then
    cat "$log/models.log"; echo "0 passed, 1 failed"; exit 1
fi
# Other architectures and weight types for tests/arch-logits.test.mjs: the first run builds llama.cpp's
# llama-quantize (an install step, cached in build/llama-bin: minutes on two cores), then the models
# and llama.cpp's logits of them are cached in build/models/arch (tools/make-arch-models.sh).
if [[ tests/arch-logits.test.mjs =~ $filter ]] && ! bash tools/make-arch-models.sh "$B" >"$log/arch-models.log" 2>&1; then
    tail -n 40 "$log/arch-models.log"; fail=$((fail + 1)); failed+=("arch test models")
fi

note "== WebAssembly build"
if ! make -s wasm >"$log/wasm.log" 2>&1; then
    tail -n 40 "$log/wasm.log"; fail=$((fail + 1)); failed+=("wasm build")
fi

# Node tests in two lanes that run at once: the WebGPU ones (SwiftShader, Chromium: most of the
# time) start now in the background; the rest follow the C tests in the foreground.
mapfile -t node_tests < <(ls tests/*.test.mjs 2>/dev/null | grep -E "$filter" || true)
gpu_lane=() cpu_lane=()
for f in "${node_tests[@]}"; do
    case $(basename "$f") in
        webgpu.test.mjs | browser-*.test.mjs | demo.test.mjs) gpu_lane+=("$f") ;;
        *) cpu_lane+=("$f") ;;
    esac
done
node_lane() { # name, files...
    local name=$1; shift
    rm -f "$log/node-$name.out" "$log/node-$name.tap"
    node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination="$log/node-$name.out" \
        --test-reporter=tap --test-reporter-destination="$log/node-$name.tap" "$@" >/dev/null 2>&1
}
lane_result() { # name: prints the lane's report and adds its counts
    local name=$1
    cat "$log/node-$name.out" 2>/dev/null || note "(the Node test runner wrote no report)"
    local np nf nc
    np=$(grep -E '^# pass ' "$log/node-$name.tap" 2>/dev/null | awk '{print $3}' | tail -1)
    nf=$(grep -E '^# fail ' "$log/node-$name.tap" 2>/dev/null | awk '{print $3}' | tail -1)
    # a test that ran past its timeout is reported as cancelled, not failed: count it as failed
    nc=$(grep -E '^# cancelled ' "$log/node-$name.tap" 2>/dev/null | awk '{print $3}' | tail -1)
    nf=$(( ${nf:-1} + ${nc:-0} ))
    pass=$((pass + ${np:-0}))
    fail=$((fail + nf))
    [ "$nf" = 0 ] || failed+=("node tests ($name)")
}
gpu_pid=""
if [ ${#gpu_lane[@]} -gt 0 ]; then
    node_lane gpu "${gpu_lane[@]}" &
    gpu_pid=$!
fi

note "== C unit tests"
for t in "$B"/test_*; do [ -x "$t" ] && run_one "unit/$(basename "$t")" "$t"; done

note "== C unit tests under AddressSanitizer and UBSan"
if make -s -j2 asan >"$log/asan-build.log" 2>&1; then
    for t in "$B"/asan/test_*; do
        [ -x "$t" ] && run_one "asan/$(basename "$t")" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$t"
    done
else
    fail=$((fail + 1)); failed+=("asan build"); tail -n 40 "$log/asan-build.log"
fi

note "== cross-ISA kernel tests (AArch64 NEON under qemu, wasm SIMD128 under Node)"
run_one "neon/test_kernels" bash tests/neon.sh
run_one "wasm/test_kernels" bash tests/wasm-kernels.sh

note "== Node tests: $(basename -a "${cpu_lane[@]}" 2>/dev/null | tr '\n' ' ')"
if [ ${#cpu_lane[@]} -gt 0 ]; then
    node_lane cpu "${cpu_lane[@]}"
    lane_result cpu
fi
note "== Node tests (WebGPU, Chromium; run beside the others): $(basename -a "${gpu_lane[@]}" 2>/dev/null | tr '\n' ' ')"
if [ -n "$gpu_pid" ]; then
    wait "$gpu_pid"
    lane_result gpu
fi

echo
[ ${#failed[@]} -eq 0 ] || note "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
