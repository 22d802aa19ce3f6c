#!/usr/bin/env bash
# grammar.sh — what grammar-constrained sampling costs in generation speed: `onebit run` on FILE
# with free text, with --json (any JSON object) and with --json-schema (a fixed object schema),
# greedy and sampled (temperature 0.7, top-k 20), alternated for N rounds so every case sees the
# same machine load. Prints each run's generation tokens/s and the share of the generation time spent
# in the grammar (masking and advancing it: `--stats`), then the median of each case, its ratio to
# free text of the same decoding and the grammar's median share.
#
# usage: bench/grammar.sh FILE [-t THREADS] [-n TOKENS] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
ONEBIT=${ONEBIT:-build/onebit}
[ $# -ge 1 ] || { echo "usage: bench/grammar.sh FILE [-t THREADS] [-n TOKENS] [--rounds N]" >&2; exit 2; }
file=$1; shift
threads=0 n=64 rounds=3
while [ $# -gt 0 ]; do
    case "$1" in
        -t) threads=$2; shift 2 ;;
        -n) n=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "grammar.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/schema.json" <<'JSON'
{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}},
 "when":{"type":"string","format":"date"},"ok":{"type":"boolean"}},"required":["name","age","tags","when","ok"],"additionalProperties":false}
JSON
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A all share
for r in $(seq 1 "$rounds"); do
    for dec in greedy sampled; do
        [ $dec = greedy ] && d="--greedy" || d="--temp 0.7 --top-k 20 --seed $r"
        for c in free json schema; do
            case $c in free) x="" ;; json) x="--json" ;; schema) x="--json-schema $tmp/schema.json" ;; esac
            # shellcheck disable=SC2086
            out=$(timeout 600 "$ONEBIT" run -m "$file" --raw -p "The answer:" -n "$n" -t "$threads" $d $x --stats 2>&1 >/dev/null)
            line=$(echo "$out" | grep 'generated:')
            gline=$(echo "$out" | grep '^\[grammar:' || true)
            tps=$(echo "$line" | sed -E 's/.*generated: ([0-9]+) tokens in ([0-9]+) ms, ([0-9.]+) tok\/s.*/\3/')
            ntok=$(echo "$line" | sed -E 's/.*generated: ([0-9]+) tokens.*/\1/')
            echo "round $r $dec $c: $ntok tokens, $tps tok/s ${gline}"
            all[$dec-$c]+="$tps "
            [ -n "$gline" ] && share[$dec-$c]+="$(echo "$gline" | sed -E 's/.*\(([0-9.]+)%\).*/\1/') "
        done
    done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for dec in greedy sampled; do
    f=$(echo "${all[$dec-free]}" | med)
    for c in free json schema; do
        m=$(echo "${all[$dec-$c]}" | med)
        g=""
        [ -n "${share[$dec-$c]:-}" ] && g=", grammar's share of generation time: median $(echo "${share[$dec-$c]}" | med)%"
        echo "$dec $c: median $m tok/s, ratio to free $(awk -v a="$m" -v b="$f" 'BEGIN {printf "%.3f", a / b}')$g"
    done
done
