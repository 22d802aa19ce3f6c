#!/usr/bin/env python3
"""wg_gen.py — test data for the WebGPU generic plan (tests/webgpu-generic.test.mjs), made with
llama.cpp's gguf-py (tools/llama-src.sh) and numpy, independent of onebit's C code.

  wg_gen.py vectors OUT.bin          random blocks of every weight type with their dequantised values
  wg_gen.py model OUT.gguf ARCH TYPE [rope_freqs] [tied]
                                     a tiny random-weight model (ARCH llama, qwen2 or qwen3; TYPE f32, f16,
                                     bf16, q8_0, q4_0, q4_1, q5_0, q5_1: every matrix in that type)

vectors: for each type a record {name, type id, rows, cols, block bytes, dequantised floats}.
Types gguf-py quantises (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, BF16, F16) are quantised from random
floats, and so are TQ1_0 and TQ2_0; the K types (gguf-py only dequantises them) are random bytes with
sane f16 scales, decoded by gguf-py; Q1_0 and Q2_0 (gguf-py has no codec for them) are random bytes
decoded here from llama.cpp's dequantize_row_q1_0 / _q2_0 (ggml-quants.c). Output format (little-endian): u32 count, then per record u32 name length, name, u32
type, rows, cols, nbytes, the bytes (padded to 4), rows*cols f32.
"""
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'build', 'llama.cpp', 'gguf-py'))
if os.environ.get('ONEBIT_LLAMA_SRC'):
    sys.path.insert(0, os.path.join(os.environ['ONEBIT_LLAMA_SRC'], 'gguf-py'))
import gguf  # noqa: E402
from gguf import quants  # noqa: E402

Q = gguf.GGMLQuantizationType
Q1_0 = 41
Q2_0 = 42


def f16_bits(rng, n, lo=-6, hi=-3):
    """n f16 scales of random sign with exponent in [2^lo, 2^hi)."""
    e = rng.integers(15 + lo, 15 + hi, n)
    m = rng.integers(0, 1024, n)
    s = rng.integers(0, 2, n)
    return ((s << 15) | (e << 10) | m).astype(np.uint16)


def random_k_blocks(rng, qt, nblocks):
    """Random valid K-quant blocks: random quant bytes, positive f16 d / dmin of sane size."""
    bs = {Q.Q2_K: 84, Q.Q3_K: 110, Q.Q4_K: 144, Q.Q5_K: 176, Q.Q6_K: 210}[qt]
    b = rng.integers(0, 256, (nblocks, bs), dtype=np.uint8)
    if qt == Q.Q2_K:  # scales[16], qs[64], f16 d, f16 dmin
        b[:, 80:82] = (f16_bits(rng, nblocks, -9, -6) & 0x7fff).view(np.uint8).reshape(-1, 2)
        b[:, 82:84] = (f16_bits(rng, nblocks, -9, -6) & 0x7fff).view(np.uint8).reshape(-1, 2)
    elif qt == Q.Q3_K:  # hmask[32], qs[64], scales[12], f16 d
        b[:, 108:110] = f16_bits(rng, nblocks, -9, -6).view(np.uint8).reshape(-1, 2)
    elif qt in (Q.Q4_K, Q.Q5_K):
        d = f16_bits(rng, nblocks, -9, -6) & 0x7fff
        dm = f16_bits(rng, nblocks, -9, -6) & 0x7fff
        b[:, 0:2] = d.view(np.uint8).reshape(-1, 2)
        b[:, 2:4] = dm.view(np.uint8).reshape(-1, 2)
    else:
        d = f16_bits(rng, nblocks, -12, -9)
        b[:, 208:210] = d.view(np.uint8).reshape(-1, 2)
    return b


def q1_dequant(b):
    d = b[:, 0:2].copy().view(np.float16).astype(np.float32).reshape(-1, 1)
    bits = np.unpackbits(b[:, 2:18], axis=1, bitorder='little').astype(np.float32)
    return (bits * 2 - 1) * d


def q2_dequant(b):
    """Q2_0 blocks (18 bytes: f16 d, 16 bytes of 2-bit codes, element j at bits 2 (j % 4) of byte
    j / 4) to (code - 1) * d."""
    d = b[:, 0:2].copy().view(np.float16).astype(np.float32).reshape(-1, 1)
    codes = (b[:, 2:18, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)) & 3
    return (codes.reshape(len(b), 64).astype(np.float32) - 1) * d


