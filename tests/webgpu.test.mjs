// webgpu.test.mjs — the WebGPU engine on Dawn (the `webgpu` npm package) over SwiftShader, so it
// runs without a GPU: every WGSL kernel against the C scalar reference on random inputs (both
// reduction variants: subgroups and workgroup memory), whole-model logits of the prompt and the
// decode paths against the CPU reference (relative RMS <= 1e-3), greedy and sampled generation
// equal to the CPU path's, and device loss (a clear error, then a new engine that works).
// Needs `make wasm` and build/models/tiny.gguf (tools/make-models.sh). Skips, saying why, only
// when Dawn cannot create an adapter.
import test from 'node:test';
import assert from 'node:assert/strict';
import { argmax, close, relRms } from './compare.mjs';
import { existsSync, readFileSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;

const WASM = new URL('build/wasm/onebit.wasm', root);
const TINY = new URL('build/models/tiny.gguf', root);
assert.ok(existsSync(WASM), 'build/wasm/onebit.wasm is missing: run `make wasm`');
assert.ok(existsSync(TINY), 'build/models/tiny.gguf is missing: run tools/make-models.sh');

const { Engine, OnebitError, Status } = await import('../web/engine.mjs');
const { GpuBridge, openDevice } = await import('../web/gpu.mjs');
// both kernel modules: the fused plan's and the shared ones, and the generic plan's
const KERNELS = { ...(await import('../build/wasm/kernels-generic.mjs')).KERNELS, ...(await import('../build/wasm/kernels.mjs')).KERNELS };
// mm_sg.wgsl's tile and workgroup memory, as its consts say (the C host's copies are tested below).
const MMS = Object.fromEntries(['TR', 'TT', 'SMW'].map((k) => [k, Number(KERNELS.mm_sg.match(new RegExp(`const ${k} ?= ?(\\d+)u;`))?.[1])]));
const MMD = Object.fromEntries(['TR', 'TT'].map((k) => [k, Number(KERNELS.mm_dp.match(new RegExp(`const ${k} ?= ?(\\d+)u;`))?.[1])]));
const MMG = Object.fromEntries(['TR', 'TT', 'SMW'].map((k) => [k, Number(KERNELS.dq_mms.match(new RegExp(`const ${k} ?= ?(\\d+)u;`))?.[1])]));
const { default: createCore } = await import('../build/wasm/onebit-core.mjs');

let gpu = null, skip = false;
try {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  // allow_unsafe_apis exposes experimental features (subgroup matrices) where the GPU has them.
  gpu = create(['enable-dawn-features=allow_unsafe_apis']);
  const ad = await gpu.requestAdapter();
  if (!ad) skip = 'Dawn (npm webgpu) found no WebGPU adapter: install libvulkan1 and a Vulkan driver (e.g. SwiftShader from Debian chromium)';
} catch (e) {
  skip = `Dawn (npm webgpu) cannot start: ${e.message}`;
}
if (skip) console.log(`# SKIP webgpu tests: ${skip}`);

// ---- helpers -------------------------------------------------------------------------------

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randn(r, n, scale = 1) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

function f16ToF32(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// Random Q1_0 rows: per block an f16 scale of either sign in [2^-6, 2^-3), then random bits.
function q1Matrix(r, rows, cols) {
  const rb = (cols / 128) * 18, b = new Uint8Array(rows * rb);
  for (let i = 0; i < b.length; i++) b[i] = (r() * 256) | 0;
  for (let row = 0; row < rows; row++)
    for (let k = 0; k < cols / 128; k++) {
      const o = row * rb + k * 18, h = ((r() < 0.5 ? 1 : 0) << 15) | ((9 + ((r() * 3) | 0)) << 10) | ((r() * 1024) | 0);
      b[o] = h & 255;
      b[o + 1] = h >> 8;
    }
  return { bytes: b, rb };
}

// The weight types dq.wgsl decodes: GGML id, elements and bytes a block, byte offsets of its f16
// fields (scales, mins). Rows of random bytes with those fields set to sane f16 values (every
// other byte pattern decodes to a finite weight); F32 / F16 / BF16 rows of random values.
const GEN_TYPES = {
  f32: { id: 0, be: 1, bb: 4, f16: [] }, f16: { id: 1, be: 1, bb: 2, f16: [] }, bf16: { id: 30, be: 1, bb: 2, f16: [] },
  q8_0: { id: 8, be: 32, bb: 34, f16: [0] }, q4_0: { id: 2, be: 32, bb: 18, f16: [0] }, q4_1: { id: 3, be: 32, bb: 20, f16: [0, 2] },
  q5_0: { id: 6, be: 32, bb: 22, f16: [0] }, q5_1: { id: 7, be: 32, bb: 24, f16: [0, 2] },
  q2_K: { id: 10, be: 256, bb: 84, f16: [80, 82] }, q3_K: { id: 11, be: 256, bb: 110, f16: [108] },
  q4_K: { id: 12, be: 256, bb: 144, f16: [0, 2] }, q5_K: { id: 13, be: 256, bb: 176, f16: [0, 2] },
  q6_K: { id: 14, be: 256, bb: 210, f16: [208] }, q1_0: { id: 41, be: 128, bb: 18, f16: [0] },
  q2_0: { id: 42, be: 64, bb: 18, f16: [0] }, tq1_0: { id: 34, be: 256, bb: 54, f16: [52] }, tq2_0: { id: 35, be: 256, bb: 66, f16: [64] },
};
function typedMatrix(r, T, rows, cols, off = 0) {
  const rb = (cols / T.be) * T.bb, b = new Uint8Array(off + rows * rb), dv = new DataView(b.buffer);
  const f16 = () => ((r() < 0.5 ? 1 : 0) << 15) | ((8 + ((r() * 3) | 0)) << 10) | ((r() * 1024) | 0); // |v| in [2^-7, 2^-4)
  for (let i = off; i < b.length; i++) b[i] = (r() * 256) | 0;
  if (T.id === 0) for (let i = off; i < b.length; i += 4) dv.setFloat32(i, r() * 2 - 1, true);
  else if (T.id === 1) for (let i = off; i < b.length; i += 2) dv.setUint16(i, f16(), true);
  else if (T.id === 30) for (let i = off; i < b.length; i += 2) dv.setUint16(i, new Uint32Array(new Float32Array([r() * 2 - 1]).buffer)[0] >>> 16, true);
  else
    for (let o = off; o < b.length; o += T.bb) for (const f of T.f16) dv.setUint16(o + f, f16(), true);
  return { bytes: b, rb };
}

function q1Row(m, row, cols) {
  const out = new Float32Array(cols);
  for (let k = 0; k < cols / 128; k++) {
    const o = row * m.rb + k * 18, d = Math.fround(f16ToF32(m.bytes[o] | (m.bytes[o + 1] << 8)));
    for (let j = 0; j < 128; j++) out[k * 128 + j] = (m.bytes[o + 2 + (j >> 3)] >> (j & 7)) & 1 ? d : -d;
  }
  return out;
}




// A decode vector in the pre-quantised block form of src/webgpu/kernels/qx.wgsl (20 words a block of
// 32: hi and lo int8 halves of q = round(v / d), d = max|v| / 32767, then d, sum of q, sum of
// squares of the raw values): v = values (times the next norm's weights), raw = the values.
function qvPack(v, raw = v) {
  const nb = v.length / 32, out = new Uint32Array(nb * 20), f = new Float32Array(out.buffer), i32 = new Int32Array(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0, sum = 0, ss = 0;
    for (let k = 0; k < 32; k++) amax = Math.max(amax, Math.abs(v[b * 32 + k]));
    const d = Math.fround(amax / 32767), inv = d > 0 ? Math.fround(1 / d) : 0;
    for (let k = 0; k < 32; k++) {
      const q = Math.max(-32767, Math.min(32767, Math.round(Math.fround(v[b * 32 + k] * inv))));
      sum += q;
      ss += raw[b * 32 + k] ** 2;
      // interleaved bytes (qx.wgsl): element k is byte k >> 3 of word k & 7
      out[b * 20 + (k & 7)] |= ((q >> 8) & 255) << (8 * (k >> 3));
      out[b * 20 + 8 + (k & 7)] |= (((q & 255) - 128) & 255) << (8 * (k >> 3));
    }
    f[b * 20 + 16] = d;
    i32[b * 20 + 17] = sum;
    f[b * 20 + 18] = ss;
  }
  return out;
}
// Back from that form: {v, ss, sum, q} (q recomputed from the bytes, to check the stored sum).
function qvUnpack(buf, n) {
  const w = new Uint32Array(buf), f = new Float32Array(buf), i32 = new Int32Array(buf);
  const v = new Float32Array(n), ss = [], sums = [], qsums = [];
  for (let b = 0; b < n / 32; b++) {
    let qs = 0;
    for (let k = 0; k < 32; k++) {
      const hi = ((w[b * 20 + (k & 7)] >>> (8 * (k >> 3))) << 24) >> 24;
      const lo = ((w[b * 20 + 8 + (k & 7)] >>> (8 * (k >> 3))) << 24) >> 24;
      const q = 256 * hi + lo + 128;
      qs += q;
      v[b * 32 + k] = f[b * 20 + 16] * q;
    }
    ss.push(f[b * 20 + 18]);
    sums.push(i32[b * 20 + 17]);
    qsums.push(qs);
  }
  return { v, ss, sums, qsums };
}

function rmsnorm(x, w, eps) {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return Float32Array.from(x, (v, i) => v * r * w[i]);
}

function ropeTable(nCtx, hd, theta) {
  const half = hd / 2, t = new Float32Array(nCtx * half * 2);
  for (let i = 0; i < half; i++) {
    const inv = Math.pow(theta, (-2 * i) / hd);
    for (let p = 0; p < nCtx; p++) {
      t[(p * half + i) * 2] = Math.cos(p * inv);
      t[(p * half + i) * 2 + 1] = Math.sin(p * inv);
    }
  }
  return t;
}

function rope(v, tab, pos, hd) {
  const half = hd / 2, o = Float32Array.from(v);
  for (let i = 0; i < half; i++) {
    const c = tab[(pos * half + i) * 2], s = tab[(pos * half + i) * 2 + 1];
    o[i] = v[i] * c - v[i + half] * s;
    o[i + half] = v[i] * s + v[i + half] * c;
  }
  return o;
}

const f16round = (x) => Float32Array.from(x, (v) => f16ToF32(f32ToF16(v)));

// The uniform draw the C sampler makes first for a seed (src/sample.c's xoshiro256**).
function firstDraw(seed) {
  const M = (1n << 64n) - 1n, rotl = (x, k) => ((x << BigInt(k)) | (x >> BigInt(64 - k))) & M;
  let x = BigInt(seed);
  const s = [];
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b97f4a7c15n) & M;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    s.push(z ^ (z >> 31n));
  }
  const r = (rotl((s[1] * 5n) & M, 7) * 9n) & M;
  return Number(r >> 11n) / 2 ** 53;
}

