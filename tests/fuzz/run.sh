#!/usr/bin/env bash
# Builds and runs every libFuzzer target tests/fuzz/fuzz_*.c (`make fuzz`).
#
# Each target is compiled with `clang -g -O1 -fsanitize=fuzzer,address,undefined` together with the
# library sources (src/*/*.c) into build/fuzz/NAME and run for FUZZ_SECONDS (default 30) seconds on
# its corpus build/fuzz/corpus/NAME, which persists between runs. Seeds: the files under
# tests/fuzz/seeds/NAME/ if that folder exists, and for fuzz_gguf a few small valid models written
# by the hostile-file test (build/test_hostile --write-seeds). A dictionary tests/fuzz/NAME.dict is
# used when present. Crashes land in build/fuzz/artifacts/NAME/; reproduce one with
#   build/fuzz/NAME build/fuzz/artifacts/NAME/crash-...
# Environment: FUZZ_SECONDS, FUZZ_TARGETS (space-separated names, default all), FUZZ_ARGS (extra
# libFuzzer flags), CLANG (default clang). Needs libFuzzer's runtime: Debian's libclang-rt-14-dev.
# Exits non-zero if a target fails to build or finds a crash, leak or timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."

CLANG=${CLANG:-clang}
SECONDS_EACH=${FUZZ_SECONDS:-30}
B=build/fuzz
STD="-std=c11 -Wall -Wextra -Werror -Iinclude -Isrc/core -Isrc/gen -Isrc/models -Isrc/cpu -Isrc/webgpu -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64"
SAN="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
mkdir -p "$B/obj"

# The fuzzer runtime ships in libclang-rt-14-dev, a mere Recommends of clang-14.
probe=$B/probe
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$probe.c"
if ! "$CLANG" -fsanitize=fuzzer,address "$probe.c" -o "$probe" 2>"$probe.log"; then
    echo "fuzz: $CLANG cannot build a libFuzzer target:" >&2
    sed 's/^/  /' "$probe.log" >&2
    echo "fuzz: install the runtime (Debian: apt-get install libclang-rt-14-dev)" >&2
    exit 1
fi

# Library objects (src/*/*.c), rebuilt when any source or header is newer than the archive.
lib=$B/libonebit-fuzz.a
if [ ! -f "$lib" ] || [ -n "$(find src include -newer "$lib" -name '*.[ch]' | head -1)" ]; then
    echo "fuzz: building the library with sanitizer coverage"
    rm -f "$B"/obj/*.o "$lib"
    # Per-ISA kernel flags, as in the Makefile's block of the same name (keep the two in step), so
    # that the SIMD kernels this CPU runs are fuzzed too. clang 14 takes many minutes on those
    # files under UBSan, or under ASan's inline checks: they get ASan only, with out-of-line checks.
    SIMD_SAN="-g -O1 -fno-omit-frame-pointer -fsanitize=address -mllvm -asan-instrumentation-with-call-threshold=0"
    flags_of() {
        case "$(uname -m)/$1" in
        x86_64/cpu_avx512.c) echo "$SIMD_SAN -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c" ;;
        x86_64/cpu_avx2.c) echo "$SIMD_SAN -mavx2 -mfma -mf16c" ;;
        *) echo "$SAN" ;;
        esac
    }
    for f in src/*/*.c; do echo "$f $(flags_of "$(basename "$f")")"; done > "$B/sources"
    if ! xargs -P 2 -L 1 sh -c \
        'o='"$B"'/obj/$(basename "$0" .c).o; exec '"$CLANG $STD"' -fsanitize=fuzzer-no-link "$@" -c "$0" -o "$o"' \
        < "$B/sources"; then
        echo "fuzz: the library does not build with $CLANG (errors above)" >&2
        exit 1
    fi
    ar rcs "$lib" "$B"/obj/*.o
fi

targets=${FUZZ_TARGETS:-$(ls tests/fuzz/fuzz_*.c | xargs -n1 basename | sed 's/\.c$//')}
status=0
for name in $targets; do
    src=tests/fuzz/$name.c
    [ -f "$src" ] || { echo "fuzz: no $src" >&2; status=1; continue; }
    echo "fuzz: building $name"
    # shellcheck disable=SC2086
    # Targets of the command line's own readers take their source from cli/ (and cJSON).
    extra=()
    [ "$name" = fuzz_safetensors ] && extra=(-Icli cli/safetensors.c -lcjson)
    if ! "$CLANG" $STD $SAN -fsanitize=fuzzer "$src" "${extra[@]}" "$lib" -lm -lpthread -o "$B/$name"; then
        echo "fuzz: $name does not build" >&2
        status=1
        continue
    fi
    corpus=$B/corpus/$name
    mkdir -p "$corpus" "$B/artifacts/$name"
    if [ -d "tests/fuzz/seeds/$name" ]; then cp -n "tests/fuzz/seeds/$name"/* "$corpus"/ 2>/dev/null || true; fi
    if [ "$name" = fuzz_gguf ]; then
        # Seed models come from the hostile-file test's builder, compiled without instrumentation.
        # shellcheck disable=SC2086
        "$CLANG" $STD -O1 tests/unit/test_hostile.c src/*/*.c -lm -lpthread -o "$B/seed_writer"
        "$B/seed_writer" --write-seeds "$corpus"
    fi
    dict=()
    [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    echo "fuzz: running $name for ${SECONDS_EACH}s on $(ls "$corpus" | wc -l) corpus files"
    # shellcheck disable=SC2086
    if ! "$B/$name" "${dict[@]}" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$name/" ${FUZZ_ARGS:-} "$corpus" \
        >"$B/$name.log" 2>&1; then
        echo "fuzz: $name FAILED; see $B/$name.log and $B/artifacts/$name/" >&2
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$B/$name.log" | head -20 >&2 || true
        status=1
    else
        grep -E "^Done" "$B/$name.log" || true
    fi
done
exit $status
