#!/usr/bin/env python3
"""hf_checkpoint.py — a small random Hugging Face checkpoint folder, and the GGUF of the same arrays.

For tests/convert.test.mjs. Writes DIR/config.json, the weights as safetensors (written here from
the format's published layout: an 8-byte little-endian header size, a JSON header of dtype, shape
and data_offsets, then the bytes; split into two shards with model.safetensors.index.json), and
copies tokenizer.json / tokenizer_config.json. Then writes REF.gguf with llama.cpp's gguf-py from
the same arrays, renamed and laid out the way llama.cpp's convert_hf_to_gguf.py does (Llama's q/k
rows permuted to GGUF's RoPE pair order, Llama 3.1 RoPE factors as rope_freqs.weight), with the
tokenizer keys of llama.cpp's own vocabulary file for the same tokenizer. onebit's converter must
give the same logits as REF.gguf.

  python3 tests/hf_checkpoint.py --llama-src DIR --arch qwen3|llama|phi2 --tokenizer-dir D \
      --vocab-gguf models/ggml-vocab-qwen2.gguf --out CKPT_DIR --ref REF.gguf
"""
import argparse
import json
import math
import os
import shutil
import sys

import numpy as np

DT = {"f32": (np.float32, "F32"), "f16": (np.float16, "F16"), "bf16": (None, "BF16")}


def to_bytes(a, dtype):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "f32":
        return a.astype("<f4").tobytes()
    if dtype == "f16":
        return a.astype("<f2").tobytes()
    # bf16: round to nearest even on the upper 16 bits
    u = a.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
    return r.tobytes()


def from_stored(a, dtype):
    """The float32 values a reader of the stored bytes sees."""
    b = np.frombuffer(to_bytes(a, dtype), dtype={"f32": "<f4", "f16": "<f2", "bf16": "<u2"}[dtype])
    if dtype == "bf16":
        return (b.astype(np.uint32) << 16).view(np.float32).reshape(a.shape)
    return b.astype(np.float32).reshape(a.shape)


