#!/usr/bin/env bash
# make-arch-models.sh — real GGUF files of other architectures and weight types, for the tests:
# random-weight `llama` and `qwen2` models with real vocabularies and chat templates
# (tools/gen-arch-model.py, llama.cpp's gguf-py), quantised by llama.cpp's own llama-quantize
# (tools/llama-build.sh), plus llama.cpp's logits of each as the oracle
# (tests/oracle/arch-oracle.mjs), into BUILD/models/arch/:
#   NAME.gguf               the model
#   NAME.tokens.json        the teacher-forced token list (an English sentence in the file's own
#                           vocabulary, filled up to 24 tokens with fixed ids spread over the vocabulary)
#   NAME.llama.f32          llama.cpp's logits for it: float32 [n_tokens][n_vocab]
#   manifest.json           every file: arch, vocabulary, variant, tensor types, keys, tensor names
# Idempotent: a base model is rewritten only when missing or older than the generator, a quantised
# one when missing or older than its base or llama-quantize, oracle logits when missing or older
# than the model or the oracle scripts. Usage: bash tools/make-arch-models.sh [BUILD]
# llama-quantize is built once (an install step, ~7 minutes on two cores) and cached in
# BUILD/llama-bin (or $ONEBIT_LLAMA_BIN); llama.cpp's source in BUILD/llama.cpp ($ONEBIT_LLAMA_SRC).
set -euo pipefail
cd "$(dirname "$0")/.."
B="${1:-build}"
D="$B/models/arch"
mkdir -p "$D"
export ONEBIT_LLAMA_SRC=${ONEBIT_LLAMA_SRC:-$B/llama.cpp}
export ONEBIT_LLAMA_BIN=${ONEBIT_LLAMA_BIN:-$B/llama-bin}
SRC=$(bash tools/llama-src.sh)
BIN=$(bash tools/llama-build.sh)
Q="$BIN/llama-quantize"
GEN=tools/gen-arch-model.py
# Debian's numpy (python3-numpy): the first python3 on PATH may be another installation without it.
PY=""
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import numpy' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "make-arch-models: no python3 with numpy: run tools/deps.sh test" >&2; exit 1; }

