#!/usr/bin/env python3
"""quants.py — reference rows of every weight type onebit runs, made by llama.cpp's gguf-py.

Writes OUT (a little binary file read by tests/quant_driver.c) with, per case, the packed bytes of
one row, gguf-py's dequantised floats of that row, an activation vector x, and the float64 dot
product sum(deq * x). Two kinds of rows per type:
  - "quantised": random Gaussian rows (several magnitudes) through gguf-py's quantize(), for the
    types it can quantise (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, TQ1_0, TQ2_0);
  - "random": random valid blocks for every type: random bytes with sane fp16 scales written at the
    type's scale fields (negative, tiny and subnormal scales included), so every code is reached.
Dequantisation is gguf-py's dequantize() for every type it knows. Q1_0 and Q2_0 have no gguf-py
class: for those the script has its own numpy transcription of ggml-quants.c's dequantize_row_*
(marked "own" in the summary), so they are checked against a second reading of the format, not an
independent implementation.

Not a test by itself: tests/quant.test.mjs runs it, then the C driver. Usage:
    python3 tests/oracle/quants.py LLAMA_SRC OUT [SEED]
File format (little-endian): "OBQ1", u32 count, then per case: u32 type, u32 n (elements),
u32 nbytes, u32 kind (0 quantised, 1 random), bytes[nbytes], f32 deq[n], f32 x[n], f64 dot.
"""
import struct
import sys

import numpy as np

src, out = sys.argv[1], sys.argv[2]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
sys.path.insert(0, src + "/gguf-py")
import gguf.quants as gq  # noqa: E402
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T  # noqa: E402

rng = np.random.default_rng(seed)

# Byte offsets of the fp16 scale fields in each block (ggml-common.h).
SCALES = {
    T.F16: None, T.BF16: None, T.F32: None,
    T.Q8_0: [0], T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.TQ1_0: [52], T.TQ2_0: [64], T.Q1_0: [0], T.Q2_0: [0],
}
QUANTISABLE = {T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.TQ1_0, T.TQ2_0}


def own_dequant(qt, blocks):
    """Our numpy reading of ggml-quants.c for the types gguf-py lacks (blocks: [nb, bytes])."""
    nb = blocks.shape[0]
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [nb, 1]
    qs = blocks[:, 2:]
    if qt == T.Q1_0:  # bit j%8 of byte j/8: +d if set else -d
        bits = (qs.reshape(nb, 16, 1) >> np.arange(8, dtype=np.uint8).reshape(1, 1, 8)) & 1
        return np.where(bits.reshape(nb, 128) != 0, d, -d).astype(np.float32)
    if qt == T.Q2_0:  # code of weight j in bits 2(j%4) of byte j/4; w = (q - 1) * d
        q = (qs.reshape(nb, 16, 1) >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4)) & 3
        return (q.reshape(nb, 64).astype(np.int32) - 1).astype(np.float32) * d
    raise ValueError(qt)


def dequant(qt, row):
    if qt in (T.Q1_0, T.Q2_0):
        blk, size = GGML_QUANT_SIZES[qt]
        return own_dequant(qt, row.reshape(-1, size)).reshape(-1)
    return gq.dequantize(row.reshape(1, -1), qt).reshape(-1).astype(np.float32)


def random_row(qt, n):
    blk, size = GGML_QUANT_SIZES[qt]
    if SCALES[qt] is None:  # float types: random values over many magnitudes
        v = (rng.standard_normal(n) * np.exp2(rng.integers(-12, 4, n))).astype(np.float32)
        if qt == T.F32:
            return v.view(np.uint8)
        if qt == T.F16:
            return v.astype(np.float16).view(np.uint8)
        return (v.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)  # bf16 (truncated)
    nb = n // blk
    b = rng.integers(0, 256, (nb, size), dtype=np.uint8)
    for off in SCALES[qt]:
        mag = np.exp2(rng.uniform(-10, 0, nb))  # 1e-3 .. 1
        sign = np.where(rng.random(nb) < 0.2, -1.0, 1.0)
        s = (mag * sign).astype(np.float16)
        s[rng.random(nb) < 0.05] = np.float16(0.0)
        s[rng.random(nb) < 0.05] = np.float16(3e-6)  # subnormal half
        b[:, off:off + 2] = s.view(np.uint8).reshape(nb, 2)
    return b.reshape(-1)


cases = []
n = 1024  # a row of 4 super-blocks of 256 / 32 blocks of 32 / 8 of 128 / 16 of 64
for qt in [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q2_K, T.Q3_K, T.Q4_K,
           T.Q5_K, T.Q6_K, T.TQ1_0, T.TQ2_0, T.Q1_0, T.Q2_0]:
    rows = []
    if qt in QUANTISABLE:
        for scale in (1.0, 0.02, 30.0):
            for _ in range(3):
                x = (rng.standard_normal(n) * scale).astype(np.float32)
                if rng.random() < 0.3:
                    x[rng.integers(0, n, 8)] = 0.0
                q = np.ascontiguousarray(gq.quantize(x.reshape(1, -1), qt))
                rows.append((0, (q if q.dtype == np.uint8 else q.view(np.uint8)).reshape(-1)))
    for _ in range(8):
        rows.append((1, random_row(qt, n)))
    for kind, row in rows:
        assert row.dtype == np.uint8
        row = np.ascontiguousarray(row)
        deq = dequant(qt, row)
        assert deq.shape == (n,), (qt, deq.shape)
        x = rng.standard_normal(n).astype(np.float32)
        dot = float(np.sum(deq.astype(np.float64) * x.astype(np.float64)))
        cases.append((int(qt), n, kind, row.tobytes(), deq.astype("<f4").tobytes(), x.astype("<f4").tobytes(), dot))

with open(out, "wb") as f:
    f.write(b"OBQ1" + struct.pack("<I", len(cases)))
    for qt, n, kind, raw, deq, x, dot in cases:
        f.write(struct.pack("<IIII", qt, n, len(raw), kind) + raw + deq + x + struct.pack("<d", dot))
print(f"quants.py: {len(cases)} rows of {n} for 17 types written to {out}")
