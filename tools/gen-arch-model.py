#!/usr/bin/env python3
"""gen-arch-model.py — random-weight GGUF models of llama.cpp's `llama`, `qwen2`, `gemma`, `phi2` and `bitnet` architectures.

Writes a model with llama.cpp's standard tensor names and metadata keys (as convert_hf_to_gguf.py
writes them for LlamaForCausalLM / Qwen2ForCausalLM), deterministic from --seed, with a real
vocabulary: every `tokenizer.*` key copied verbatim from one of llama.cpp's
models/ggml-vocab-*.gguf files, and a real chat template from models/templates/*.jinja.
The weights are F32 or F16 (1-D tensors: norms, biases, rope_freqs are always F32); the quantised
variants are made from these files by llama.cpp's own llama-quantize (tools/make-arch-models.sh).

Layout conventions are those of GGUF (no Hugging Face permutation to undo): a matrix with GGUF
shape {n_in, n_out} is stored row-major as n_out rows of n_in values.

  --arch llama   Llama 2/3 (RoPE in llama.cpp's "normal" layout: adjacent pairs), optional
                 rope_freqs.weight (Llama 3.1 RoPE frequency factors), untied or tied output
  --arch qwen2   Qwen2/2.5 (RoPE NeoX layout), q/k/v biases, tied or untied output
  --arch gemma   Gemma 1 (GeGLU, embeddings x sqrt(n_embd), --head-dim 256, tied output; the norm
                 weights as convert_hf_to_gguf.py stores them, the +1 included)
  --arch phi2    Phi-2 (LayerNorm + bias, parallel block, fused attn_qkv + bias, ungated GELU FFN
                 with biases, output + bias, partial rotary --n-rot)
  --arch bitnet  BitNet b1.58 (attn_sub_norm, ffn_sub_norm, per-tensor *.scale tensors [1] on every
                 product, tied; --hidden-act writes bitnet.hidden_activation)
  --arch qwen3   Qwen3 (RoPE NeoX layout), no biases, QK-norm (attn_q_norm/attn_k_norm per head)
  --pooling P    writes <arch>.pooling_type (mean, cls or last): an embedding model

Random weights are scaled so that activations stay sane and the comparison is robust: matrices
N(0, 1/n_in), norms 1 + N(0, 0.1^2), embeddings N(0, emb_std^2) large enough that the token's own
embedding stays a good part of the residual stream, and output_norm scaled so that the logits' std is
about --logit-std. With a tied output (or an untied one made of 0.8 token_embd + 0.6 independent noise)
the current token then wins the argmax by a clear margin, so that top-1 comparisons are not decided by
rounding between near-ties among 10^5 random logits, while the rest of the vocabulary still depends on
every layer (a broken attention or RoPE changes the logits by far more than the tests' 5%).

Usage (llama.cpp's source from tools/llama-src.sh; Debian's numpy, llama.cpp's gguf-py):
  python3 tools/gen-arch-model.py --llama-src DIR --arch llama --vocab llama-bpe --rope-freqs \
      --seed 1 -o out.gguf
  python3 tools/gen-arch-model.py --llama-src DIR --preset llama3.2-1b -o big.gguf
Presets (real shapes; any option overrides them, e.g. --n-layer 1): llama3.2-1b, qwen2.5-1.5b,
bitnet-2b4t (BitNet b1.58 2B4T), ternary-bonsai-1.7b / -4b / -8b (PrismML's Qwen3-based
Ternary-Bonsai); bench/make-ternary-models.sh quantises two of them to the ternary types.
"""
import argparse
import math
import os
import sys

import numpy as np

