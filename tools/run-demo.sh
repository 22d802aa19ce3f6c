#!/usr/bin/env bash
# run-demo.sh — what `make run` runs: starts `onebit serve` with the demo model on 127.0.0.1:8080
# (or the next free port), prints the URL to open and a curl example, and stays in the foreground
# until Ctrl-C. Builds nothing: the Makefile's run target has already built the binary and models.
#   usage: bash tools/run-demo.sh [BUILD_DIR]      env: ONEBIT_HOST, ONEBIT_PORT, ONEBIT_MODEL
set -euo pipefail
cd "$(dirname "$0")/.."
B="${1:-build}"
BIN="$B/onebit"
HOST="${ONEBIT_HOST:-127.0.0.1}"
PORT="${ONEBIT_PORT:-8080}"

if [ ! -x "$BIN" ]; then
    echo "run-demo: $BIN not found: run make first" >&2
    exit 1
fi
MODEL="${ONEBIT_MODEL:-models/demo.gguf}"
if [ ! -f "$MODEL" ]; then
    echo "run-demo: NOTE: $MODEL is missing (it is committed in the repository: check your checkout)."
    MODEL="$B/models/tiny.gguf"
    echo "run-demo: NOTE: using $MODEL instead: random weights, so the replies are gibberish,"
    echo "run-demo:       but the server, the API and the web app all work."
    if [ ! -f "$MODEL" ]; then
        echo "run-demo: $MODEL is missing too: run make models" >&2
        exit 1
    fi
fi

# The first port from PORT on that nothing answers on.
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
port="$PORT"
while port_busy "$port"; do
    port=$((port + 1))
    if [ "$port" -ge $((PORT + 100)) ]; then
        echo "run-demo: no free port in $PORT..$((PORT + 99))" >&2
        exit 1
    fi
done
[ "$port" = "$PORT" ] || echo "run-demo: port $PORT is taken, using $port"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$BIN" serve -m "$MODEL" --host "$HOST" --port "$port" >"$out" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM

# Wait for the server to say it is listening (loading a big model can take a while).
while ! grep -q '^listening on' "$out" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || exit $?
        exit 1
    fi
    sleep 0.1
done
url="$(sed -n 's/^listening on //p' "$out" | head -n 1)"
url="${url%/}"
cat <<EOF

  onebit is serving $(basename "$MODEL")
  Open  $url/  in your browser.  Ctrl-C stops the server.

  Or try the OpenAI-compatible API:

    curl $url/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"messages":[{"role":"user","content":"Hello! Who are you?"}],"max_tokens":128}'

  Streaming: add "stream":true (and curl -N). Docs: docs/SERVER.md

EOF
status=0
wait "$pid" || status=$?
# A Ctrl-C interrupts the first wait; wait again for the server's orderly shutdown.
if kill -0 "$pid" 2>/dev/null; then wait "$pid" || status=$?; fi
exit "$status"