// Params/Step/Samp packed by the field order of src/webgpu/kernels/common.wgsl.
const FIELDS = Object.fromEntries(['Params', 'Step', 'Samp'].map((n) => {
  const body = KERNELS.common.match(new RegExp(`struct ${n} ?\\{([^}]*)\\}`))[1];
  return [n, [...body.matchAll(/(\w+):\s*(u32|f32|i32)/g)].map((m) => [m[1], m[2]])];
}));
function pack(name, vals) {
  const f = FIELDS[name], b = new ArrayBuffer(Math.ceil((f.length * 4) / 16) * 16), dv = new DataView(b);
  f.forEach(([k, t], i) => {
    const v = vals[k] ?? 0;
    if (t === 'f32') dv.setFloat32(i * 4, v, true);
    else if (t === 'i32') dv.setInt32(i * 4, v, true);
    else dv.setUint32(i * 4, v, true);
  });
  return new Uint8Array(b);
}

// ---- the kernel harness: one device per reduction variant ------------------------------------

class Harness {
  static async open(subgroups) {
    const d = await openDevice(gpu, { subgroups });
    const h = new Harness();
    h.dev = d.device;
    h.sg = d.sgSize;
    h.sgMat = d.sgMat;
    h.bridge = new GpuBridge(d.device, KERNELS, d.sgSize);
    h.pipes = new Map();
    return h;
  }
  pipeline(name, constants) {
    const key = name + JSON.stringify(constants);
    if (!this.pipes.has(key))
      this.pipes.set(key, this.dev.createComputePipeline({
        layout: 'auto', compute: { module: this.bridge.module(name), entryPoint: 'main', constants: { TPR: this.sg || 8, ...constants } },
      }));
    return this.pipes.get(key);
  }
  // storage: typed arrays (or byte counts) in binding order; returns their contents afterwards.
  async run(name, constants, storage, params, step, grid, samp) {
    const dev = this.dev;
    dev.pushErrorScope('validation');
    const bufs = storage.map((s) => {
      const bytes = typeof s === 'number' ? new Uint8Array(s) : new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
      const size = Math.max(16, Math.ceil(bytes.length / 4) * 4);
      const b = dev.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      const padded = new Uint8Array(size);
      padded.set(bytes);
      dev.queue.writeBuffer(b, 0, padded);
      return b;
    });
    const unis = [pack('Params', params), pack('Step', step)];
    if (samp) unis.push(pack('Samp', samp));
    const ubufs = unis.map((u) => {
      const b = dev.createBuffer({ size: u.length, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      dev.queue.writeBuffer(b, 0, u);
      return b;
    });
    const pipe = this.pipeline(name, constants);
    const entries = [...bufs, ...ubufs].map((b, i) => ({ binding: i, resource: { buffer: b } }));
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries }));
    pass.dispatchWorkgroups(grid[0], grid[1] ?? 1);
    pass.end();
    const reads = bufs.map((b) => {
      const r = dev.createBuffer({ size: b.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      enc.copyBufferToBuffer(b, 0, r, 0, b.size);
      return r;
    });
    dev.queue.submit([enc.finish()]);
    const err = await dev.popErrorScope();
    assert.equal(err, null, `${name}: ${err?.message}`);
    const out = [];
    for (const r of reads) {
      await r.mapAsync(GPUMapMode.READ);
      out.push(r.getMappedRange().slice(0));
      r.unmap();
      r.destroy();
    }
    [...bufs, ...ubufs].forEach((b) => b.destroy());
    return out;
  }
  close() {
    this.dev.destroy();
  }
}

let core;
async function refCore() {
  core ??= await createCore({ wasmBinary: readFileSync(WASM) });
  return core;
}
function heapF32(M, a) {
  const p = M._malloc(a.length * 4) >>> 0;
  M.HEAPF32.set(a, p >>> 2);
  return p;
}
async function refMatmul(m, rows, cols, x, n) {
  const M = await refCore();
  const wp = M._malloc(m.bytes.length) >>> 0;
  M.HEAPU8.set(m.bytes, wp);
  const xp = heapF32(M, x), yp = M._malloc(rows * n * 4) >>> 0;
  M._ob_wgpu_ref_matmul(wp, rows, cols, xp, yp, n);
  const y = M.HEAPF32.slice(yp >>> 2, (yp >>> 2) + rows * n);
  [wp, xp, yp].forEach((p) => M._free(p));
  return y;
}
async function refAttention(q, k, v, n, pos, nh, nkv, hd) {
  const M = await refCore();
  const ps = [q, k, v].map((a) => heapF32(M, a)), op = M._malloc(n * nh * hd * 4) >>> 0;
  M._ob_wgpu_ref_attention(ps[0], ps[1], ps[2], op, n, pos, nh, nkv, hd);
  const o = M.HEAPF32.slice(op >>> 2, (op >>> 2) + n * nh * hd);
  [...ps, op].forEach((p) => M._free(p));
  return o;
}

// ---- kernel tests ----------------------------------------------------------------------------

for (const sg of [true, false]) {
  const variant = sg ? 'subgroups' : 'workgroup memory';
  test(`kernels vs the scalar reference (${variant})`, { skip }, async (t) => {
    const H = await Harness.open(sg);
    if (sg && !H.sg) {
      H.close();
      t.skip('this adapter offers no usable subgroups');
      return;
    }
    const r = rng(sg ? 7 : 8);
    const eps = 1e-6;
    try {
      await t.test('matvec: plain, residual, norm + last row + part offset', async () => {
        const rows = 300, cols = 384; // 3 blocks a row: rows start at 2 mod 4 bytes
        const W = q1Matrix(r, rows, cols), x = randn(r, 2 * cols), nw = randn(r, cols, 2);
        const base = { rows, cols, row_bytes: W.rb, eps, in_stride: cols };
        const ref0 = await refMatmul(W, rows, cols, x.subarray(0, cols), 1);
        let [, , y] = await H.run('matvec', { ROWS: 32 }, [W.bytes, x, rows * 4, nw, 16, 16, 4], base, { n: 1 }, [Math.ceil(rows / 32)]);
        close(new Float32Array(y), ref0, 1e-4, 'matvec');
        const y0 = randn(r, rows);
        [, , y] = await H.run('matvec', { ROWS: 32, RESID: 1 }, [W.bytes, x, y0, nw, 16, 16, 4], base, { n: 1 }, [Math.ceil(rows / 32)]);
        close(new Float32Array(y), ref0.map((v, i) => v + y0[i]), 1e-4, 'matvec residual');
        const h = rmsnorm(x.subarray(cols), nw, eps), ref1 = await refMatmul(W, rows, cols, h, 1);
        [, , y] = await H.run('matvec', { ROWS: 128, NORM: 1, LASTROW: 1 }, [W.bytes, x, (rows + 5) * 4, nw, 16, 16, 4],
          { ...base, row0: 5 }, { n: 2, last: 1 }, [Math.ceil(rows / 128)]);
        close(new Float32Array(y).subarray(5), ref1, 1e-4, 'matvec norm/lastrow');
        // ARGMAX (the output head): the best row of every 64 rows, part offset 128 = 2 slots
        let am;
        [, , y, , am] = await H.run('matvec', { ROWS: 64, NORM: 1, ARGMAX: 1 }, [W.bytes, x, (rows + 128) * 4, nw, 8 * 8, 16, 4],
          { ...base, row0: 128 }, { n: 1 }, [Math.ceil(rows / 64)]);
        const yv = new Float32Array(y), amv = new Uint32Array(am);
        for (let sl = 0; sl < Math.ceil(rows / 64); sl++) {
          let best = -1;
          for (let i = sl * 64; i < Math.min(rows, sl * 64 + 64); i++) if (best < 0 || yv[128 + i] > yv[128 + best]) best = i;
          assert.equal(amv[2 * (sl + 2) + 1], 128 + best, `argmax slot ${sl}`);
        }
        // COMBINE: the input is 2 heads x 3 split partials {m, l, 0, 0, o[HD]} of attention
        const HDc = 192, ns = 3, part = new Float32Array(2 * ns * (HDc + 4)), merged = new Float32Array(cols);
        for (let hh = 0; hh < 2; hh++) {
          const recs = [];
          for (let sp = 0; sp < ns; sp++) {
            const b = (hh * ns + sp) * (HDc + 4), m = r() * 4 - 2, l = 0.5 + r() * 3;
            part[b] = sp === 1 && hh === 1 ? -3e38 : m; // an empty split
            part[b + 1] = sp === 1 && hh === 1 ? 0 : l;
            for (let d = 0; d < HDc; d++) part[b + 4 + d] = part[b + 1] ? r() * 2 - 1 : 0;
            recs.push(b);
          }
          const mx = Math.max(...recs.map((b) => part[b]));
          const den = recs.reduce((a, b) => a + Math.exp(part[b] - mx) * part[b + 1], 0);
          for (let d = 0; d < HDc; d++) merged[hh * HDc + d] = recs.reduce((a, b) => a + Math.exp(part[b] - mx) * part[b + 4 + d], 0) / den;
        }
        const ref2 = await refMatmul(W, rows, cols, merged, 1);
        // ... and, as the Wo kernel does, its output times norm weights (at norm2_off) pre-quantised
        const nw2 = randn(r, 8 + 320, 2);
        let qo;
        [, , y, , , , qo] = await H.run('matvec', { ROWS: 32, RESID: 1, COMBINE: 1, QOUT: 1, HD: HDc },
          [W.bytes, part, y0, nw2, 16, 16, 10 * 80], { ...base, norm2_off: 8 }, { n: 1, splits: ns }, [Math.ceil(rows / 32)]);
        const yc = ref2.map((v, i) => v + y0[i]);
        close(new Float32Array(y), yc, 1e-4, 'matvec combine');
        const u = qvUnpack(qo, 288);
        close(u.v, yc.subarray(0, 288).map((v, i) => v * nw2[8 + i]), 1e-4, 'matvec combine: quantised output');
        assert.deepEqual(u.sums, u.qsums, 'matvec combine: block sums');
        close(Float32Array.from(u.ss), Float32Array.from({ length: 9 }, (_, b) => yc.subarray(32 * b, 32 * b + 32).reduce((a, v) => a + v * v, 0)), 1e-5, 'matvec combine: sums of squares');
      });

      await t.test('matvec on pre-quantised inputs: norm, residual + quantised output, head', async () => {
        const rows = 256, cols = 384;
        const W = q1Matrix(r, rows, cols), x = randn(r, cols, 3), nw = randn(r, cols, 2);
        const base = { rows, cols, row_bytes: W.rb, eps, in_stride: cols };
        // NORM (the [q|k|v] product): the input holds x * norm weights, 1 / rms from its sums of squares
        const qx = qvPack(x.map((v, i) => v * nw[i]), x);
        const ref1 = await refMatmul(W, rows, cols, rmsnorm(x, nw, eps), 1);
        let [, , y] = await H.run('matvec', { ROWS: 32, NORM: 1, QIN: 1, QXW: 8 }, [W.bytes, 16, rows * 4, 16, 16, qx, 4], base, { n: 1 }, [rows / 32]);
        close(new Float32Array(y), ref1, 1e-4, 'matvec QIN norm');
        // RESID + QOUT (the down product): plain input, output pre-quantised with the next norm
        const qp = qvPack(x), ref0 = await refMatmul(W, rows, cols, x, 1), y0 = randn(r, rows), nw2 = randn(r, 4 + rows, 2);
        let qo;
        [, , y, , , , qo] = await H.run('matvec', { ROWS: 32, RESID: 1, QIN: 1, QOUT: 1, QXW: 8 }, [W.bytes, 16, y0, nw2, 16, qp, (rows / 32) * 80],
          { ...base, norm2_off: 4 }, { n: 1 }, [rows / 32]);
        const yr = ref0.map((v, i) => v + y0[i]);
        close(new Float32Array(y), yr, 1e-4, 'matvec QIN residual');
        const u = qvUnpack(qo, rows);
        close(u.v, yr.map((v, i) => v * nw2[4 + i]), 1e-4, 'matvec QOUT values');
        assert.deepEqual(u.sums, u.qsums, 'matvec QOUT block sums');
        close(Float32Array.from(u.ss), Float32Array.from({ length: rows / 32 }, (_, b) => yr.subarray(32 * b, 32 * b + 32).reduce((a, v) => a + v * v, 0)), 1e-5, 'matvec QOUT sums of squares');
        // the same with the pre-quantised input staged in workgroup memory first (QST: the down product)
        let ys;
        [, , ys, , , , qo] = await H.run('matvec', { ROWS: 32, RESID: 1, QIN: 1, QOUT: 1, QST: 1, QXW: cols / 4 },
          [W.bytes, 16, y0, nw2, 16, qp, (rows / 32) * 80], { ...base, norm2_off: 4 }, { n: 1 }, [rows / 32]);
        assert.deepEqual(new Float32Array(ys), new Float32Array(y), 'matvec QST: the same sums');
        assert.deepEqual(qvUnpack(qo, rows).v, u.v, 'matvec QST: the same quantised output');
        // with prefetching workgroups (PF_WG, the decode step's [q|k|v] and Wo products): they only
        // read W, so the same output and nothing written past it (y's tail and 3 more output blocks)
        const npf = 3, yx = randn(r, rows + 64);
        yx.set(y0);
        const pf = { PF_WG: npf, PF_A0: 3, PF_AN: (W.bytes.byteLength >> 2) - 3 };
        let yp;
        [, , yp, , , , qo] = await H.run('matvec', { ROWS: 32, RESID: 1, QIN: 1, QOUT: 1, QXW: 8, ...pf },
          [W.bytes, 16, yx, nw2, 16, qp, (rows / 32 + npf) * 80], { ...base, norm2_off: 4 }, { n: 1 }, [rows / 32 + npf]);
        assert.deepEqual(new Float32Array(yp).subarray(0, rows), new Float32Array(y), 'matvec PF_WG: the same sums');
        assert.deepEqual(new Float32Array(yp).subarray(rows), yx.subarray(rows), 'matvec PF_WG: nothing written past the rows');
        assert.deepEqual(qvUnpack(qo.slice(0, (rows / 32) * 80), rows).v, u.v, 'matvec PF_WG: the same quantised output');
        assert.ok(new Uint32Array(qo, (rows / 32) * 80).every((v) => v === 0), 'matvec PF_WG: no output block past the rows');
        // the head: NORM + ARGMAX from a pre-quantised input
        let am;
        [, , y, , am] = await H.run('matvec', { ROWS: 64, NORM: 1, QIN: 1, ARGMAX: 1, QXW: 8 }, [W.bytes, 16, rows * 4, 16, 8 * 4, qx, 4], base, { n: 1 }, [rows / 64]);
        close(new Float32Array(y), ref1, 1e-4, 'matvec QIN head');
        const yv = new Float32Array(y), amv = new Uint32Array(am);
        for (let sl = 0; sl < rows / 64; sl++) {
          let best = sl * 64;
          for (let i = sl * 64; i < sl * 64 + 64; i++) if (yv[i] > yv[best]) best = i;
          assert.equal(amv[2 * sl + 1], best, `QIN argmax slot ${sl}`);
        }
      });

      await t.test('gateup: norm, gate and up, SwiGLU, pre-quantised in and out', async () => {
        const F = 224, cols = 256;
        const W = q1Matrix(r, 2 * F, cols), x = randn(r, cols), nw = randn(r, cols, 2);
        const h = rmsnorm(x, nw, eps), gu = await refMatmul(W, 2 * F, cols, h, 1);
        const want = Float32Array.from({ length: F }, (_, i) => (gu[i] / (1 + Math.exp(-gu[i]))) * gu[F + i]);
        const qin = qvPack(x.map((v, i) => v * nw[i]), x), gp = { rows: F, cols, row_bytes: W.rb, eps };
        const [, , qo] = await H.run('gateup', { ROWS: 32 }, [W.bytes, qin, (F / 32) * 80, 16], gp, { n: 1 }, [F / 32]);
        const u = qvUnpack(qo, F);
        // the output's own 16-bit rounding comes on top of the input's: worst case 3e-4, RMS 1e-4
        close(u.v, want, 3e-4, 'gateup');
        assert.ok(relRms(u.v, want) < 1e-4, `gateup relative RMS ${relRms(u.v, want)}`);
        assert.deepEqual(u.sums, u.qsums, 'gateup block sums');
        // with prefetching workgroups (PF_WG: they read the next layer's [q|k|v] weights, here W
        // again): the same output, no output block past it
        const [, , qp] = await H.run('gateup', { ROWS: 32, PF_WG: 2, PF_A0: 1, PF_AN: (W.bytes.byteLength >> 2) - 1 },
          [W.bytes, qin, (F / 32 + 2) * 80, W.bytes], gp, { n: 1 }, [F / 32 + 2]);
        assert.deepEqual(new Uint32Array(qp, 0, (F / 32) * 20), new Uint32Array(qo), 'gateup PF_WG: the same output');
        assert.ok(new Uint32Array(qp, (F / 32) * 80).every((v) => v === 0), 'gateup PF_WG: no output block past the rows');
      });

      const nh = 4, nkv = 2, E = 256, nCtx = 400;
      for (const [hd, kv16] of [[64, 0], [64, 1], [128, 0], [256, 1], [32, 0]]) {
        const QD = nh * hd, KD = nkv * hd, tab = ropeTable(nCtx, hd, 1e6);
        await t.test(`attn_dec (decode: QK-norm, RoPE, cache write, split keys) and qk_rope (prompt), head dim ${hd}, ${kv16 ? 'f16' : 'f32'} cache`, async () => {
          const nw = randn(r, E + 2 * hd, 2);
          const qn = nw.subarray(E, E + hd), kn = nw.subarray(E + hd);
          const words = (2 * nCtx * KD) / (kv16 ? 2 : 1), vOff = words / 2;
          const params = { cols: E, eps, norm_off: E, norm2_off: E + hd, n_head: nh, n_head_kv: nkv,
            head_dim: hd, kv_dim: KD, q_stride: QD + 2 * KD, n_ctx: nCtx, v_off: vOff, scale: 1 / Math.sqrt(hd) };
          const round = kv16 ? f16round : (a) => a;
          for (const [pos, ns] of hd === 64 ? [[0, 1], [5, 1], [5, 4], [300, 5], [130, 3]] : [[5, 1], [130, 3]]) {
            const raw = randn(r, QD + 2 * KD);
            // the cache before this step: random rows below pos (already normed and rotated)
            const kOld = randn(r, nCtx * KD), vOld = randn(r, nCtx * KD);
            let cache;
            if (kv16) {
              cache = new Uint32Array(words);
              const put = (base, a) => { for (let i = 0; i < a.length; i += 2) cache[base + i / 2] = (f32ToF16(a[i]) | (f32ToF16(a[i + 1]) << 16)) >>> 0; };
              put(0, kOld);
              put(vOff, vOld);
            } else {
              cache = new Float32Array(words);
              cache.set(kOld, 0);
              cache.set(vOld, vOff);
            }
            const [, kv, part] = await H.run('attn_dec', { HD: hd, KV16: kv16 }, [raw, cache, nh * ns * (hd + 4) * 4, nw, tab, 16],
              params, { n: 1, pos, splits: ns }, [nh, ns]);
            if (pos === 130) {
              // with prefetching workgroups beside the heads (PF_WG: they read the layer's weights,
              // here the cache's words): the same partials and cache, nothing written past them
              const pw = new Uint32Array(cache.buffer, cache.byteOffset, cache.byteLength >> 2);
              const [, kvp, partp] = await H.run('attn_dec', { HD: hd, KV16: kv16, PF_WG: 2, PF_A0: 1, PF_AN: pw.length - 1 },
                [raw, cache, nh * ns * (hd + 4) * 4 + 64, nw, tab, pw], params, { n: 1, pos, splits: ns }, [nh + 2, ns]);
              assert.deepEqual(new Uint32Array(partp, 0, nh * ns * (hd + 4)), new Uint32Array(part), 'attn_dec PF_WG: the same partials');
              assert.ok(new Uint32Array(partp, nh * ns * (hd + 4) * 4).every((v) => v === 0), 'attn_dec PF_WG: nothing past the partials');
              assert.deepEqual(new Uint32Array(kvp), new Uint32Array(kv), 'attn_dec PF_WG: the same cache');
            }
            const kvf = kv16 ? null : new Float32Array(kv), kvh = kv16 ? new Uint16Array(kv) : null;
            const at = (base, e) => (kv16 ? f16ToF32(kvh[base * 2 + e]) : kvf[base + e]);
            const K = new Float32Array((pos + 1) * KD), Vv = new Float32Array((pos + 1) * KD);
            K.set(round(kOld.subarray(0, pos * KD)));
            Vv.set(round(vOld.subarray(0, pos * KD)));
            for (let i = 0; i < nkv; i++) {
              const kNew = rope(rmsnorm(raw.subarray(QD + i * hd, QD + (i + 1) * hd), kn, eps), tab, pos, hd);
              const vNew = raw.subarray(QD + KD + i * hd, QD + KD + (i + 1) * hd);
              K.set(kNew, pos * KD + i * hd);
              Vv.set(vNew, pos * KD + i * hd);
              const kc = Float32Array.from({ length: hd }, (_, e) => at(0, pos * KD + i * hd + e));
              const vc = Float32Array.from({ length: hd }, (_, e) => at(vOff, pos * KD + i * hd + e));
              close(kc, round(kNew), kv16 ? 2e-3 : 1e-4, `cache k head ${i} pos ${pos}`);
              close(vc, round(vNew), kv16 ? 2e-3 : 1e-4, `cache v head ${i} pos ${pos}`);
              if (pos > 0) close(Float32Array.from({ length: hd }, (_, e) => at(0, (pos - 1) * KD + i * hd + e)),
                round(kOld.subarray((pos - 1) * KD + i * hd, (pos - 1) * KD + (i + 1) * hd)), 1e-6, 'older rows untouched');
            }
            const q = new Float32Array(QD);
            for (let i = 0; i < nh; i++) q.set(rope(rmsnorm(raw.subarray(i * hd, (i + 1) * hd), qn, eps), tab, pos, hd), i * hd);
            // the new key is used unrounded by the step that computes it
            const Kr = K.slice(), Vr = Vv.slice();
            const want = await refAttention(q, Kr, Vr, 1, pos, nh, nkv, hd);
            const pv = new Float32Array(part), got = new Float32Array(QD);
            for (let i = 0; i < nh; i++) {
              const recs = Array.from({ length: ns }, (_, sp) => (i * ns + sp) * (hd + 4));
              const mx = Math.max(...recs.map((b) => pv[b]));
              const den = recs.reduce((a, b) => a + Math.exp(pv[b] - mx) * pv[b + 1], 0);
              for (let d = 0; d < hd; d++) got[i * hd + d] = recs.reduce((a, b) => a + Math.exp(pv[b] - mx) * pv[b + 4 + d], 0) / den;
            }
            close(got, want, 1e-3, `attn_dec pos=${pos} splits=${ns}`);
          }
          const params2 = { ...params, norm_off: 0, norm2_off: hd };
          // qk_rope: the same epilogue for a chunk of 3 tokens at positions 5..7
          const n = 3, p0 = 5, qkvIn = randn(r, n * (QD + 2 * KD));
          const nw2 = nw.subarray(E); // q norm at 0, k norm at hd
          const [q2, kv2] = await H.run('qk_rope', { HD: hd, KV16: kv16 }, [qkvIn, words * 4, nw2, tab],
            params2, { n, pos: p0 }, [Math.ceil((nh + 2 * nkv) / (256 / (H.sg || 8))), n]);  // the host's grid
          const kvf2 = kv16 ? null : new Float32Array(kv2), kvh2 = kv16 ? new Uint16Array(kv2) : null;
          const cache2 = (base, e) => (kv16 ? f16ToF32(kvh2[base * 2 + e]) : kvf2[base + e]);
          for (let t2 = 0; t2 < n; t2++) {
            const row = qkvIn.subarray(t2 * (QD + 2 * KD));
            for (let i = 0; i < nh; i++)
              close(new Float32Array(q2).subarray(t2 * (QD + 2 * KD) + i * hd).subarray(0, hd),
                rope(rmsnorm(row.subarray(i * hd, (i + 1) * hd), qn, eps), tab, p0 + t2, hd), 1e-4, `qk_rope q ${t2}/${i}`);
            for (let i = 0; i < nkv; i++) {
              const k = Float32Array.from({ length: hd }, (_, e) => cache2(0, (p0 + t2) * KD + i * hd + e));
              const kin = row.subarray(QD + i * hd, QD + (i + 1) * hd);
              close(k, round(rope(rmsnorm(kin, kn, eps), tab, p0 + t2, hd)), kv16 ? 2e-3 : 1e-4, `qk_rope k ${t2}/${i}`);
            }
          }
        });

        await t.test(`attention, ${kv16 ? 'f16' : 'f32'} cache: chunks over several tiles, head dims 32-256, one token late`, async () => {
          // [n, pos, n_head, n_head_kv, head_dim, QH (0: the engine's choice)]; n_ctx = pos + n
          const cases = [[3, 5, nh, nkv, hd, 0], [1, 300, nh, nkv, hd, 0], [70, 45, nh, nkv, hd, 0], [33, 0, nh, nkv, hd, 0],
            [70, 45, nh, nkv, hd, 1], [40, 7, 8, 2, 128, 0], [33, 30, 2, 2, 32, 0], [20, 13, 2, 1, 256, 0]];
          for (const [n, pos, nh2, nkv2, hd2, qh0] of cases) {
            const QD2 = nh2 * hd2, KD2 = nkv2 * hd2, len = pos + n, qs = QD2 + 2 * KD2;
            const q = randn(r, n * QD2), k = randn(r, len * KD2), v = randn(r, len * KD2);
            const qkvb = new Float32Array(n * qs);
            for (let t2 = 0; t2 < n; t2++) qkvb.set(q.subarray(t2 * QD2, (t2 + 1) * QD2), t2 * qs);
            const kr = kv16 ? f16round(k) : k, vr = kv16 ? f16round(v) : v;
            let cache;
            const words = (2 * len * KD2) / (kv16 ? 2 : 1);
            if (kv16) {
              cache = new Uint32Array(words);
              const put = (base, a) => { for (let i = 0; i < a.length; i += 2) cache[base + i / 2] = (f32ToF16(a[i]) | (f32ToF16(a[i + 1]) << 16)) >>> 0; };
              put(0, k);
              put(words / 2, v);
            } else {
              cache = new Float32Array(words);
              cache.set(k, 0);
              cache.set(v, words / 2);
            }
            const want = await refAttention(q, kr, vr, n, pos, nh2, nkv2, hd2);
            const qh = qh0 || attnHeads(nh2, nkv2);
            const [, , o] = await H.run('attention', { HD: hd2, KV16: kv16, QH: qh }, [qkvb, cache, n * QD2 * 4],
              { n_head: nh2, n_head_kv: nkv2, head_dim: hd2, kv_dim: KD2, q_stride: qs, n_ctx: len, v_off: words / 2, scale: 1 / Math.sqrt(hd2) },
              { n, pos }, gridAttn(nh2, n, qh));
            close(new Float32Array(o), want, 1e-3, `attention n=${n} pos=${pos} heads ${nh2}/${nkv2} hd ${hd2} QH ${qh}`);
            if (hd2 === 128) {
              // attention_q (a head is one 128-block): the quantised output equals quant of attention's
              const XQ_WG = H.sg === 32 ? 0 : 1, LO = (n * QD2) / 4, SC = 2 * LO, xqBytes = (SC + (n * QD2) / 128) * 4;
              const ap = { n_head: nh2, n_head_kv: nkv2, head_dim: hd2, kv_dim: KD2, q_stride: qs, n_ctx: len, v_off: words / 2, scale: 1 / Math.sqrt(hd2) };
              const [, , xq] = await H.run('attention_q', { HD: hd2, KV16: kv16, QH: qh, LO, SC, XQ_WG }, [qkvb, cache, xqBytes], ap, { n, pos }, gridAttn(nh2, n, qh));
              const [, xr] = await H.run('quant', { LO, SC, XQ_WG }, [new Float32Array(o), xqBytes], { cols: QD2, in_stride: QD2 }, { n },
                [Math.ceil((n * QD2) / 128 / 4)]);
              assert.deepEqual(new Uint32Array(xq), new Uint32Array(xr), `attention_q n=${n} pos=${pos} QH ${qh}`);
            }
          }
        });
      }

      await t.test('matmul: three tile shapes, strides, residual, part offset', async () => {
        const rows = 200, cols = 384, stride = cols + 128;
        const W = q1Matrix(r, rows, cols);
        for (const n of [3, 20, 70]) {
          const x = randn(r, n * stride), xs = new Float32Array(n * cols);
          for (let t2 = 0; t2 < n; t2++) xs.set(x.subarray(t2 * stride, t2 * stride + cols), t2 * cols);
          const want = await refMatmul(W, rows, cols, xs, n);
          const ostride = rows + 8, y0 = randn(r, n * ostride);
          for (const resid of [0, 1]) {
            const [, , y] = await H.run('matmul', { RESID: resid }, [W.bytes, x, y0], { rows, cols, row_bytes: W.rb, in_stride: stride,
              out_stride: ostride, row0: 4 }, { n }, gridMM(rows, n));
            const got = new Float32Array(y), g = [], w = [];
            for (let t2 = 0; t2 < n; t2++)
              for (let i = 0; i < rows; i++) {
                g.push(got[t2 * ostride + 4 + i]);
                w.push(want[t2 * rows + i] + (resid ? y0[t2 * ostride + 4 + i] : 0));
              }
            close(Float32Array.from(g), Float32Array.from(w), 1e-4, `matmul n=${n} resid=${resid}`);
          }
        }
      });

      await t.test('quant + mm_sg (subgroup matrices): tiles, strides, residual, part offset', { skip: !H.sgMat && 'no int8 subgroup matrices on this adapter' }, async () => {
        const rows = 200, cols = 384, stride = cols + 128, cap = 128;
        const LO = (cap * cols) / 4, SC = 2 * LO, xqBytes = (SC + (cap * cols) / 128) * 4;
        const W = q1Matrix(r, rows, cols);
        for (const n of [3, 70]) {
          const x = randn(r, n * stride), xs = new Float32Array(n * cols);
          for (let t2 = 0; t2 < n; t2++) xs.set(x.subarray(t2 * stride, t2 * stride + cols), t2 * cols);
          x[3] = 40; // an outlier in the first block of token 0
          xs[3] = 40;
          const want = await refMatmul(W, rows, cols, xs, n);
          const [, xq] = await H.run('quant', { LO, SC }, [x, xqBytes], { cols, in_stride: stride }, { n }, [Math.ceil((n * cols) / 128 / 4)]);
          const ostride = rows + 8, y0 = randn(r, (n + 1) * ostride); // one token row more than n
          for (const resid of [0, 1]) {
            const [, , y] = await H.run('mm_sg', { RESID: resid, LO, SC }, [W.bytes, new Uint8Array(xq), y0],
              { rows, cols, row_bytes: W.rb, out_stride: ostride, row0: 4 }, { n }, [Math.ceil(rows / MMS.TR), Math.ceil(n / MMS.TT)]);
            const got = new Float32Array(y), g = [], w = [];
            for (let t2 = 0; t2 < n; t2++)
              for (let i = 0; i < rows; i++) {
                g.push(got[t2 * ostride + 4 + i]);
                w.push(want[t2 * rows + i] + (resid ? y0[t2 * ostride + 4 + i] : 0));
              }
            close(Float32Array.from(g), Float32Array.from(w), 1e-3, `mm_sg n=${n} resid=${resid}`);
            assert.ok(relRms(Float32Array.from(g), Float32Array.from(w)) < 1e-4, `mm_sg n=${n} relative RMS`);
            // outside the product: the rows' padding and the token past n stay as they were
            for (let t2 = 0; t2 < n; t2++) for (const i of [0, 1, 2, 3, rows + 4, rows + 5]) assert.equal(got[t2 * ostride + i], y0[t2 * ostride + i]);
            for (let i = 0; i < ostride; i++) assert.equal(got[n * ostride + i], y0[n * ostride + i], `token ${n} row ${i}`);
          }
        }
      });

      await t.test('quant + dq_mms (generic plan, subgroup matrices) vs dq_mmt: every weight type, odd shapes, bias, scale, residual', { skip: !H.sgMat && 'no int8 subgroup matrices on this adapter' }, async () => {
        // 200 rows (a partial 32-row tile), 768 columns (3 K-quant blocks), 5 and 70 tokens
        // (partial 64-token tiles), input rows 896 floats apart, rows 4.. of a part, w_off 256.
        const rows = 200, cols = 768, stride = cols + 128, cap = Math.ceil(70 / MMG.TT) * MMG.TT, woff = 256;
        const LO = (cap * cols) / 4, SC = 2 * LO, xqBytes = (SC + (cap * cols) / 128) * 4;
        const VB = randn(r, 512);
        VB[300] = 0.75; // the per-tensor scale
        for (const [name, T] of Object.entries(GEN_TYPES)) {
          const W = typedMatrix(r, T, rows, cols, woff);
          for (const n of [5, 70]) {
            const x = randn(r, n * stride);
            x[3] = 40; // an outlier in the first block of token 0
            const [, xq] = await H.run('quant', { LO, SC }, [x, xqBytes], { cols, in_stride: stride }, { n }, [Math.ceil((n * cols) / 128 / 4)]);
            const ostride = rows + 8, y0 = randn(r, (n + 1) * ostride); // one token row more than n
            for (const flags of [0, 1 | 2 | 8]) {
              const prm = { rows, cols, row_bytes: W.rb, w_off: woff, in_stride: stride, out_stride: ostride, row0: 4, flags, norm_off: 8, norm2_off: 300 };
              const [, , want] = await H.run('dq_mmt', { WT: T.id }, [W.bytes, x, y0, VB], prm, { n }, [Math.ceil(rows / 64), Math.ceil(n / 64)]);
              const [, , got] = await H.run('dq_mms', { WT: T.id, LO, SC }, [W.bytes, new Uint8Array(xq), y0, VB], prm, { n },
                [Math.ceil(rows / MMG.TR), Math.ceil(n / MMG.TT)]);
              const gv = new Float32Array(got), wv = new Float32Array(want), g = [], w = [];
              for (let t2 = 0; t2 < n; t2++)
                for (let i = 0; i < rows; i++) {
                  g.push(gv[t2 * ostride + 4 + i]);
                  w.push(wv[t2 * ostride + 4 + i]);
                }
              const what = `dq_mms ${name} n=${n} flags=${flags}`;
              close(Float32Array.from(g), Float32Array.from(w), 3e-3, what);
              const e = relRms(Float32Array.from(g), Float32Array.from(w));
              assert.ok(e < 3e-4, `${what}: relative RMS ${e}`);
              // outside the product: the rows' padding and the token past n stay as they were
              for (let t2 = 0; t2 < n; t2++) for (const i of [0, 1, 2, 3, rows + 4, rows + 5]) assert.equal(gv[t2 * ostride + i], y0[t2 * ostride + i], what);
              for (let i = 0; i < ostride; i++) assert.equal(gv[n * ostride + i], y0[n * ostride + i], `${what}: token ${n} row ${i}`);
            }
          }
        }
      });

      await t.test('quant + mm_dp (packed integer dot products): tiles, strides, residual, part offset', async () => {
        // the quantisers' block max over 32 invocations: the subgroup's only on 32-wide subgroups
        const XQ_WG = H.sg === 32 ? 0 : 1;
        const rows = 200, cols = 384, stride = cols + 128, cap = Math.ceil(70 / MMD.TT) * MMD.TT;  // tokens rounded up to TT
        const LO = (cap * cols) / 4, SC = 2 * LO, xqBytes = (SC + (cap * cols) / 128) * 4;
        const W = q1Matrix(r, rows, cols);
        for (const n of [3, 70]) {
          const x = randn(r, n * stride), xs = new Float32Array(n * cols);
          for (let t2 = 0; t2 < n; t2++) xs.set(x.subarray(t2 * stride, t2 * stride + cols), t2 * cols);
          x[3] = 40; // an outlier in the first block of token 0
          xs[3] = 40;
          const want = await refMatmul(W, rows, cols, xs, n);
          const [, xq] = await H.run('quant', { LO, SC, XQ_WG }, [x, xqBytes], { cols, in_stride: stride }, { n }, [Math.ceil((n * cols) / 128 / 4)]);
          const ostride = rows + 8, y0 = randn(r, (n + 1) * ostride); // one token row more than n
          for (const resid of [0, 1]) {
            const [, , y] = await H.run('mm_dp', { RESID: resid, LO, SC }, [W.bytes, new Uint8Array(xq), y0],
              { rows, cols, row_bytes: W.rb, out_stride: ostride, row0: 4 }, { n }, [Math.ceil(rows / MMD.TR), Math.ceil(n / MMD.TT)]);
            const got = new Float32Array(y), g = [], w = [];
            for (let t2 = 0; t2 < n; t2++)
              for (let i = 0; i < rows; i++) {
                g.push(got[t2 * ostride + 4 + i]);
                w.push(want[t2 * rows + i] + (resid ? y0[t2 * ostride + 4 + i] : 0));
              }
            close(Float32Array.from(g), Float32Array.from(w), 1e-3, `mm_dp n=${n} resid=${resid}`);
            assert.ok(relRms(Float32Array.from(g), Float32Array.from(w)) < 1e-4, `mm_dp n=${n} relative RMS`);
            for (let t2 = 0; t2 < n; t2++) for (const i of [0, 1, 2, 3, rows + 4, rows + 5]) assert.equal(got[t2 * ostride + i], y0[t2 * ostride + i]);
            for (let i = 0; i < ostride; i++) assert.equal(got[n * ostride + i], y0[n * ostride + i], `token ${n} row ${i}`);
          }
        }
      });

      await t.test('rmsnorm and swiglu writing the quantised input (QOUT, block max through workgroup memory) equal quant of their output', async () => {
        const n = 5, cols = 1280, F = 1152, cap = 8;  // 10 and 9 blocks: partial workgroups
        const XQ_WG = 1;
        const LO = (cap * cols) / 4, SC = 2 * LO, xqBytes = (SC + (cap * cols) / 128) * 4;
        const x = randn(r, n * cols, 3), nw = randn(r, cols + 8, 2);
        const [, h] = await H.run('rmsnorm', {}, [x, n * cols * 4, nw, 4], { cols, eps, norm_off: 8 }, { n }, [n]);
        const hq = new Float32Array(h);
        const [, want] = await H.run('quant', { LO, SC, XQ_WG }, [hq, xqBytes], { cols, in_stride: cols }, { n }, [Math.ceil((n * cols) / 128 / 4)]);
        const [, , , got] = await H.run('rmsnorm', { QOUT: 1, LO, SC, XQ_WG }, [x, 16, nw, xqBytes], { cols, eps, norm_off: 8 }, { n }, [n]);
        assert.deepEqual(new Uint32Array(got), new Uint32Array(want), 'rmsnorm QOUT');
        // the quantisation itself, against JS: q = round(x / d), d = max|x| / 32767 per 128-block
        const wq = new Uint32Array(want), wi8 = new Int8Array(want);
        for (let t2 = 0; t2 < n; t2++)
          for (let b = 0; b < cols / 128; b++) {
            let amax = 0;
            for (let k = 0; k < 128; k++) amax = Math.max(amax, Math.abs(hq[t2 * cols + b * 128 + k]));
            const d = new Float32Array(wq.buffer, (SC + t2 * (cols / 128) + b) * 4, 1)[0];
            assert.ok(Math.abs(d - amax / 32767) <= 1e-6 * amax, `scale of token ${t2} block ${b}`);
            for (const k of [0, 37, 127]) {
              const i = t2 * cols + b * 128 + k, q = wi8[i] * 256 + wi8[LO * 4 + i] + 128;
              assert.ok(Math.abs(q * d - hq[i]) <= d, `token ${t2} block ${b} element ${k}`);
            }
          }
        const LOf = (cap * F) / 4, SCf = 2 * LOf, xqf = (SCf + (cap * F) / 128) * 4;
        const gu = randn(r, n * 2 * F, 2);
        const [y] = await H.run('swiglu', {}, [gu, 4], { n_ff: F }, { n }, [Math.ceil(F / 256), n]);
        const [, wantF] = await H.run('quant', { LO: LOf, SC: SCf, XQ_WG }, [new Float32Array(y), xqf], { cols: F, in_stride: 2 * F }, { n }, [Math.ceil((n * F) / 128 / 4)]);
        const [, gotF] = await H.run('swiglu', { QOUT: 1, LO: LOf, SC: SCf, XQ_WG }, [gu, xqf], { n_ff: F }, { n }, [Math.ceil(F / 1024), n]);
        assert.deepEqual(new Uint32Array(gotF), new Uint32Array(wantF), 'swiglu QOUT');
      });

      await t.test('rmsnorm and swiglu writing the quantised input of mm_sg (QOUT) equal quant of their output', { skip: !H.sgMat && 'no int8 subgroup matrices on this adapter' }, async () => {
        const n = 5, cols = 1280, F = 1152, cap = 8;  // 10 and 9 blocks: partial workgroups
        const LO = (cap * cols) / 4, SC = 2 * LO, xqBytes = (SC + (cap * cols) / 128) * 4;
        const x = randn(r, n * cols, 3), nw = randn(r, cols + 8, 2);
        const [, h] = await H.run('rmsnorm', {}, [x, n * cols * 4, nw, 4], { cols, eps, norm_off: 8 }, { n }, [n]);
        const [, want] = await H.run('quant', { LO, SC }, [new Float32Array(h), xqBytes], { cols, in_stride: cols }, { n }, [Math.ceil((n * cols) / 128 / 4)]);
        const [, , , got] = await H.run('rmsnorm', { QOUT: 1, LO, SC }, [x, 16, nw, xqBytes], { cols, eps, norm_off: 8 }, { n }, [n]);
        assert.deepEqual(new Uint32Array(got), new Uint32Array(want), 'rmsnorm QOUT');
        const LOf = (cap * F) / 4, SCf = 2 * LOf, xqf = (SCf + (cap * F) / 128) * 4;
        const gu = randn(r, n * 2 * F, 2);
        const [y] = await H.run('swiglu', {}, [gu, 4], { n_ff: F }, { n }, [Math.ceil(F / 256), n]);
        const [, wantF] = await H.run('quant', { LO: LOf, SC: SCf }, [new Float32Array(y), xqf], { cols: F, in_stride: 2 * F }, { n }, [Math.ceil((n * F) / 128 / 4)]);
        const [, gotF] = await H.run('swiglu', { QOUT: 1, LO: LOf, SC: SCf }, [gu, xqf], { n_ff: F }, { n }, [Math.ceil(F / 1024), n]);
        assert.deepEqual(new Uint32Array(gotF), new Uint32Array(wantF), 'swiglu QOUT');
      });

      await t.test('rmsnorm and swiglu (prompt chunks)', async () => {
        const n = 3, cols = 256, x = randn(r, n * cols, 3), nw = randn(r, cols + 8, 2);
        const [, y] = await H.run('rmsnorm', {}, [x, n * cols * 4, nw, 4], { cols, eps, norm_off: 8 }, { n }, [n]);
        const want = new Float32Array(n * cols);
        for (let t2 = 0; t2 < n; t2++) want.set(rmsnorm(x.subarray(t2 * cols, (t2 + 1) * cols), nw.subarray(8), eps), t2 * cols);
        close(new Float32Array(y), want, 1e-5, 'rmsnorm');
        const F = 300, gu = randn(r, 2 * 2 * F, 4);
        const [o] = await H.run('swiglu', {}, [gu, 4], { n_ff: F }, { n: 2 }, [Math.ceil(F / 256), 2]);
        const got = new Float32Array(o);
        for (let t2 = 0; t2 < 2; t2++)
          for (let i = 0; i < F; i++) {
            const g = gu[t2 * 2 * F + i], u = gu[t2 * 2 * F + F + i];
            assert.ok(Math.abs(got[t2 * 2 * F + i] - (g / (1 + Math.exp(-g))) * u) < 1e-5, `swiglu ${t2}/${i}`);
          }
      });

      await t.test('embed: rows of a part, history', async () => {
        const rows = 50, cols = 256, W = q1Matrix(r, rows, cols);
        const tok = new Uint32Array([12, 59, 3, 10]); // ids of the part [10, 60); 3 is not
        const x0 = randn(r, 4 * cols);
        const [, , x, hist] = await H.run('embed', {}, [W.bytes, tok, x0, 64 * 4, 16, 4],
          { rows, cols, row_bytes: W.rb, row0: 10, flags: 1, n_ctx: 64 }, { n: 4, pos: 7 }, [cols / 128, 4]);
        const got = new Float32Array(x);
        for (const [t2, id] of [[0, 12], [1, 59], [3, 10]]) assert.deepEqual(got.subarray(t2 * cols, (t2 + 1) * cols), q1Row(W, id - 10, cols), `embed ${id}`);
        assert.deepEqual(got.subarray(2 * cols, 3 * cols), x0.subarray(2 * cols, 3 * cols), 'a token of another part is left alone');
        assert.deepEqual(Array.from(new Uint32Array(hist).subarray(7, 11)), [12, 59, 3, 10]);
        // QOUT (decode): the row times the first attention norm, pre-quantised; nothing from a
        // part that does not hold the token
        const nw = randn(r, 16 + cols, 2);
        for (const [id, mine] of [[33, true], [5, false]]) {
          const qo0 = new Uint8Array((cols / 32) * 80).fill(7);
          const [, , , , , qo] = await H.run('embed', { QOUT: 1, QVB: 4 }, [W.bytes, new Uint32Array([id]), cols * 4, 64 * 4, nw, qo0],
            { rows, cols, row_bytes: W.rb, row0: 10, n_ctx: 64, norm_off: 16 }, { n: 1 }, [cols / 128, 1]);
          if (!mine) { assert.deepEqual(new Uint8Array(qo), qo0, 'embed QOUT: another part writes nothing'); continue; }
          const row = q1Row(W, id - 10, cols), u = qvUnpack(qo, cols);
          close(u.v, row.map((v, i) => v * nw[16 + i]), 1e-4, 'embed QOUT');
          assert.deepEqual(u.sums, u.qsums, 'embed QOUT block sums');
          close(Float32Array.from(u.ss), Float32Array.from({ length: cols / 32 }, (_, b) => row.subarray(32 * b, 32 * b + 32).reduce((a, v) => a + v * v, 0)), 1e-5, 'embed QOUT sums of squares');
        }
      });

      await t.test('sample: greedy and top-k/top-p/min-p with penalties, vs ob_sampler_sample', async () => {
        const M = await refCore();
        const V = 5000;
        const cases = [
          { temp: 0, top_k: 0, top_p: 1, min_p: 0, rep: 1, last_n: 0, pres: 0, freq: 0 },
          { temp: 0, top_k: 0, top_p: 1, min_p: 0, rep: 1.3, last_n: 16, pres: 0.5, freq: 0.25 },
          { temp: 0.7, top_k: 20, top_p: 0.8, min_p: 0, rep: 1, last_n: 0, pres: 0, freq: 0 },
          { temp: 1.2, top_k: 50, top_p: 0.95, min_p: 0.05, rep: 1.1, last_n: -1, pres: 0.2, freq: 0.1 },
          { temp: 0.5, top_k: 256, top_p: 1, min_p: 0, rep: 1, last_n: 0, pres: 0, freq: 0 },
          { temp: 1, top_k: 1, top_p: 1, min_p: 0, rep: 1, last_n: 0, pres: 0, freq: 0 },
        ];
        let k = 0;
        for (const c of cases)
          for (let trial = 0; trial < 4; trial++, k++) {
            const logits = randn(r, V, 4);
            // ties, NaN and infinities where the rules matter
            logits[17] = logits[4000] = Math.max(...logits.subarray(0, 100)) + 1;
            logits[99] = NaN;
            if (trial === 3) logits[123] = -Infinity;
            const hist = Uint32Array.from({ length: 24 }, () => (r() * 200) | 0);
            hist[5] = hist[9] = 17;
            const seed = 1000 + k;
            const pen = c.last_n !== 0 && (c.rep !== 1 || c.pres !== 0 || c.freq !== 0);
            const HR = 128, am = new Uint32Array(2 * Math.ceil(V / HR));
            for (let sl = 0; sl < am.length / 2; sl++) {
              let bk = -1, bi = -1;
              for (let i = sl * HR; i < Math.min(V, sl * HR + HR); i++) if (bi < 0 || keyOf(logits[i]) > bk) { bk = keyOf(logits[i]); bi = i; }
              am[2 * sl] = bk;
              am[2 * sl + 1] = bi;
            }
            const [, , tok] = await H.run('sample', {}, [Float32Array.from(logits), hist, 16, am], { rows: V, cols: HR, n_ctx: 64 }, { n: 1, kv_len: hist.length },
              [1], { temp: c.temp, mode: c.temp > 0 ? 1 : 0, top_k: c.top_k, top_p: c.top_p, min_p: c.min_p, rep: c.rep, pres: c.pres,
                freq: c.freq, last_n: c.last_n, pen_on: pen ? 1 : 0, u: c.temp > 0 ? firstDraw(seed) : 0 });
            const op = M._malloc(8) >>> 0;
            assert.equal(M._ob_js_sampler_new(c.temp, c.top_k, c.top_p, c.min_p, c.rep, c.last_n, c.pres, c.freq, seed, V, op), 0);
            const s = M.HEAPU32[op >>> 2];
            const lp = heapF32(M, logits), hp = M._malloc(hist.length * 4) >>> 0;
            M.HEAP32.set(Int32Array.from(hist), hp >>> 2);
            const want = M._ob_sampler_sample(s, lp, hp, hist.length);
            M._ob_sampler_free(s);
            [op, lp, hp].forEach((p) => M._free(p));
            assert.equal(new Uint32Array(tok)[0], want, `case ${JSON.stringify(c)} trial ${trial}`);
          }
      });
    } finally {
      H.close();
    }
  });
}

// The engine requests the adapter's limit, but only WebGPU's default is promised everywhere.
test('mm_sg: the host grid, token rounding and workgroup memory follow the kernel', () => {
  const src = readFileSync(new URL('src/webgpu/backend_webgpu.c', root), 'utf8');
  const def = (n) => Number(src.match(new RegExp(`#define ${n} (\\d+)`))?.[1]);
  assert.equal(def('MMS_TR'), MMS.TR, 'MMS_TR is mm_sg.wgsl TR');
  assert.equal(def('MMS_TT'), MMS.TT, 'MMS_TT is mm_sg.wgsl TT');
  // sm holds the staged block ([TR][36] weights, [2][TT][36] input planes) and later 8 matrices
  // of 16 x 16 per 32-row subgroup; then the f32 scales wd, ws [TR] and xd [TT].
  assert.ok(MMS.SMW >= MMS.TR * 36 + 2 * MMS.TT * 36 && MMS.SMW >= (MMS.TR / 32) * 2048, 'SMW holds the block and the results');
  assert.equal(def('MMS_WG_MEM'), 4 * (MMS.SMW + 2 * MMS.TR + MMS.TT), 'MMS_WG_MEM is the kernel\'s workgroup memory');
  assert.match(KERNELS.mm_sg, new RegExp(`@workgroup_size\\(${(MMS.TR / 32) * 32}\\)`), 'one 32-wide subgroup per 32 rows');
});

test('dq_mms: the host grid, token rounding and workgroup memory follow the kernel', () => {
  const src = readFileSync(new URL('src/webgpu/backend_webgpu.c', root), 'utf8');
  const def = (n) => Number(src.match(new RegExp(`#define ${n} (\\d+)`))?.[1]);
  assert.equal(def('MMG_TR'), MMG.TR, 'MMG_TR is dq_mms.wgsl TR');
  assert.equal(def('MMG_TT'), MMG.TT, 'MMG_TT is dq_mms.wgsl TT');
  // sm holds the staged block ([2][TR][36] weight planes, [2][TT][36] input planes) and later 8
  // matrices of 16 x 16 per 32-token subgroup; then the f32 scales wd, ws [TR] and xd [TT].
  assert.ok(MMG.SMW >= 2 * MMG.TR * 36 + 2 * MMG.TT * 36 && MMG.SMW >= (MMG.TT / 32) * 2048, 'SMW holds the block and the results');
  assert.equal(def('MMG_WG_MEM'), 4 * (MMG.SMW + 2 * MMG.TR + MMG.TT), 'MMG_WG_MEM is the kernel\'s workgroup memory');
  // two invocations a staged row; one 32-wide subgroup per 32 rows x 32 tokens of the tile
  assert.match(KERNELS.dq_mms, new RegExp(`@workgroup_size\\(${2 * MMG.TR}\\)`), 'two invocations a staged row');
  assert.equal(2 * MMG.TR, (MMG.TR / 32) * (MMG.TT / 32) * 32, 'one 32-wide subgroup per 32 x 32');
  assert.equal(MMD.TT % MMG.TT, 0, 'the quantised input, rounded to MMD_TT tokens, covers dq_mms tiles too');
});

test('mm_dp: the host grid, token rounding and workgroup memory follow the kernel', () => {
  const src = readFileSync(new URL('src/webgpu/backend_webgpu.c', root), 'utf8');
  const def = (n) => Number(src.match(new RegExp(`#define ${n} (\\d+)`))?.[1]);
  assert.equal(def('MMD_TR'), MMD.TR, 'MMD_TR is mm_dp.wgsl TR');
  assert.equal(def('MMD_TT'), MMD.TT, 'MMD_TT is mm_dp.wgsl TT');
  assert.equal(MMD.TT % MMS.TT, 0, 'the quantised input, rounded to MMD_TT tokens, covers mm_sg tiles too');
  // sm: [TR][4] weight and [TT][8] input vec4s; then the f32 scales wd, ws [TR] and xd [TT]
  const sm = Number(KERNELS.mm_dp.match(/var<workgroup> ?sm: ?array<vec4<u32>, ?(\d+)>/)?.[1]);
  assert.equal(sm, MMD.TR * 4 + MMD.TT * 8, 'sm holds one step');
  assert.equal(def('MMD_WG_MEM'), 16 * sm + 4 * (2 * MMD.TR + MMD.TT), 'MMD_WG_MEM is the kernel\'s workgroup memory');
  assert.ok(def('MMD_WG_MEM') <= 16384, 'within WebGPU\'s default limit');
  // an invocation owns 8 rows x 4 tokens of the tile
  assert.match(KERNELS.mm_dp, new RegExp(`@workgroup_size\\(${(MMD.TR * MMD.TT) / 32}\\)`));
});

test('attention fits the default 16 KiB of workgroup memory (every head dim, both caches)', { skip }, async () => {
  const dev = await (await gpu.requestAdapter()).requestDevice();
  try {
    assert.equal(dev.limits.maxComputeWorkgroupStorageSize, 16384);
    const module = new GpuBridge(dev, KERNELS, 0).module('attention');
    for (const HD of [32, 64, 128, 256])
      for (const KV16 of [0, 1]) {
        dev.pushErrorScope('validation');
        dev.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main', constants: { TPR: 8, HD, KV16, QH: 2 } } });
        const err = await dev.popErrorScope();
        assert.equal(err, null, `HD ${HD} KV16 ${KV16}: ${err?.message}`);
      }
    // attention_q (head dim 128, quantised output through workgroup memory's block max)
    const mq = new GpuBridge(dev, KERNELS, 0).module('attention_q');
    for (const KV16 of [0, 1]) {
      dev.pushErrorScope('validation');
      dev.createComputePipeline({ layout: 'auto', compute: { module: mq, entryPoint: 'main', constants: { TPR: 8, HD: 128, KV16, QH: 2, XQ_WG: 1 } } });
      const err = await dev.popErrorScope();
      assert.equal(err, null, `attention_q KV16 ${KV16}: ${err?.message}`);
    }
  } finally {
    dev.destroy();
  }
});

// The order-preserving key of a logit (common.wgsl key_of).
function keyOf(v) {
  const b = new Uint32Array(Float32Array.of(v).buffer)[0];
  if ((b & 0x7fffffff) > 0x7f800000) return 0x007fffff;
  const c = b === 0x7f800000 ? 0x7f7fffff : b;
  return c >>> 31 ? ~c >>> 0 : (c | 0x80000000) >>> 0;
}

// attention.wgsl: q heads per workgroup and the grid, as src/webgpu/backend_webgpu.c's attn_heads().
function attnHeads(nh, nkv) {
  let qh = 1;
  while (qh < 8 && (nh / nkv) % (qh * 2) === 0) qh *= 2;
  return qh;
}
function gridAttn(nh, n, qh) {
  return [nh / qh, Math.ceil(n / (32 / qh))];
}

function gridMM(rows, n) {
  const tt = n <= 8 ? 1 : n <= 32 ? 4 : 16;
  return [Math.ceil(rows / ((256 / tt) * 4)), Math.ceil(n / (tt * 8))];
}

// f32 -> f16 bits, round to nearest (values here are far below the f16 range's top).
function f32ToF16(v) {
  const s = v < 0 || Object.is(v, -0) ? 0x8000 : 0, a = Math.abs(v);
  if (a < 2 ** -14) return s | Math.round(a / 2 ** -24); // subnormal (1024 rounds up to the smallest normal)
  const e = Math.floor(Math.log2(a));
  const m = Math.round((a / 2 ** e - 1) * 1024);
  return m === 1024 ? s | ((e + 16) << 10) : s | ((e + 15) << 10) | m;
}

// ---- whole model -----------------------------------------------------------------------------

let ref = null;   // the scalar CPU engine (the C reference compiled to wasm)
let eng = null;   // the WebGPU engine
async function reference() {
  if (!ref) {
    ref = await Engine.create({ backend: 'cpu', cpuBackend: 'scalar' });
    await ref.load(TINY.pathname);
  }
  return ref;
}
async function gpuEngine() {
  if (!eng) {
    eng = await Engine.create({ backend: 'webgpu', gpu });
    await eng.load(TINY.pathname, { nCtx: 512 });
  }
  return eng;
}
test.after(() => {
  ref?.close();
  eng?.close();
});
const PROMPT = Array.from({ length: 24 }, (_, i) => (i * 7919 + 11) % 151000);

test('whole-model logits: WebGPU prompt path vs the CPU reference', { skip }, async () => {
  await reference();
  const info = (await gpuEngine()).info;
  assert.equal(info.backend, 'webgpu');
  // SwiftShader is a CPU adapter: the engine shapes its output head for it (fewer workgroups)
  if (/swiftshader/i.test(`${eng.dev.info.vendor} ${eng.dev.info.architecture}`)) assert.equal(eng.dev.cpu, true);
  const want = await ref.logits(PROMPT), got = await eng.logits(PROMPT);
  const e = relRms(got, want);
  assert.ok(e <= 1e-3, `relative RMS ${e}`);
  for (let t = 0; t < PROMPT.length; t++)
    assert.equal(argmax(got, t * info.nVocab, info.nVocab), argmax(want, t * info.nVocab, info.nVocab), `argmax at ${t}`);
});

test('whole-model logits: WebGPU decode path (one token a step) vs the CPU reference', { skip }, async () => {
  await gpuEngine();
  const V = eng.info.nVocab, toks = PROMPT.slice(0, 4);
  const want = await (await reference()).logits(toks);
  eng.reset();
  for (let t = 0; t < toks.length; t++) {
    const [{ p }] = eng.gpuBegin([toks[t]], 2 /* OB_STEP_LOGITS */);
    await eng.endStep(p);
    const lp = eng.M._ob_logits(eng.ctx, -1) >>> 2;
    const row = eng.M.HEAPF32.slice(lp, lp + V);
    const e = relRms(row, want.subarray(t * V, (t + 1) * V));
    assert.ok(e <= 1e-3, `position ${t}: relative RMS ${e}`);
  }
});

test('whole-model logits: the prompt path on packed integer dot products (mm_dp) equals the CPU reference too', { skip }, async () => {
  // The engine above used subgroup matrices where the adapter has them, and the f32 matmul on a
  // CPU adapter (SwiftShader): here the prompt products run on mm_dp (integerProductsOnCpu: on a
  // CPU adapter too).
  const e4 = await Engine.create({ backend: 'webgpu', gpu, subgroupMatrix: false, integerProductsOnCpu: true });
  try {
    await e4.load(TINY.pathname, { nCtx: 64 });
    assert.equal(e4.dev.sgMat, false);
    const got = await e4.logits(PROMPT), want = await (await reference()).logits(PROMPT);
    assert.ok(e4.bridge.modules.has('mm_dp') && !e4.bridge.modules.has('matmul'), 'the prompt products ran on mm_dp');
    assert.ok(relRms(got, want) <= 1e-3, `relative RMS ${relRms(got, want)}`);
  } finally {
    e4.close();
  }
});

test('prompts in several chunks, f16 KV cache', { skip }, async () => {
  const e2 = await Engine.create({ backend: 'webgpu', gpu });
  try {
    await e2.load(TINY.pathname, { nCtx: 64, kvF16: true, batch: 8 });
    const got = await e2.logits(PROMPT), want = await (await reference()).logits(PROMPT);
    const e = relRms(got, want);
    assert.ok(e <= 1e-2, `relative RMS ${e} with an f16 cache`);
    assert.equal(e2.nPast, PROMPT.length);
  } finally {
    e2.close();
  }
});

test('an embedding split over several bindings (prompt, logits chunks, decode)', { skip }, async () => {
  // 2 MiB bindings: the 5.5 MB token embedding (and tied output) in 3 parts, 3 rows of logits a chunk
  const e3 = await Engine.create({ backend: 'webgpu', gpu, maxBindingSize: 2 << 20 });
  try {
    await e3.load(TINY.pathname, { nCtx: 64 });
    const toks = PROMPT.slice(0, 7);
    const got = await e3.logits(toks), want = await (await reference()).logits(toks);
    assert.ok(relRms(got, want) <= 1e-3, `relative RMS ${relRms(got, want)}`);
    const opts = { maxTokens: 2, sampling: { temperature: 0 } };
    const a = await (await reference()).generate(toks, opts), b = await e3.generate(toks, opts);
    assert.deepEqual(b.tokens, a.tokens);
  } finally {
    e3.close();
  }
});

test('greedy generation on WebGPU equals the CPU path', { skip }, async () => {
  const prompt = 'Hello world, this is';
  const opts = { maxTokens: 5, sampling: { temperature: 0 } };
  const a = await (await reference()).generate(prompt, opts), b = await (await gpuEngine()).generate(prompt, opts);
  assert.deepEqual(b.tokens, a.tokens);
  assert.equal(b.text, a.text);
  assert.equal(b.finish, 'length');
});

// One generation loop (src/core/gen.c) for both paths: the same request ends the same way on
// each — finish reason, text, tokens, what stays in the cache — whether the GPU samples (one step in
// flight) or the host does.
test('WebGPU and the CPU path end the same greedy requests the same way', { skip }, async () => {
  // A 16-token context on both, so that generating until it is full stays short.
  const cpu = await Engine.create({ backend: 'cpu', cpuBackend: 'scalar' });
  const gpuEng = await Engine.create({ backend: 'webgpu', gpu });
  try {
    await cpu.load(TINY.pathname, { nCtx: 16 });
    await gpuEng.load(TINY.pathname, { nCtx: 16 });
    await sameEnds(cpu, gpuEng);
  } finally {
    cpu.close();
    gpuEng.close();
  }
});

async function sameEnds(cpu, gpuEng) {
  const prompt = PROMPT.slice(0, 5);
  cpu.reset();
  const base = await cpu.generate(prompt, { maxTokens: 8, sampling: { temperature: 0 } });
  const chars = [...base.text];
  const cut = chars.slice(2, 4).join(''); // a stop string from the middle of the greedy text
  const cases = [
    ['length', { maxTokens: 8 }],
    ['stop string', { maxTokens: 8, stop: ['no such text', cut] }],
    ['callback', { maxTokens: 8, stopAt: 2 }],
    ['context', { maxTokens: 0 }],
    ['host sampling', { maxTokens: 4, sampling: { temperature: 0.01, topK: 0, seed: 1 } }],
    // a grammar: the GPU hands the logits back and the host masks them (src/core/gen_grammar.c)
    ['grammar', { maxTokens: 10, grammar: 'root ::= [a-z]{1,4} " = " [0-9]{1,3}' }],
    ['json schema, sampled', { maxTokens: 10, jsonSchema: { type: 'array', items: { type: 'integer' }, maxItems: 2 },
      sampling: { temperature: 0.9, topK: 20, seed: 2 } }],
  ];
  for (const [name, c] of cases) {
    const runOn = async (e) => {
      e.reset();
      let texts = 0;
      const r = await e.generate(prompt, { sampling: { temperature: 0 }, ...c,
        onText: c.stopAt ? () => ++texts >= c.stopAt : undefined });
      return { finish: r.finish, text: r.text, tokens: r.tokens, nGenerated: r.nGenerated, nPast: e.nPast };
    };
    const a = await runOn(cpu), b = await runOn(gpuEng);
    assert.deepEqual(b, a, name);
  }
  // A second turn that extends the first reuses the same prefix on both.
  const first = await cpu.generate(prompt, { maxTokens: 3, sampling: { temperature: 0 } });
  await gpuEng.generate(prompt, { maxTokens: 3, sampling: { temperature: 0 } });
  const next = prompt.concat(first.tokens, PROMPT.slice(5, 7));
  const a = await cpu.generate(next, { maxTokens: 3, sampling: { temperature: 0 } });
  const b = await gpuEng.generate(next, { maxTokens: 3, sampling: { temperature: 0 } });
  assert.equal(b.nReused, a.nReused);
  assert.equal(a.nReused, prompt.length + 3);
  assert.deepEqual(b.tokens, a.tokens);
  assert.equal(gpuEng.nPast, cpu.nPast);
}

test('sampled generation (top-k, top-p, penalties) on the GPU equals the CPU sampler', { skip }, async () => {
  const opts = { maxTokens: 4, sampling: { temperature: 0.9, topK: 40, topP: 0.9, repeatPenalty: 1.1, repeatLastN: 64, seed: 7 } };
  const a = await (await reference()).generate(PROMPT.slice(0, 6), opts), b = await (await gpuEngine()).generate(PROMPT.slice(0, 6), opts);
  assert.deepEqual(b.tokens, a.tokens);
  // settings the GPU sampler does not cover fall back to host sampling of read-back logits
  const opts2 = { maxTokens: 2, sampling: { temperature: 0.8, topK: 0, topP: 0.9, seed: 3 } };
  const c = await ref.generate(PROMPT.slice(0, 3), opts2), d = await eng.generate(PROMPT.slice(0, 3), opts2);
  assert.deepEqual(d.tokens, c.tokens);
});

test('device loss becomes an error; a new engine runs again', { skip }, async () => {
  await reference();
  await gpuEngine();
  eng.dev.device.destroy();
  await assert.rejects(eng.logits([1, 2]), (e) => e instanceof OnebitError && e.status === Status.ERR_BACKEND && /lost|destroy/i.test(e.message));
  eng.close();
  eng = await Engine.create({ backend: 'webgpu', gpu });
  await eng.load(TINY.pathname, { nCtx: 64 });
  const V = eng.info.nVocab, got = await eng.logits([9707, 11]), want = await ref.logits([9707, 11]);
  assert.ok(relRms(got, want) <= 1e-3);
  assert.equal(argmax(got, V, V), argmax(want, V, V));
});