# Shape and hyperparameter presets. The tiny ones are K-quant compatible (every row a multiple of 256).
PRESETS = {
    # Llama 3.2 1B: 16 layers, 2048 embd, 8192 ff, 32 heads of 64, 8 KV heads, tied, rope factor 32
    "llama3.2-1b": dict(arch="llama", vocab="llama-bpe", template="meta-llama-Llama-3.2-3B-Instruct.jinja",
                        n_layer=16, n_embd=2048, n_ff=8192, n_head=32, n_head_kv=8, tied=True,
                        rope_freqs=True, rope_factor=32.0, rope_orig_ctx=8192, rope_theta=500000.0,
                        ctx=131072, eps=1e-5, dtype="f16"),
    # Qwen2.5 1.5B: 28 layers, 1536 embd, 8960 ff, 12 heads of 128, 2 KV heads, q/k/v biases, tied
    "qwen2.5-1.5b": dict(arch="qwen2", vocab="qwen2", template="Qwen-Qwen2.5-7B-Instruct.jinja",
                         n_layer=28, n_embd=1536, n_ff=8960, n_head=12, n_head_kv=2, tied=True,
                         biases=True, rope_theta=1000000.0, ctx=32768, eps=1e-6, dtype="f16"),
    # BitNet b1.58 2B4T (microsoft/bitnet-b1.58-2B-4T): 30 layers, 2560 embd, 6912 ff, 20 heads of 128,
    # 5 KV heads, tied, Llama 3 vocabulary (128,256), no bitnet.hidden_activation key (ReLU²)
    "bitnet-2b4t": dict(arch="bitnet", vocab="llama-bpe", template="meta-llama-Llama-3.1-8B-Instruct.jinja",
                        n_layer=30, n_embd=2560, n_ff=6912, n_head=20, n_head_kv=5, tied=True,
                        rope_theta=500000.0, ctx=4096, eps=1e-5, dtype="f16"),
    # Ternary-Bonsai (PrismML; Qwen3 shapes, every matrix ternary, tied but for 8B): 1.7B = Qwen3-1.7B
    # (28 layers, 2048 embd, 6144 ff, 16 heads of 128, 8 KV), 4B = Qwen3-4B (36 layers, 2560 embd,
    # 9728 ff, 32 heads of 128: q is 4096 wide), 8B = Qwen3-8B (36 layers, 4096 embd, 12288 ff, untied)
    "ternary-bonsai-1.7b": dict(arch="qwen3", vocab="qwen2", template="Qwen-Qwen3-0.6B.jinja",
                                n_layer=28, n_embd=2048, n_ff=6144, n_head=16, n_head_kv=8, head_dim=128,
                                tied=True, rope_theta=1000000.0, ctx=32768, eps=1e-6, dtype="f16"),
    "ternary-bonsai-4b": dict(arch="qwen3", vocab="qwen2", template="Qwen-Qwen3-0.6B.jinja",
                              n_layer=36, n_embd=2560, n_ff=9728, n_head=32, n_head_kv=8, head_dim=128,
                              tied=True, rope_theta=1000000.0, ctx=32768, eps=1e-6, dtype="f16"),
    "ternary-bonsai-8b": dict(arch="qwen3", vocab="qwen2", template="Qwen-Qwen3-0.6B.jinja",
                              n_layer=36, n_embd=4096, n_ff=12288, n_head=32, n_head_kv=8, head_dim=128,
                              tied=False, rope_theta=1000000.0, ctx=65536, eps=1e-6, dtype="f16"),
}

# Per-architecture defaults when no preset is given (tiny shapes, realistic constants).
ARCH_DEFAULTS = {
    "llama": dict(rope_theta=500000.0, ctx=131072, eps=1e-5, biases=False),
    "qwen2": dict(rope_theta=1000000.0, ctx=32768, eps=1e-6, biases=True),
    "gemma": dict(rope_theta=10000.0, ctx=8192, eps=1e-6, biases=False),
    "phi2": dict(rope_theta=10000.0, ctx=2048, eps=1e-5, biases=True),
    "bitnet": dict(rope_theta=500000.0, ctx=4096, eps=1e-5, biases=False),
    "qwen3": dict(rope_theta=1000000.0, ctx=40960, eps=1e-6, biases=False),
}
VOCAB_DEFAULTS = {  # Llama 2 (SentencePiece) has its own RoPE base and context
    "llama-spm": dict(rope_theta=10000.0, ctx=4096),
}
TEMPLATES = {
    "llama-bpe": "meta-llama-Llama-3.1-8B-Instruct.jinja",
    "qwen2": "Qwen-Qwen2.5-7B-Instruct.jinja",
    "llama-spm": None,  # a Llama 2 base model: no chat template
    "gpt-2": None,
}