list=()  # manifest lines: name arch vocab variant base
stale() { [ ! -f "$1" ] || [ "$2" -nt "$1" ] || { [ $# -gt 2 ] && [ "$3" -nt "$1" ]; }; }

base() { # name arch vocab dtype generator-arguments...
    local name=$1 arch=$2 vocab=$3 dtype=$4; shift 4
    local out="$D/$name-$dtype.gguf"
    if stale "$out" "$GEN"; then
        echo "make-arch-models: writing $out"
        local t0=$SECONDS
        "$PY" "$GEN" --llama-src "$SRC" --arch "$arch" --vocab "$vocab" --dtype "$dtype" --name "onebit-test-$name" "$@" -o "$out"
        echo "make-arch-models: $out in $((SECONDS - t0)) s"
    fi
    list+=("$name-$dtype $arch $vocab $dtype $name-$dtype")
}

ref_only() { # base, but no llama.cpp oracle: the file is compared with the float64 reference only
    base "$@"
    list[${#list[@]}-1]+=" ref-only"
}

quant() { # name arch vocab from-variant type [llama-quantize options...]
    local name=$1 arch=$2 vocab=$3 from=$4 type=$5; shift 5
    local lc; lc=$(echo "$type" | tr 'A-Z' 'a-z')
    local in="$D/$name-$from.gguf" out="$D/$name-$lc.gguf"
    if stale "$out" "$in" "$Q"; then
        echo "make-arch-models: writing $out"
        "$Q" "$@" "$in" "$out.tmp.$$" "$type" 2 >"$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
        mv -f "$out.tmp.$$" "$out"
    fi
    list+=("$name-$lc $arch $vocab $lc $name-$from")
}

# Llama 3.2 style: Llama 3 BPE vocabulary, GQA (4 heads, 2 KV), tied output, Llama 3.1 RoPE factors
# (rope_freqs.weight computed as convert_hf_to_gguf.py does, with original_max_position_embeddings 32
# instead of 8192 so that they change the logits within the 24 test positions).
base llama3-rf llama llama-bpe f16 --n-head 4 --n-head-kv 2 --tied --rope-freqs --rope-orig-ctx 32 --seed 11
# The same weights (same seed) without rope_freqs.weight: the two files' logits must differ.
base llama3 llama llama-bpe f16 --n-head 4 --n-head-kv 2 --tied --seed 11
# Llama 2 style: SentencePiece vocabulary, n_head_kv == n_head, untied output, RoPE base 10000, F32.
base llama2 llama llama-spm f32 --n-head 4 --n-head-kv 4 --untied --seed 12
# Qwen2.5 style: q/k/v biases, GQA, tied (0.5B/1.5B) and untied (7B) output.
base qwen2 qwen2 qwen2 f16 --n-head 4 --n-head-kv 2 --tied --seed 13
base qwen2-untied qwen2 qwen2 f16 --n-head 4 --n-head-kv 2 --untied --seed 14

# The popular file of each family, kept lean (each 128k/152k-vocabulary file costs generation and
# test time): Llama 3.1 as Q4_K_M (llama-quantize's mix: Q4_K with Q6_K and others), Llama 3.2 as
# Q4_0 (a Q6_K embedding: tied), Qwen2.5 1.5B as Q8_0, Qwen2.5 7B (untied) as Q4_K_M.
quant llama3-rf llama llama-bpe f16 Q4_K_M
quant llama3 llama llama-bpe f16 Q4_0
quant qwen2 qwen2 qwen2 f16 Q8_0
quant qwen2-untied qwen2 qwen2 f16 Q4_K_M
# Every common type on the small (32000-token) vocabulary, from F32.
for t in Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_M Q5_K_M Q6_K F16 BF16; do
    quant llama2 llama llama-spm f32 "$t"
done
# The 2-bit and ternary types on the same vocabulary, pure (every matrix, token_embd and output
# included, has the type): Q2_0 (Ternary-Bonsai's format), TQ1_0, TQ2_0, and the K-quants Q2_K, Q3_K.
for t in Q2_0 TQ1_0 TQ2_0 Q2_K Q3_K_S; do
    quant llama2 llama llama-spm f32 "$t" --pure
done
# Qwen3-shaped (QK-norm, NeoX RoPE, tied) on the 32000-token vocabulary, F32 and pure Q2_0 (logits
# std 3: with QK-norm and a tied output the softmax would saturate at 4).
base qwen3 qwen3 llama-spm f32 --n-head 4 --n-head-kv 2 --tied --logit-std 3 --seed 15
quant qwen3 qwen3 llama-spm f32 Q2_0 --pure

# Gemma 1 (2B style): GeGLU, head dim 256 (2 heads of 256 over n_embd 256), one KV head, tied,
# SentencePiece vocabulary; F32 and Q4_K_M.
base gemma gemma llama-spm f32 --n-head 2 --n-head-kv 1 --head-dim 256 --tied --logit-std 3 --seed 21
quant gemma gemma llama-spm f32 Q4_K_M
# Phi-2: heads of 80 (n_embd 320: not K-quant rows, so llama-quantize's Q4_K_M mix falls back to
# Q5_0/Q8_0 there and keeps Q4_K/Q6_K on the 1280-column ffn_down), partial rotary 32 of 80, GPT-2 vocabulary.
base phi2 phi2 gpt-2 f16 --n-embd 320 --n-ff 1280 --n-head 4 --n-head-kv 4 --n-rot 32 --untied --seed 22
quant phi2 phi2 gpt-2 f16 Q4_K_M
# BitNet b1.58 (llama.cpp's `bitnet`, with per-tensor scales): llama.cpp here always runs SiLU, so
# the file compared with it declares silu; the one without the key (ReLU², as the b1.58 2B4T files)
# is compared with the float64 reference only (32k vocabulary: cheaper, the vocabulary is not tested there).
base bitnet bitnet llama-bpe f16 --n-head 4 --n-head-kv 2 --tied --hidden-act silu --seed 23
ref_only bitnet-relu2 bitnet llama-spm f32 --n-head 4 --n-head-kv 2 --tied --seed 24

# Oracle logits (llama.cpp through node-llama-cpp), one process for all the stale ones.
oracle=()
for line in "${list[@]}"; do
    n=${line%% *}
    [ "${line% ref-only}" = "$line" ] || continue
    f="$D/$n.gguf" o="$D/$n.llama.f32"
    if stale "$o" "$f" tests/oracle/arch-oracle.mjs || [ tests/oracle/llama-logits.mjs -nt "$o" ]; then oracle+=("$f"); fi
done
if [ ${#oracle[@]} -gt 0 ]; then
    echo "make-arch-models: llama.cpp logits of ${#oracle[@]} files"
    timeout 900 node tests/oracle/arch-oracle.mjs "${oracle[@]}"
fi

printf '%s\n' "${list[@]}" >"$D/manifest.list"
"$PY" "$GEN" --llama-src "$SRC" --manifest "$D/manifest.list" -o "$D/manifest.json"
echo "make-arch-models: $D/manifest.json ($(wc -l <"$D/manifest.list") files)"
