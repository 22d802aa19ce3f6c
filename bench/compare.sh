#!/usr/bin/env bash
# compare.sh — onebit vs llama.cpp on the same GGUF file, same threads, in the same run.
#
# usage: bench/compare.sh FILE [-t THREADS] [-r REPS] [--rounds N] [--pp N] [--tg N]
#
# Alternates `onebit bench` (build/onebit) and bench/llama-bench.mjs (llama.cpp's CPU build through
# node-llama-cpp) for N rounds (default 3) of REPS repetitions each (default 3), so that both see
# the same machine conditions; prints every round, the median over rounds of each engine's median
# tokens/s, and the ratios onebit / llama.cpp for prompt processing (pp) and generation (tg).
# The instruction set of onebit's CPU kernels is printed with its figures (ONEBIT_CPU_ISA in the
# environment forces one: avx512, avx2, neon, wasm, generic; llama.cpp picks its own, the best).
# Benchmarks on a shared machine are noisy: the load average before and after is printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
ONEBIT=${ONEBIT:-build/onebit}   # the binary to measure

usage() { echo "usage: bench/compare.sh FILE [-t THREADS] [-r REPS] [--rounds N] [--pp N] [--tg N]" >&2; exit 2; }
[ $# -ge 1 ] || usage
file=$1; shift
threads=0 reps=3 rounds=3 pp=512 tg=128
while [ $# -gt 0 ]; do
    case "$1" in
        -t) threads=$2; shift 2 ;;
        -r) reps=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --pp) pp=$2; shift 2 ;;
        --tg) tg=$2; shift 2 ;;
        *) usage ;;
    esac
done
[ -f "$file" ] || { echo "compare.sh: no such file: $file" >&2; exit 1; }
[ -x "$ONEBIT" ] || { echo "compare.sh: $ONEBIT missing (run make)" >&2; exit 1; }
# Same thread count for both: onebit's default (physical cores) unless -t is given.
if [ "$threads" = 0 ]; then
    threads=$(lscpu -p=Core,Socket 2>/dev/null | grep -v '^#' | sort -u | wc -l)
    [ "$threads" -ge 1 ] || threads=$(nproc)
fi

echo "file: $file ($(du -h "$file" | cut -f1)), threads: $threads, pp$pp, tg$tg, $rounds rounds x $reps reps"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) logical CPUs"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for r in $(seq 1 "$rounds"); do
    # each run bounded (STEP_TIMEOUT seconds, default 1800): a hang stops the comparison, named
    ob=$(timeout -k 10 "${STEP_TIMEOUT:-1800}" "$ONEBIT" bench -m "$file" -t "$threads" -r "$reps" --pp "$pp" --tg "$tg" --json) ||
        { echo "compare.sh: round $r: $ONEBIT bench failed or ran past ${STEP_TIMEOUT:-1800} s" >&2; exit 1; }
    ll=$(timeout -k 10 "${STEP_TIMEOUT:-1800}" node bench/llama-bench.mjs -m "$file" -t "$threads" -r "$reps" --pp "$pp" --tg "$tg" --json) ||
        { echo "compare.sh: round $r: bench/llama-bench.mjs failed or ran past ${STEP_TIMEOUT:-1800} s" >&2; exit 1; }
    echo "round $r onebit    $ob"
    echo "round $r llama.cpp $ll"
    printf '%s\n%s\n' "$ob" "$ll" >> "$results"
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
node - "$results" <<'EOF'
const fs = require("fs");
const rows = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const median = (v) => { const s = [...v].sort((a, b) => a - b), n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const ob = rows.filter((r) => r.engine === undefined), ll = rows.filter((r) => r.engine === "llama.cpp");
const m = (set, k) => median(set.map((r) => r[k]));
const obpp = m(ob, "pp_tps"), obtg = m(ob, "tg_tps"), llpp = m(ll, "pp_tps"), lltg = m(ll, "tg_tps");
const rss = Math.max(...ob.map((r) => r.peak_rss_mib || 0));
console.log("\n| engine | pp" + ob[0].pp + " t/s | tg" + ob[0].tg + " t/s |\n|---|---|---|");
const isa = ob[0].isa ? `, ${ob[0].isa}` : "";
console.log(`| onebit (${ob[0].backend}${isa}) | ${obpp.toFixed(2)} | ${obtg.toFixed(2)} |`);
console.log(`| llama.cpp | ${llpp.toFixed(2)} | ${lltg.toFixed(2)} |`);
console.log(`| ratio | ${(obpp / llpp).toFixed(2)}x | ${(obtg / lltg).toFixed(2)}x |`);
if (ob[0].isa) console.log(`onebit instruction set: ${ob[0].isa}${process.env.ONEBIT_CPU_ISA ? " (ONEBIT_CPU_ISA=" + process.env.ONEBIT_CPU_ISA + ")" : ""}`);
console.log(`onebit peak resident memory: ${rss.toFixed(1)} MiB (file ${ob[0].file_mib.toFixed(1)} MiB)`);
EOF
