#!/usr/bin/env bash
# Runs every test of onebit, prints a line as each test file finishes, and ends with one line
# "N passed, N failed, N skipped".
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
skip=0
failed=()
log=$B/test-logs
mkdir -p "$log"

note() { printf '%s\n' "$*"; }
# Every command below runs under `timeout`: a hang fails the test that hung, named, instead of
# holding up the suite (ONEBIT_TEST_TIMEOUT: seconds for one C test, default 600;
# ONEBIT_NODE_FILE_TIMEOUT: for one Node test file, default 1200).
run_one() { # name, command...
    local name=$1; shift
    [[ $name =~ $filter ]] || return 0
    local f="$log/$(echo "$name" | tr '/ ' '__').log" t0=$SECONDS limit=${ONEBIT_TEST_TIMEOUT:-600} rc=0
    timeout -k 10 "$limit" "$@" >"$f" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
        pass=$((pass + 1)); note "ok    $name ($((SECONDS - t0)) s)"
    else
        [ "$rc" = 124 ] || [ "$rc" = 137 ] && echo "run.sh: $name did not finish within $limit s: killed" >>"$f"
        fail=$((fail + 1)); failed+=("$name"); note "FAIL  $name ($((SECONDS - t0)) s)"; tail -n 40 "$f" | sed 's/^/      /'
    fi
}

note "== build"
if ! make -s -j2 all >"$log/build.log" 2>&1; then
    cat "$log/build.log"; echo "0 passed, 1 failed, 0 skipped"; exit 1
fi
note "== test models"
if ! bash tools/make-models.sh "$B" >"$log/models.log" 2>&1; then
    cat "$log/models.log"; echo "0 passed, 1 failed, 0 skipped"; exit 1
fi
# Other architectures and weight types for tests/arch-logits.test.mjs (and llama-quantize for
# tests/quantize.test.mjs): the first run builds llama.cpp's
# llama-quantize (an install step, cached in build/llama-bin: minutes on two cores), then the models
# and llama.cpp's logits of them are cached in build/models/arch (tools/make-arch-models.sh).
if [[ tests/arch-logits.test.mjs =~ $filter || tests/quantize.test.mjs =~ $filter ]] &&
    ! bash tools/make-arch-models.sh "$B" >"$log/arch-models.log" 2>&1; then
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
        webgpu.test.mjs | webgpu-generic.test.mjs | webgpu-limits.test.mjs | webgpu-nohang.test.mjs | browser-*.test.mjs | demo.test.mjs | npm-package.test.mjs) gpu_lane+=("$f") ;;
        *) cpu_lane+=("$f") ;;
    esac
done
# One Node test file at a time, so that each prints its line when it finishes (both lanes; the
# full spec and TAP reports go to build/test-logs/node-NAME.*), with a line a minute while a slow
# one (Chromium on SwiftShader: minutes) is still running.
tap_count() { # what, tap file
    grep -E "^# $1 " "$2" 2>/dev/null | awk '{print $3}' | tail -1
}
node_file() { # file
    local f=$1 name t0=$SECONDS
    name=$(basename "$f" .test.mjs)
    local out="$log/node-$name.out" tap="$log/node-$name.tap"
    rm -f "$out" "$tap" "$log/node-$name.count"
    ( while sleep 60; do note "..    node/$name still running ($((SECONDS - t0)) s)"; done ) &
    local watch=$!
    local limit=${ONEBIT_NODE_FILE_TIMEOUT:-1200} rc=0
    timeout -k 10 "$limit" node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination="$out" \
        --test-reporter=tap --test-reporter-destination="$tap" "$f" >/dev/null 2>&1 || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "run.sh: node/$name did not finish within $limit s: killed" >>"$out"
        echo "# fail 1" >>"$tap" # counted as a failure below
    fi
    kill "$watch" 2>/dev/null
    wait "$watch" 2>/dev/null
    local np nf nc ns
    np=$(tap_count pass "$tap"); nf=$(tap_count fail "$tap")
    # a test that ran past its timeout is reported as cancelled, not failed: count it as failed
    nc=$(tap_count cancelled "$tap"); ns=$(tap_count skipped "$tap")
    np=${np:-0} ns=${ns:-0} nf=$(( ${nf:-1} + ${nc:-0} ))
    echo "$np $nf $ns" >"$log/node-$name.count"
    local counts="$np passed$([ "$ns" = 0 ] || echo ", $ns skipped")"
    if [ "$nf" = 0 ]; then
        note "ok    node/$name ($counts, $((SECONDS - t0)) s)"
    else
        note "FAIL  node/$name ($nf failed, $counts, $((SECONDS - t0)) s; report: $out)"
        { sed -n '/failing tests:/,$p' "$out" 2>/dev/null | head -n 60 | grep . || tail -n 40 "$out" 2>/dev/null; } | sed 's/^/      /'
    fi
}
node_lane() { # files...
    for f in "$@"; do node_file "$f"; done
}
lane_result() { # files...: adds the counts of the lane's files
    local f name np nf ns
    for f in "$@"; do
        name=$(basename "$f" .test.mjs)
        read -r np nf ns <"$log/node-$name.count" 2>/dev/null || { np=0 nf=1 ns=0; }
        pass=$((pass + np)); fail=$((fail + nf)); skip=$((skip + ns))
        [ "$nf" = 0 ] || failed+=("node/$name")
    done
}
# tests/webgpu-nohang.test.mjs runs the Node CLI on SwiftShader 20 times by itself (issue 18's
# bar: each run compiles its pipelines, several seconds each on 2 cores); in the suite, 4 times.
export ONEBIT_NOHANG_RUNS=${ONEBIT_NOHANG_RUNS:-4}
gpu_pid=""
if [ ${#gpu_lane[@]} -gt 0 ]; then
    note "== Node tests (WebGPU, Chromium) start in the background, each reported as it finishes: $(basename -a "${gpu_lane[@]}" | tr '\n' ' ')"
    node_lane "${gpu_lane[@]}" &
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
    node_lane "${cpu_lane[@]}"
    lane_result "${cpu_lane[@]}"
fi
if [ -n "$gpu_pid" ]; then
    note "== waiting for the WebGPU and Chromium tests in the background"
    wait "$gpu_pid"
    lane_result "${gpu_lane[@]}"
fi

echo
[ ${#failed[@]} -eq 0 ] || note "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
