#!/usr/bin/env bash
# llama-server-shim.sh — starts `onebit serve` when given llama-server's command line, so that
# llama.cpp's own server test suite (tools/server/tests, which launches $LLAMA_SERVER_BIN_PATH)
# runs against onebit. Used by bench/llama-server-tests.sh; not a general llama-server replacement.
#
# Options onebit has are translated (--port --host --temp --seed --ctx-size --parallel --n-predict
# --threads --api-key --alias --cors-origins); the model options (--hf-repo, --model, ...) are
# replaced by a local file: $ONEBIT_SHIM_EMBED_MODEL when the preset asks for embeddings
# (--embedding or --pooling), else $ONEBIT_SHIM_MODEL. Every other option (GPU layers, batch
# sizes, --jinja, --offline, slots, metrics, ...) has no onebit counterpart and is dropped with its
# value.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${ONEBIT_BIN:-$here/build/onebit}
model=${ONEBIT_SHIM_MODEL:-$here/build/models/tiny.gguf}
embed=0
out=()
while [ $# -gt 0 ]; do
    a=$1
    shift
    case "$a" in
    --port | --host | --temp | --seed | --api-key | --alias) out+=("$a" "$1"); shift ;;
    --ctx-size | -c) out+=(-c "$1"); shift ;;
    --parallel | -np) out+=(--slots "$1"); shift ;;
    --n-predict | -n) [ "$1" -gt 0 ] 2>/dev/null && out+=(-n "$1"); shift ;;
    --threads | -t) out+=(-t "$1"); shift ;;
    --cors-origins) out+=(--cors "$1"); shift ;;
    --embedding | --embeddings) embed=1 ;;
    --pooling) embed=1; shift ;;
    --*)
        # an option onebit does not have: drop it, and its value when one follows
        if [ $# -gt 0 ] && [[ "$1" != -* ]]; then shift; fi ;;
    *) ;;
    esac
done
[ "$embed" = 1 ] && model=${ONEBIT_SHIM_EMBED_MODEL:-$model}
exec "$bin" serve -m "$model" "${out[@]}"