def write_safetensors(path, tensors, dtype):
    header, blobs, off = {}, [], 0
    for name, a in tensors:
        b = to_bytes(a, dtype)
        header[name] = {"dtype": DT[dtype][1], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_kvs(path, prefix):
    """The key-value pairs of a GGUF file whose keys start with prefix (a plain reader: gguf-py's
    takes a minute over a vocabulary of 150k tokens)."""
    import struct
    sizes = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    with open(path, "rb") as f:
        buf = f.read()
    pos = 4

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def text():
        nonlocal pos
        n = take("Q")
        v = buf[pos:pos + n].decode("utf-8")
        pos += n
        return v

    def value(t):
        if t == 8:
            return text()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(sizes[t])

    take("I")
    take("Q")
    n_kv = take("Q")
    out = {}
    for _ in range(n_kv):
        k = text()
        v = value(take("I"))
        if k.startswith(prefix):
            out[k] = v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-src", required=True)
    ap.add_argument("--arch", choices=["qwen3", "llama", "phi2"], required=True)
    ap.add_argument("--tokenizer-dir", required=True, help="folder with tokenizer.json and tokenizer_config.json")
    ap.add_argument("--vocab-gguf", required=True, help="llama.cpp's vocabulary GGUF of the same tokenizer")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f16")
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(a.llama_src, "gguf-py"))
    import gguf

    vocab = read_kvs(a.vocab_gguf, "tokenizer.")
    n_vocab = len(vocab["tokenizer.ggml.tokens"])
    rng = np.random.default_rng(a.seed)
    E, L, H, HKV, HD = a.n_embd, 2, 4, 2, a.n_embd // 4
    FF = 2 * E
    arch = a.arch
    cfg = dict(hidden_size=E, intermediate_size=FF, num_hidden_layers=L, num_attention_heads=H,
               num_key_value_heads=HKV, max_position_embeddings=4096, vocab_size=n_vocab, rope_theta=1e6,
               torch_dtype={"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[a.dtype])
    if arch == "qwen3":
        cfg.update(architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=HD, rms_norm_eps=1e-6,
                   tie_word_embeddings=True)
    elif arch == "llama":
        cfg.update(architectures=["LlamaForCausalLM"], model_type="llama", rms_norm_eps=1e-5, rope_theta=500000.0,
                   tie_word_embeddings=False,
                   rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                     original_max_position_embeddings=64))
    else:
        cfg.update(architectures=["PhiForCausalLM"], model_type="phi", layer_norm_eps=1e-5, partial_rotary_factor=0.5,
                   rope_theta=10000.0, tie_word_embeddings=False)

    def mat(o, i):
        return rng.standard_normal((o, i)).astype(np.float32) / math.sqrt(i)

    def vec(n, base=0.0, sd=0.1):
        return (base + sd * rng.standard_normal(n)).astype(np.float32)

    hf, gg = [], []  # (name, array as stored in HF) and (gguf name, float32 array as GGUF holds it)

    def add(hname, gname, arr, perm_heads=0):
        hf.append((hname, arr))
        v = from_stored(arr, a.dtype) if arr.ndim == 2 else from_stored(arr, a.dtype)
        if perm_heads:  # convert_hf_to_gguf's permute: rows (h, 2, hd/2) -> (h, hd/2, 2)
            sh = v.shape
            v = v.reshape(perm_heads, 2, sh[0] // perm_heads // 2, *sh[1:]).swapaxes(1, 2).reshape(sh)
        gg.append((gname, v))

    emb = (0.6 * rng.standard_normal((n_vocab, E))).astype(np.float32)
    add("model.embed_tokens.weight", "token_embd.weight", emb)
    for l in range(L):
        p, b = f"model.layers.{l}.", f"blk.{l}."
        add(p + "input_layernorm.weight", b + "attn_norm.weight", vec(E, 1.0))
        perm = arch == "llama"
        add(p + "self_attn.q_proj.weight", b + "attn_q.weight", mat(H * HD, E), H if perm else 0)
        add(p + "self_attn.k_proj.weight", b + "attn_k.weight", mat(HKV * HD, E), HKV if perm else 0)
        add(p + "self_attn.v_proj.weight", b + "attn_v.weight", mat(HKV * HD, E))
        if arch == "qwen3":
            add(p + "self_attn.q_norm.weight", b + "attn_q_norm.weight", vec(HD, 1.0))
            add(p + "self_attn.k_norm.weight", b + "attn_k_norm.weight", vec(HD, 1.0))
        if arch == "phi2":
            add(p + "input_layernorm.bias", b + "attn_norm.bias", vec(E))
            for n in ("q", "k", "v"):
                add(p + f"self_attn.{n}_proj.bias", b + f"attn_{n}.bias", vec((H if n == "q" else HKV) * HD))
            add(p + "self_attn.dense.weight", b + "attn_output.weight", mat(E, H * HD))
            add(p + "self_attn.dense.bias", b + "attn_output.bias", vec(E))
            add(p + "mlp.fc1.weight", b + "ffn_up.weight", mat(FF, E))
            add(p + "mlp.fc1.bias", b + "ffn_up.bias", vec(FF))
            add(p + "mlp.fc2.weight", b + "ffn_down.weight", mat(E, FF))
            add(p + "mlp.fc2.bias", b + "ffn_down.bias", vec(E))
        else:
            add(p + "self_attn.o_proj.weight", b + "attn_output.weight", mat(E, H * HD))
            add(p + "post_attention_layernorm.weight", b + "ffn_norm.weight", vec(E, 1.0))
            add(p + "mlp.gate_proj.weight", b + "ffn_gate.weight", mat(FF, E))
            add(p + "mlp.up_proj.weight", b + "ffn_up.weight", mat(FF, E))
            add(p + "mlp.down_proj.weight", b + "ffn_down.weight", mat(E, FF))
    if arch == "phi2":
        add("model.final_layernorm.weight", "output_norm.weight", vec(E, 1.0))
        add("model.final_layernorm.bias", "output_norm.bias", vec(E))
        add("lm_head.weight", "output.weight", 0.8 * emb + 0.3 * mat(n_vocab, E))
        add("lm_head.bias", "output.bias", vec(n_vocab))
    else:
        add("model.norm.weight", "output_norm.weight", vec(E, 1.0))
        if arch == "llama":
            add("lm_head.weight", "output.weight", 0.8 * emb + 0.3 * mat(n_vocab, E))

    # the checkpoint folder
    os.makedirs(a.out, exist_ok=True)
    half = len(hf) // 2
    shards = [("model-00001-of-00002.safetensors", hf[:half]), ("model-00002-of-00002.safetensors", hf[half:])]
    wm = {}
    for fname, ts in shards:
        write_safetensors(os.path.join(a.out, fname), ts, a.dtype)
        wm.update({n: fname for n, _ in ts})
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": wm}, f)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    for n in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(a.tokenizer_dir, n), os.path.join(a.out, n))

    # the reference GGUF
    w = gguf.GGUFWriter(a.ref, arch)
    w.add_name("ref")
    w.add_block_count(L)
    w.add_context_length(4096)
    w.add_embedding_length(E)
    w.add_feed_forward_length(FF)
    w.add_head_count(H)
    w.add_head_count_kv(HKV)
    w.add_rope_freq_base(cfg["rope_theta"])
    if arch == "phi2":
        w.add_layer_norm_eps(cfg["layer_norm_eps"])
        w.add_rope_dimension_count(int(HD * cfg["partial_rotary_factor"]))
    else:
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    if arch == "qwen3":
        w.add_key_length(HD)
        w.add_value_length(HD)
    if arch == "llama":
        w.add_rope_dimension_count(HD)
        rs = cfg["rope_scaling"]
        base, dim = cfg["rope_theta"], HD
        freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
        lo_wl = rs["original_max_position_embeddings"] / rs["low_freq_factor"]
        hi_wl = rs["original_max_position_embeddings"] / rs["high_freq_factor"]
        fac = []
        for fr in freqs:
            wl = 2 * math.pi / fr
            if wl < hi_wl:
                fac.append(1.0)
            elif wl > lo_wl:
                fac.append(rs["factor"])
            else:
                s = (rs["original_max_position_embeddings"] / wl - rs["low_freq_factor"]) / (
                    rs["high_freq_factor"] - rs["low_freq_factor"])
                fac.append(1 / ((1 - s) / rs["factor"] + s))
        gg.append(("rope_freqs.weight", np.array(fac, dtype=np.float32)))
    w.add_tokenizer_model(vocab["tokenizer.ggml.model"])
    w.add_tokenizer_pre(vocab["tokenizer.ggml.pre"])
    w.add_token_list(vocab["tokenizer.ggml.tokens"])
    w.add_token_merges(vocab["tokenizer.ggml.merges"])
    w.add_token_types(vocab["tokenizer.ggml.token_type"])
    qt = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
          "bf16": gguf.GGMLQuantizationType.BF16}[a.dtype]
    for name, v in gg:
        if v.ndim == 2:
            w.add_tensor(name, gguf.quants.quantize(v, qt), raw_dtype=qt)
        else:
            w.add_tensor(name, v.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
