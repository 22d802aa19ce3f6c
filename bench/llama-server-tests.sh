#!/usr/bin/env bash
# llama-server-tests.sh — llama.cpp's own server test suite (tools/server/tests of the llama.cpp
# source, pytest) run against `onebit serve`, for the OpenAI-compatible endpoints it covers.
#
# The suite starts its server itself from $LLAMA_SERVER_BIN_PATH; tools/llama-server-shim.sh
# takes llama-server's command line and starts onebit instead, on local test models (the suite's
# presets download models from Hugging Face; this machine has none of them): build/models/tiny.gguf
# for chat and completions, and a random-weight Qwen3 with mean pooling for embeddings. The suite
# is copied to build/llama-server-tests/ so that its caches stay out of the llama.cpp source.
# Optional, not part of `make test` (a few minutes). Needs Debian's python3-pytest,
# python3-requests, python3-filelock, python3-wget; the tests that use the `openai` Python package
# (PyPI only) run when it is importable or ONEBIT_PYTEST_VENV names a venv to pip-install it into,
# and are skipped otherwise. The results and why each failure does not apply to onebit are in
# docs/SERVER.md.
#   bash bench/llama-server-tests.sh [pytest arguments: test files, -k ...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
src=${ONEBIT_LLAMA_SRC:-build/llama.cpp}
[ -d "$src/tools/server/tests/unit" ] || { echo "llama-server-tests: no $src/tools/server/tests (tools/llama-src.sh)" >&2; exit 2; }
/usr/bin/python3 -c 'import pytest, requests, filelock, wget' 2>/dev/null || {
    echo "llama-server-tests: needs python3-pytest python3-requests python3-filelock python3-wget" >&2; exit 2; }
py=/usr/bin/python3
# the `openai` Python package (some tests use it) is on PyPI only; where PyPI cannot be reached
# those tests are skipped and counted as such (below)
if ! $py -c 'import openai' 2>/dev/null && [ -n "${ONEBIT_PYTEST_VENV:-}" ]; then
    [ -x "$ONEBIT_PYTEST_VENV/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$ONEBIT_PYTEST_VENV"
    "$ONEBIT_PYTEST_VENV/bin/pip" install -q openai && py=$ONEBIT_PYTEST_VENV/bin/python
fi
[ -x build/onebit ] || { echo "llama-server-tests: build/onebit missing: run make" >&2; exit 2; }
emb=build/models/embed-mean.gguf
[ -f "$emb" ] || /usr/bin/python3 tools/gen-arch-model.py --llama-src "$src" --arch qwen3 --vocab llama-spm \
    --n-head 4 --n-head-kv 2 --tied --logit-std 3 --seed 15 --pooling mean -o "$emb"
work=build/llama-server-tests
rm -rf "$work"
cp -r "$src/tools/server/tests" "$work"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(unit/test_basic.py unit/test_chat_completion.py unit/test_completion.py
    unit/test_embedding.py unit/test_security.py unit/test_tool_call.py)
if ! $py -c 'import openai' 2>/dev/null; then
    # without the package: the modules import it guarded, and each test that calls OpenAI( is
    # skipped with that reason instead of the whole file failing to load
    sed -i 's/^from openai import OpenAI$/try:\n    from openai import OpenAI\nexcept ImportError:\n    OpenAI = None/' "$work"/unit/*.py
    cat >> "$work/conftest.py" <<'PY'


def pytest_collection_modifyitems(config, items):
    import inspect
    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and "OpenAI(" in inspect.getsource(fn):
            item.add_marker(pytest.mark.skip(reason="needs the openai Python package (PyPI), not installed here"))
PY
fi
cd "$work"
export LLAMA_SERVER_BIN_PATH=$root/tools/llama-server-shim.sh ONEBIT_SHIM_MODEL=$root/build/models/tiny.gguf \
    ONEBIT_SHIM_EMBED_MODEL=$root/$emb ONEBIT_BIN=$root/build/onebit PORT=${PORT:-18480}
timeout 1800 $py -m pytest -p no:cacheprovider -q -rfEs "${args[@]}" 2>&1 ||
    true