def vectors(out):
    rng = np.random.default_rng(7)
    rows = 12
    recs = []
    for name, qt, cols in [('f32', Q.F32, 64), ('f16', Q.F16, 64), ('bf16', Q.BF16, 64), ('q8_0', Q.Q8_0, 96),
                           ('q4_0', Q.Q4_0, 96), ('q4_1', Q.Q4_1, 96), ('q5_0', Q.Q5_0, 96), ('q5_1', Q.Q5_1, 96),
                           ('q2_K', Q.Q2_K, 512), ('q3_K', Q.Q3_K, 512), ('q4_K', Q.Q4_K, 512), ('q5_K', Q.Q5_K, 512), ('q6_K', Q.Q6_K, 512), ('q1_0', Q1_0, 256),
                           ('q2_0', Q2_0, 192), ('tq1_0', Q.TQ1_0, 512), ('tq2_0', Q.TQ2_0, 512)]:
        if qt == Q2_0:
            nb = rows * cols // 64
            b = rng.integers(0, 256, (nb, 18), dtype=np.uint8)
            b[:, 0:2] = f16_bits(rng, nb).view(np.uint8).reshape(-1, 2)
            vals = q2_dequant(b).reshape(rows, cols)
            raw = b.reshape(rows, -1)
        elif qt == Q1_0:
            nb = rows * cols // 128
            b = rng.integers(0, 256, (nb, 18), dtype=np.uint8)
            b[:, 0:2] = f16_bits(rng, nb).view(np.uint8).reshape(-1, 2)
            vals = q1_dequant(b).reshape(rows, cols)
            raw = b.reshape(rows, -1)
        elif qt in (Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K):
            raw = random_k_blocks(rng, qt, rows * cols // 256).reshape(rows, -1)
            vals = quants.dequantize(raw, qt).reshape(rows, cols)
        elif qt == Q.F32:
            vals = rng.uniform(-1, 1, (rows, cols)).astype(np.float32)
            raw = vals.view(np.uint8)
        elif qt == Q.F16:
            vals = rng.uniform(-1, 1, (rows, cols)).astype(np.float16)
            raw = vals.view(np.uint8)
            vals = vals.astype(np.float32)
        else:
            x = rng.uniform(-1, 1, (rows, cols)).astype(np.float32)
            raw = quants.quantize(x, qt)
            vals = quants.dequantize(raw, qt).reshape(rows, cols)
        recs.append((name, int(qt), rows, cols, np.ascontiguousarray(raw).tobytes(),
                     np.ascontiguousarray(vals, dtype=np.float32).tobytes()))
    with open(out, 'wb') as f:
        f.write(struct.pack('<I', len(recs)))
        for name, t, r, c, raw, vals in recs:
            f.write(struct.pack('<I', len(name)) + name.encode())
            f.write(struct.pack('<IIII', t, r, c, len(raw)))
            f.write(raw + b'\0' * (-len(raw) % 4))
            f.write(vals)


def byte_tokens():
    """GPT-2's bytes_to_unicode: the 256 byte-level tokens."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def model(out, arch, tname, extra):
    rng = np.random.default_rng(abs(hash((arch, tname, tuple(extra)))) % (1 << 32))
    qt = {'f32': Q.F32, 'f16': Q.F16, 'bf16': Q.BF16, 'q8_0': Q.Q8_0, 'q4_0': Q.Q4_0, 'q4_1': Q.Q4_1,
          'q5_0': Q.Q5_0, 'q5_1': Q.Q5_1}[tname]
    E, NL, NH, NKV, HD, F = 64, 2, 4, 2, 32, 128
    toks = byte_tokens() + ['Ġt', 'he', '<|endoftext|>']
    V = len(toks)
    w = gguf.GGUFWriter(out, arch)
    w.add_name(f'wg-{arch}-{tname}')
    w.add_context_length(256)
    w.add_embedding_length(E)
    w.add_block_count(NL)
    w.add_feed_forward_length(F)
    w.add_head_count(NH)
    w.add_head_count_kv(NKV)
    w.add_key_length(HD)
    w.add_value_length(HD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model('gpt2')
    w.add_tokenizer_pre('qwen2')
    w.add_token_list(toks)
    w.add_token_types([1] * 258 + [3])
    w.add_token_merges(['Ġ t', 'h e'])
    w.add_eos_token_id(V - 1)
    w.add_bos_token_id(V - 1)

    def mat(name, rows, cols, scale=None):
        x = rng.normal(0, scale or 1 / np.sqrt(cols), (rows, cols)).astype(np.float32)
        if qt == Q.F32:
            w.add_tensor(name, x)
        elif qt == Q.F16:
            w.add_tensor(name, x.astype(np.float16))
        else:
            w.add_tensor(name, quants.quantize(x, qt), raw_dtype=qt)

    def vec(name, n, mean=1.0, sd=0.1):
        w.add_tensor(name, (mean + rng.normal(0, sd, n)).astype(np.float32))

    mat('token_embd.weight', V, E, 1.0)
    vec('output_norm.weight', E)
    if 'tied' not in extra:
        mat('output.weight', V, E)
    if 'rope_freqs' in extra:
        w.add_tensor('rope_freqs.weight', rng.uniform(1.0, 8.0, HD // 2).astype(np.float32))
    for l in range(NL):
        p = f'blk.{l}.'
        vec(p + 'attn_norm.weight', E)
        mat(p + 'attn_q.weight', NH * HD, E)
        mat(p + 'attn_k.weight', NKV * HD, E)
        mat(p + 'attn_v.weight', NKV * HD, E)
        if arch == 'qwen2':
            vec(p + 'attn_q.bias', NH * HD, 0.0, 0.5)
            vec(p + 'attn_k.bias', NKV * HD, 0.0, 0.5)
            vec(p + 'attn_v.bias', NKV * HD, 0.0, 0.5)
        if arch == 'qwen3':
            vec(p + 'attn_q_norm.weight', HD)
            vec(p + 'attn_k_norm.weight', HD)
        mat(p + 'attn_output.weight', E, NH * HD)
        vec(p + 'ffn_norm.weight', E)
        mat(p + 'ffn_gate.weight', F, E)
        mat(p + 'ffn_up.weight', F, E)
        mat(p + 'ffn_down.weight', E, F)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == '__main__':
    if sys.argv[1] == 'vectors':
        vectors(sys.argv[2])
    else:
        model(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