def llama3_rope_factors(head_dim, theta, factor, low_freq_factor, high_freq_factor, orig_ctx):
    """Llama 3.1 RoPE frequency factors, exactly as llama.cpp's convert_hf_to_gguf.py
    (conversion/llama.py, LlamaModel.generate_extra_tensors) computes them: one per rotated pair."""
    freqs = 1.0 / (np.float32(theta) ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)))
    low_freq_wavelen = orig_ctx / low_freq_factor
    high_freq_wavelen = orig_ctx / high_freq_factor
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / float(freq)
        if wavelen < high_freq_wavelen:
            out.append(1.0)
        elif wavelen > low_freq_wavelen:
            out.append(factor)
        else:
            smooth = (orig_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def other_layers(w, arch, n_layer, n_embd, n_ff, n_q, n_kv, mat, norm, bias, rng):
    """The layers of gemma, phi2 and bitnet, with llama.cpp's tensor names (gguf-py MODEL_TENSORS)."""
    def scale():  # BitNet's per-tensor scale, a [1] F32 tensor multiplying the product
        return (0.5 + rng.random(1, dtype=np.float32)).astype(np.float32)

    for i in range(n_layer):
        b = f"blk.{i}"
        w.add_tensor(f"{b}.attn_norm.weight", norm(n_embd))
        if arch == "phi2":  # LayerNorm + bias; fused q,k,v (+ bias); one norm for the parallel block
            w.add_tensor(f"{b}.attn_norm.bias", bias(n_embd, 0.1))
            w.add_tensor(f"{b}.attn_qkv.weight", mat(n_q + 2 * n_kv, n_embd))
            w.add_tensor(f"{b}.attn_qkv.bias", bias(n_q + 2 * n_kv, 0.3))
            w.add_tensor(f"{b}.attn_output.weight", mat(n_embd, n_q))
            w.add_tensor(f"{b}.attn_output.bias", bias(n_embd, 0.1))
            w.add_tensor(f"{b}.ffn_up.weight", mat(n_ff, n_embd))
            w.add_tensor(f"{b}.ffn_up.bias", bias(n_ff, 0.3))
            w.add_tensor(f"{b}.ffn_down.weight", mat(n_embd, n_ff))
            w.add_tensor(f"{b}.ffn_down.bias", bias(n_embd, 0.1))
            continue
        w.add_tensor(f"{b}.attn_q.weight", mat(n_q, n_embd))
        w.add_tensor(f"{b}.attn_k.weight", mat(n_kv, n_embd))
        w.add_tensor(f"{b}.attn_v.weight", mat(n_kv, n_embd))
        w.add_tensor(f"{b}.attn_output.weight", mat(n_embd, n_q))
        w.add_tensor(f"{b}.ffn_norm.weight", norm(n_embd))
        w.add_tensor(f"{b}.ffn_gate.weight", mat(n_ff, n_embd))
        w.add_tensor(f"{b}.ffn_up.weight", mat(n_ff, n_embd))
        w.add_tensor(f"{b}.ffn_down.weight", mat(n_embd, n_ff))
        if arch == "bitnet":
            w.add_tensor(f"{b}.attn_sub_norm.weight", norm(n_q))
            w.add_tensor(f"{b}.ffn_sub_norm.weight", norm(n_ff))
            for t in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
                w.add_tensor(f"{b}.{t}.scale", scale())


def copy_tokenizer(writer, gguf, vocab_path, skip=()):
    """Copies every tokenizer.* key of a llama.cpp vocabulary file with its exact GGUF type."""
    r = gguf.GGUFReader(vocab_path)
    n_vocab = None
    for key, field in r.fields.items():
        if not key.startswith("tokenizer.") or key in skip:
            continue
        vtype = gguf.GGUFValueType(field.types[0])
        sub = gguf.GGUFValueType(field.types[-1]) if vtype == gguf.GGUFValueType.ARRAY else None
        val = field.contents()
        if isinstance(val, np.generic):
            val = val.item()
        writer.add_key_value(key, val, vtype, sub_type=sub)
        if key == "tokenizer.ggml.tokens":
            n_vocab = len(val)
    if n_vocab is None:
        sys.exit(f"gen-arch-model: {vocab_path} has no tokenizer.ggml.tokens")
    return n_vocab


def read_header(path):
    """A GGUF file's metadata {key: value, or "<array of N>"} and tensor table {name: type id}.
    Much faster than gguf.GGUFReader, which materialises every vocabulary string."""
    import struct
    scalar = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUFValueType sizes
    with open(path, "rb") as f:
        buf = f.read(64 << 20)
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        pos += n
        return buf[pos - n:pos].decode("utf-8")

    fmts = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def skip_value(t):  # scalars and short strings: their value; arrays: their length
        nonlocal pos
        if t == 8:
            v = string()
            return v if len(v) <= 80 else f"<{len(v)} characters>"
        elif t == 9:
            sub, n = take("I"), take("Q")
            if sub == 8:
                for _ in range(n):
                    m = take("Q")  # (not `pos += take(...)`: take moves pos itself)
                    pos += m
            else:
                pos += scalar[sub] * n
            return f"<array of {n}>"
        return take(fmts[t])

    if buf[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    pos = 4
    take("I")  # version
    n_tensors, n_kv = take("Q"), take("Q")
    keys = {}
    for _ in range(n_kv):
        k = string()
        keys[k] = skip_value(take("I"))
    tensors = {}
    for _ in range(n_tensors):
        name = string()
        nd = take("I")
        pos += 8 * nd
        tensors[name] = take("I")
        take("Q")  # offset
    return keys, tensors


def write_manifest(gguf, list_path, out_path):
    """manifest.json from lines "name arch vocab variant base": each file's tensor types and names."""
    import json
    d = os.path.dirname(list_path)
    entries = []
    for line in open(list_path, encoding="utf-8"):
        if not line.strip():
            continue
        name, arch, vocab, variant, base, *flags = line.split()
        path = os.path.join(d, name + ".gguf")
        keys, tids = read_header(path)
        tensors = {n: gguf.GGMLQuantizationType(t).name for n, t in tids.items()}
        e = dict(name=name, file=name + ".gguf", arch=arch, vocab=vocab, variant=variant, base=base + ".gguf",
                 bytes=os.path.getsize(path), types=sorted(set(tensors.values())),
                 tied="output.weight" not in tensors, rope_freqs="rope_freqs.weight" in tensors,
                 n_vocab=int(keys["tokenizer.ggml.tokens"].split()[-1][:-1]), keys=keys, tensors=tensors)
        if "ref-only" in flags:  # no llama.cpp oracle: compared with the float64 reference only
            e["ref_only"] = True
        tok = os.path.join(d, name + ".tokens.json")
        if os.path.exists(tok) and os.path.exists(os.path.join(d, name + ".llama.f32")):
            e["tokens"] = json.load(open(tok, encoding="utf-8"))["tokens"]
            e["oracle"] = name + ".llama.f32"
        entries.append(e)
    tmp = out_path + f".tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"files": entries}, f, indent=1)
        f.write("\n")
    os.replace(tmp, out_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", metavar="LIST",
                    help="write manifest.json (-o) from a list of 'name arch vocab variant base' lines")
    ap.add_argument("--llama-src", default=os.environ.get("ONEBIT_LLAMA_SRC", "build/llama.cpp"),
                    help="llama.cpp source tree (tools/llama-src.sh prints it)")
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--arch", choices=["llama", "qwen2", "qwen3", "gemma", "phi2", "bitnet"])
    ap.add_argument("--vocab", choices=["llama-bpe", "llama-spm", "qwen2", "gpt-2"])
    ap.add_argument("--template", help="file name under models/templates/ ('none' for no template)")
    ap.add_argument("--n-layer", type=int)
    ap.add_argument("--n-embd", type=int)
    ap.add_argument("--n-ff", type=int)
    ap.add_argument("--n-head", type=int)
    ap.add_argument("--n-head-kv", type=int)
    ap.add_argument("--head-dim", type=int, help="attention.key_length (default n_embd / n_head)")
    ap.add_argument("--n-rot", type=int, help="rope.dimension_count (default the head dimension)")
    ap.add_argument("--hidden-act", help="bitnet.hidden_activation (relu2 or silu; default: no key)")
    ap.add_argument("--tied", dest="tied", action="store_true", default=None,
                    help="no output.weight: the output matrix is token_embd")
    ap.add_argument("--untied", dest="tied", action="store_false")
    ap.add_argument("--biases", dest="biases", action="store_true", default=None, help="q/k/v biases")
    ap.add_argument("--no-biases", dest="biases", action="store_false")
    ap.add_argument("--rope-freqs", action="store_true", default=None,
                    help="rope_freqs.weight: Llama 3.1 RoPE frequency factors")
    ap.add_argument("--rope-factor", type=float, help="Llama 3.1 rope_scaling.factor (default 8)")
    ap.add_argument("--rope-orig-ctx", type=int,
                    help="rope_scaling.original_max_position_embeddings (default 8192; a small value "
                         "makes the factors matter within a few dozen positions)")
    ap.add_argument("--rope-theta", type=float)
    ap.add_argument("--ctx", type=int, help="context_length (training context)")
    ap.add_argument("--eps", type=float, help="RMSNorm epsilon")
    ap.add_argument("--dtype", choices=["f32", "f16"], help="type of the 2-D tensors (default f32)")
    ap.add_argument("--emb-std", type=float, help="token_embd std (default 0.7 untied, 0.55 tied)")
    ap.add_argument("--logit-std", type=float, default=4.0, help="the logits' approximate std (default 4)")
    ap.add_argument("--pooling", choices=["mean", "cls", "last"],
                    help="<arch>.pooling_type: an embedding model (as Qwen3-Embedding's file carries 'last')")
    ap.add_argument("--name", help="general.name")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    if a.manifest:
        sys.path.insert(0, os.path.join(a.llama_src, "gguf-py"))
        import gguf  # noqa: E402
        write_manifest(gguf, a.manifest, a.out)
        return

    cfg = dict(n_layer=2, n_embd=256, n_ff=768, n_head=4, n_head_kv=2, tied=True, rope_freqs=False,
               rope_factor=8.0, rope_orig_ctx=8192, dtype="f32", template=None)
    if a.preset:
        cfg.update(PRESETS[a.preset])
    arch = a.arch or cfg.get("arch")
    vocab = a.vocab or cfg.get("vocab")
    if not arch or not vocab:
        ap.error("--arch and --vocab (or --preset) are required")
    cfg.setdefault("template", None)
    for k, v in ARCH_DEFAULTS[arch].items():
        cfg.setdefault(k, v)
    if not a.preset:
        cfg.update(VOCAB_DEFAULTS.get(vocab, {}))
        cfg["template"] = TEMPLATES[vocab]
    for k in ["template", "n_layer", "n_embd", "n_ff", "n_head", "n_head_kv", "head_dim", "tied", "biases", "rope_freqs",
              "rope_factor", "rope_orig_ctx", "rope_theta", "ctx", "eps", "dtype"]:
        v = getattr(a, k)
        if v is not None:
            cfg[k] = v
    if cfg["template"] == "none":
        cfg["template"] = None
    if cfg["rope_freqs"] and arch != "llama":
        ap.error("rope_freqs.weight is a llama-architecture tensor")

    sys.path.insert(0, os.path.join(a.llama_src, "gguf-py"))
    import gguf  # noqa: E402  (llama.cpp's own GGUF writer)

    n_layer, n_embd, n_ff = cfg["n_layer"], cfg["n_embd"], cfg["n_ff"]
    n_head, n_head_kv = cfg["n_head"], cfg["n_head_kv"]
    if (n_embd % n_head and not cfg.get("head_dim")) or n_head % n_head_kv:
        ap.error("n_embd must be a multiple of n_head, and n_head of n_head_kv")
    head_dim = cfg.get("head_dim") or n_embd // n_head
    n_rot = a.n_rot or head_dim
    if arch in ("phi2", "bitnet") and head_dim * n_head != n_embd:
        ap.error(f"llama.cpp's {arch} needs n_head * head_dim == n_embd")
    wdt = np.float16 if cfg["dtype"] == "f16" else np.float32

    tmp = a.out + f".tmp.{os.getpid()}"  # a private name: nothing sees a half-written model
    w = gguf.GGUFWriter(tmp, arch)  # writes general.architecture
    K = gguf.Keys
    w.add_string(K.General.NAME, a.name or a.preset or f"onebit-test-{arch}-{vocab}")
    w.add_uint32(K.LLM.BLOCK_COUNT.format(arch=arch), n_layer)
    w.add_uint32(K.LLM.CONTEXT_LENGTH.format(arch=arch), cfg["ctx"])
    w.add_uint32(K.LLM.EMBEDDING_LENGTH.format(arch=arch), n_embd)
    w.add_uint32(K.LLM.FEED_FORWARD_LENGTH.format(arch=arch), n_ff)
    w.add_uint32(K.Attention.HEAD_COUNT.format(arch=arch), n_head)
    w.add_uint32(K.Attention.HEAD_COUNT_KV.format(arch=arch), n_head_kv)
    w.add_float32(K.Rope.FREQ_BASE.format(arch=arch), cfg["rope_theta"])
    if arch == "phi2":
        w.add_float32(K.Attention.LAYERNORM_EPS.format(arch=arch), cfg["eps"])
    else:
        w.add_float32(K.Attention.LAYERNORM_RMS_EPS.format(arch=arch), cfg["eps"])
    w.add_uint32(K.General.FILE_TYPE, int(gguf.LlamaFileType.MOSTLY_F16 if wdt == np.float16 else gguf.LlamaFileType.ALL_F32))

    vocab_path = os.path.join(a.llama_src, "models", f"ggml-vocab-{vocab}.gguf")
    # (the qwen2 vocabulary file has an older Qwen template: the chosen one replaces it)
    n_vocab = copy_tokenizer(w, gguf, vocab_path, skip={K.Tokenizer.CHAT_TEMPLATE} if cfg["template"] else ())
    if arch in ("llama", "bitnet"):  # convert_hf_to_gguf.py writes these two for LlamaModel (and BitNet's subclass)
        w.add_uint32(K.LLM.VOCAB_SIZE.format(arch=arch), n_vocab)
        w.add_uint32(K.Rope.DIMENSION_COUNT.format(arch=arch), n_rot)
    if arch == "gemma":  # GemmaModel: key and value length (256 in Gemma 2B, not n_embd / n_head)
        w.add_uint32(K.Attention.KEY_LENGTH.format(arch=arch), head_dim)
        w.add_uint32(K.Attention.VALUE_LENGTH.format(arch=arch), head_dim)
    if arch == "phi2":  # Phi2Model: partial rotary; LayerNorm epsilon (not the RMS key)
        w.add_uint32(K.Rope.DIMENSION_COUNT.format(arch=arch), n_rot)
    if arch == "bitnet" and a.hidden_act:
        w.add_string(K.LLM.HIDDEN_ACT.format(arch=arch), a.hidden_act)
    if arch == "qwen3":  # convert_hf_to_gguf.py writes head_dim for Qwen3 (it need not be n_embd/n_head)
        w.add_uint32(K.Attention.KEY_LENGTH.format(arch=arch), head_dim)
        w.add_uint32(K.Attention.VALUE_LENGTH.format(arch=arch), head_dim)
    if a.pooling:  # llama.cpp's enum llama_pooling_type: 1 mean, 2 cls, 3 last
        w.add_uint32(K.LLM.POOLING_TYPE.format(arch=arch), {"mean": 1, "cls": 2, "last": 3}[a.pooling])
    if cfg["template"]:
        with open(os.path.join(a.llama_src, "models", "templates", cfg["template"]), encoding="utf-8") as f:
            w.add_key_value(K.Tokenizer.CHAT_TEMPLATE, f.read(), gguf.GGUFValueType.STRING)

    rng = np.random.default_rng(a.seed)
    # The current token's own logit grows with the embedding's share of the residual stream (and is
    # 0.8x as large untied): these keep the softmax peaked on it (~0.9) without saturating.
    emb_std = a.emb_std if a.emb_std is not None else (0.55 if cfg["tied"] else 0.7)
    if arch == "gemma":  # its embeddings are multiplied by sqrt(n_embd) on the way in
        emb_std /= math.sqrt(n_embd)
    out_gain = a.logit_std / (math.sqrt(n_embd) * emb_std)  # output_norm's scale

    def mat(n_out, n_in, std=None):  # GGUF shape {n_in, n_out}
        s = std if std is not None else 1.0 / math.sqrt(n_in)
        return (rng.standard_normal((n_out, n_in), dtype=np.float32) * np.float32(s)).astype(wdt)

    def norm(n, gain=1.0):
        return (gain * (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32))).astype(np.float32)

    def bias(n, std):
        return (std * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    T = gguf.TENSOR_NAMES
    M = gguf.MODEL_TENSOR
    # The same tensors are drawn in the same order whatever the options, so that two files that differ
    # only in rope_freqs.weight (or in the output matrix) share all their other weights.
    emb = rng.standard_normal((n_vocab, n_embd), dtype=np.float32) * np.float32(emb_std)
    w.add_tensor(T[M.TOKEN_EMBD] + ".weight", emb.astype(wdt))
    w.add_tensor(T[M.OUTPUT_NORM] + ".weight", norm(n_embd, out_gain))
    n_kv, n_q = head_dim * n_head_kv, head_dim * n_head
    if arch in ("gemma", "phi2", "bitnet"):
        other_layers(w, arch, n_layer, n_embd, n_ff, head_dim * n_head, n_kv, mat, norm, bias, rng)
    if arch == "phi2":
        w.add_tensor(T[M.OUTPUT_NORM] + ".bias", bias(n_embd, 0.1))
        w.add_tensor(T[M.OUTPUT] + ".bias", bias(n_vocab, 0.5))
    for i in range(n_layer if arch in ("llama", "qwen2", "qwen3") else 0):
        b = T[M.ATTN_NORM].format(bid=i).rsplit(".", 1)[0]  # "blk.{i}"
        w.add_tensor(f"{b}.attn_norm.weight", norm(n_embd))
        w.add_tensor(f"{b}.attn_q.weight", mat(n_q, n_embd))
        w.add_tensor(f"{b}.attn_k.weight", mat(n_kv, n_embd))
        w.add_tensor(f"{b}.attn_v.weight", mat(n_kv, n_embd))
        if cfg["biases"]:
            w.add_tensor(f"{b}.attn_q.bias", bias(n_embd, 0.5))
            w.add_tensor(f"{b}.attn_k.bias", bias(n_kv, 0.5))
            w.add_tensor(f"{b}.attn_v.bias", bias(n_kv, 0.2))
        if cfg["biases"] and n_q != n_embd:
            ap.error("q/k/v biases with n_head * head_dim != n_embd")
        if arch == "qwen3":  # per-head RMSNorm of q and k before RoPE
            w.add_tensor(f"{b}.attn_q_norm.weight", norm(head_dim))
            w.add_tensor(f"{b}.attn_k_norm.weight", norm(head_dim))
        w.add_tensor(f"{b}.attn_output.weight", mat(n_embd, n_q))
        w.add_tensor(f"{b}.ffn_norm.weight", norm(n_embd))
        w.add_tensor(f"{b}.ffn_gate.weight", mat(n_ff, n_embd))
        w.add_tensor(f"{b}.ffn_up.weight", mat(n_ff, n_embd))
        w.add_tensor(f"{b}.ffn_down.weight", mat(n_embd, n_ff))
    if not cfg["tied"]:
        out = emb * np.float32(0.8) + rng.standard_normal((n_vocab, n_embd), dtype=np.float32) * np.float32(0.6 * emb_std)
        w.add_tensor(T[M.OUTPUT] + ".weight", out.astype(wdt))
    if cfg["rope_freqs"]:
        w.add_tensor(T[M.ROPE_FREQS] + ".weight",
                     llama3_rope_factors(head_dim, cfg["rope_theta"], cfg["rope_factor"], 1.0, 4.0,
                                         cfg["rope_orig_ctx"]))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
