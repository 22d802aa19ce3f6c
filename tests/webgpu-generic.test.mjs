// webgpu-generic.test.mjs — the WebGPU generic plan (any family, any weight type) on Dawn over
// SwiftShader: its kernels against references on random data, and whole tiny models against the
// CPU scalar backend.
//   - kernels: dq_mv and dq_mvb (both reduction variants), dq_mmt, dq_mm and dq_embed for every weight type on
//     blocks and dequantised values from llama.cpp's gguf-py (tests/wg_gen.py vectors: quantised
//     from random floats where gguf-py quantises the type, random valid blocks otherwise); norm
//     (RMS, LayerNorm, QK-norm), rope (both layouts, partial rotary) and act (SiLU, GELU, ReLU^2,
//     gated or not) against JS references.
//   - whole models: random-weight `llama` (adjacent-pair RoPE, with and without rope_freqs) and
//     `qwen2` (NeoX, q/k/v biases, tied output) and `qwen3` (QK-norm; F16 weights, so not the fused
//     plan) files written by gguf-py (tests/wg_gen.py model)
//     in F32 / F16 / BF16 / Q8_0 (and Q4_0: run where the CPU side decodes it); the prompt path's
//     and the decode path's logits against `build/onebit logits --backend scalar`, and greedy
//     generation on the GPU sampler against the CPU logits' argmax.
//   - tools/make-arch-models.sh's files: llama2 in llama.cpp's quantised types, gemma (F32,
//     Q4_K_M), phi2 (Q4_K_M: heads of 80) and bitnet (per-tensor scales, sub-norms, ReLU²)
//     against the scalar backend.
// Needs `make && make wasm`, llama.cpp's source (tools/llama-src.sh) and python3 with numpy.
import test from 'node:test';
import assert from 'node:assert/strict';
import { argmax, close, relRms } from './compare.mjs';
import { existsSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../', import.meta.url).pathname;
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;
assert.ok(existsSync(join(root, 'build/wasm/onebit.wasm')), 'build/wasm/onebit.wasm is missing: run `make wasm`');
assert.ok(existsSync(join(root, 'build/onebit')), 'build/onebit is missing: run `make`');

const { Engine } = await import('../web/engine.mjs');
const { GpuBridge, openDevice } = await import('../web/gpu.mjs');
// both kernel modules: the generic plan's own and the shared ones
const KERNELS = { ...(await import('../build/wasm/kernels-generic.mjs')).KERNELS, ...(await import('../build/wasm/kernels.mjs')).KERNELS };
const { emulateSgMat } = await import('./sgmat-emu.mjs');
// dq_mms.wgsl's tile and workgroup memory, as its consts say: 4 (SMW + 2 TR + TT) bytes.
const MMG = Object.fromEntries(['TR', 'TT', 'SMW'].map((k) => [k, Number(KERNELS.dq_mms.match(new RegExp(`const ${k} ?= ?(\\d+)u;`))?.[1])]));
const MMG_MEM = 4 * (MMG.SMW + 2 * MMG.TR + MMG.TT);

// Debian's python3 has numpy (tools/deps.sh); a pyenv shim first on PATH may not.
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const sh = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000, maxBuffer: 1 << 26 });
sh('bash', ['tools/llama-src.sh']);
const tmp = mkdtempSync(join(tmpdir(), 'onebit-wggen-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

let gpu = null, skip = false;
try {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  gpu = create([]);
  if (!(await gpu.requestAdapter())) skip = 'Dawn (npm webgpu) found no WebGPU adapter';
} catch (e) {
  skip = `Dawn (npm webgpu) cannot start: ${e.message}`;
}
if (skip) console.log(`# SKIP webgpu generic tests: ${skip}`);

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
const randn = (r, n, scale = 1) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);


// Params/Step packed by the field order of src/webgpu/kernels/common.wgsl.
const FIELDS = Object.fromEntries(['Params', 'Step'].map((n) => {
  const body = KERNELS.common.match(new RegExp(`struct ${n} ?\\{([^}]*)\\}`))[1];
  return [n, [...body.matchAll(/(\w+):\s*(u32|f32|i32)/g)].map((m) => [m[1], m[2]])];
}));
function pack(name, vals) {
  const f = FIELDS[name], b = new ArrayBuffer(Math.ceil((f.length * 4) / 16) * 16), dv = new DataView(b);
  f.forEach(([k, t], i) => {
    const v = vals[k] ?? 0;
    if (t === 'f32') dv.setFloat32(i * 4, v, true);
    else dv.setUint32(i * 4, v, true);
  });
  return new Uint8Array(b);
}

// One device; run() dispatches one kernel over storage buffers (typed arrays or byte counts, in
// binding order) and returns their contents.
class Harness {
  static async open(subgroups) {
    const d = await openDevice(gpu, { subgroups });
    const h = new Harness();
    h.dev = d.device;
    h.sg = d.sgSize;
    h.bridge = new GpuBridge(d.device, KERNELS, d.sgSize);
    return h;
  }
  get tpr() { return this.sg || 8; }
  async run(name, constants, storage, params, step, grid) {
    const dev = this.dev;
    dev.pushErrorScope('validation');
    const bufs = storage.map((s) => {
      const bytes = typeof s === 'number' ? new Uint8Array(s) : new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
      const size = Math.max(16, Math.ceil(bytes.length / 16) * 16); // whole vec4s for array<vec4<...>> bindings
      const b = dev.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      const padded = new Uint8Array(size);
      padded.set(bytes);
      dev.queue.writeBuffer(b, 0, padded);
      return b;
    });
    const ubufs = [pack('Params', params), pack('Step', step)].map((u) => {
      const b = dev.createBuffer({ size: u.length, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      dev.queue.writeBuffer(b, 0, u);
      return b;
    });
    const pipe = dev.createComputePipeline({
      layout: 'auto', compute: { module: this.bridge.module(name), entryPoint: 'main', constants: Object.fromEntries(Object.entries({ TPR: this.tpr, ...constants }).map(([k, v]) => [k, Number(v)])) },
    });
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
      out.push(new Float32Array(r.getMappedRange().slice(0)));
      r.unmap();
      r.destroy();
    }
    [...bufs, ...ubufs].forEach((b) => b.destroy());
    return out;
  }
  close() { this.dev.destroy(); }
}

// tests/wg_gen.py vectors: [{name, type, rows, cols, bytes, vals}]
function loadVectors() {
  const file = join(tmp, 'vectors.bin');
  sh(PY, ['tests/wg_gen.py', 'vectors', file]);
  const buf = readFileSync(file), dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  const u32 = () => { const v = dv.getUint32(o, true); o += 4; return v; };
  const recs = [];
  for (let n = u32(); n > 0; n--) {
    const nl = u32(), name = buf.subarray(o, o + nl).toString();
    o += nl;
    const type = u32(), rows = u32(), cols = u32(), nb = u32();
    const bytes = new Uint8Array(buf.subarray(o, o + nb));
    o += (nb + 3) & ~3;
    const vals = new Float32Array(buf.buffer.slice(buf.byteOffset + o, buf.byteOffset + o + rows * cols * 4));
    o += rows * cols * 4;
    recs.push({ name, type, rows, cols, bytes, vals });
  }
  return recs;
}

// y[t][r] = sum_k vals[r][k] x[t][k] in double.
function refProduct(rec, x, n) {
  const y = new Float32Array(n * rec.rows);
  for (let t = 0; t < n; t++)
    for (let r = 0; r < rec.rows; r++) {
      let s = 0;
      for (let k = 0; k < rec.cols; k++) s += rec.vals[r * rec.cols + k] * x[t * rec.cols + k];
      y[t * rec.rows + r] = s;
    }
  return y;
}

// ---- kernels -------------------------------------------------------------------------------

const MMT_TYPES = new Set([0, 8, 12, 14]); // dq_mmt checked on F32, Q8_0 (34-byte blocks), Q4_K, Q6_K
const MVB_TYPES = new Set([8, 2, 3, 6, 7, 12, 13, 14]); // dq_mvb.wgsl's: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K
test('generic kernels: dq_mv / dq_mvb / dq_mmt / dq_mm / dq_embed of every weight type vs gguf-py', { skip }, async () => {
  const recs = loadVectors();
  assert.equal(recs.length, 17);
  for (const sg of [true, false]) {
    const H = await Harness.open(sg);
    if (sg && !H.sg) { H.close(); continue; }
    const r = rng(sg ? 1 : 2);
    for (const rec of recs) {
      const rb = rec.bytes.length / rec.rows, what = `${rec.name} (${sg ? 'subgroups' : 'workgroup memory'})`;
      // mv_<type>: y = W x + b accumulated into y (flags 3), the input as token 1 of two (flags 4).
      const x = randn(r, 2 * rec.cols), bias = randn(r, rec.rows), y0 = randn(r, rec.rows);
      const rows = rec.rows, rpw = 256 / H.tpr;
      const [, , ymv] = await H.run('dq_mv', { WT: rec.type }, [rec.bytes, x, y0, bias],
        { rows, cols: rec.cols, row_bytes: rb, in_stride: rec.cols, flags: 7 }, { n: 2, last: 1 }, [Math.ceil(rows / rpw)]);
      const want = refProduct(rec, x.subarray(rec.cols), 1).map((v, i) => v + bias[i] + y0[i]);
      close(ymv.subarray(0, rows), want, 1e-5, `mv_${what}`);
      // mvb_<type> (the block types' decode product): the same, and with the per-tensor scale
      // (flags 8: the product times VB[norm2_off] before the bias).
      if (MVB_TYPES.has(rec.type)) {
        const [, , yb] = await H.run('dq_mvb', { WT: rec.type }, [rec.bytes, x, y0, bias],
          { rows, cols: rec.cols, row_bytes: rb, in_stride: rec.cols, flags: 7 }, { n: 2, last: 1 }, [Math.ceil(rows / rpw)]);
        close(yb.subarray(0, rows), want, 1e-5, `mvb_${what}`);
        const bs = Float32Array.from([...bias, 0.75]);
        const [, , ys] = await H.run('dq_mvb', { WT: rec.type }, [rec.bytes, x, rows * 4, bs],
          { rows, cols: rec.cols, row_bytes: rb, in_stride: rec.cols, norm2_off: rows, flags: 9 }, { n: 1 }, [Math.ceil(rows / rpw)]);
        const ws = refProduct(rec, x, 1).map((v, i) => v * 0.75 + bias[i]);
        close(ys.subarray(0, rows), ws, 1e-5, `mvb_${what} scaled`);
      }
      if (!sg) continue;
      // mmt_<type>: 70 tokens (a tile of 64 and a partial one), rows out_stride apart at out_off,
      // with bias and per-tensor scale. For four types only: SwiftShader takes ~9 s to compile it,
      // and what differs between the types is dq(), which the other kernels test for all of them.
      if (MMT_TYPES.has(rec.type)) {
        const n = 70, xs = randn(r, n * rec.cols), os = rows + 3, bs = Float32Array.from([...bias, -1.25]);
        const [, , ymm] = await H.run('dq_mmt', { WT: rec.type }, [rec.bytes, xs, (n * os + 2) * 4, bs],
          { rows, cols: rec.cols, row_bytes: rb, in_stride: rec.cols, out_off: 2, out_stride: os, norm2_off: rows, flags: 9 }, { n },
          [Math.ceil(rows / 64), Math.ceil(n / 64)]);
        const wmm = refProduct(rec, xs, n), got = new Float32Array(n * rows);
        for (let t = 0; t < n; t++)
          for (let i = 0; i < rows; i++) {
            wmm[t * rows + i] = wmm[t * rows + i] * -1.25 + bias[i];
            got[t * rows + i] = ymm[2 + t * os + i];
          }
        close(got, wmm, 1e-5, `mmt_${what}`);
      }
      // mm_<type> (the prompt product on CPU adapters): 11 tokens (two tiles of 8), with bias.
      {
        const n = 11, xs = randn(r, n * rec.cols), os = rows + 3;
        const [, , ymm] = await H.run('dq_mm', { WT: rec.type }, [rec.bytes, xs, (n * os + 2) * 4, bias],
          { rows, cols: rec.cols, row_bytes: rb, in_stride: rec.cols, out_off: 2, out_stride: os, flags: 1 }, { n },
          [Math.ceil(rows / 64), Math.ceil(n / 8)]);
        const wmm = refProduct(rec, xs, n), got = new Float32Array(n * rows);
        for (let t = 0; t < n; t++)
          for (let i = 0; i < rows; i++) {
            wmm[t * rows + i] += bias[i];
            got[t * rows + i] = ymm[2 + t * os + i];
          }
        close(got, wmm, 1e-5, `mm_${what}`);
      }
      // embed: rows 2 .. rows - 1 of the matrix as a part starting at row0 = 2, times 0.5.
      const toks = new Uint32Array([rows - 1, 0, 3]), part = rec.bytes.subarray(2 * rb);
      const [, , xe, hist] = await H.run('dq_embed', { WT: rec.type }, [part, toks, 3 * rec.cols * 4, 16],
        { rows: rows - 2, cols: rec.cols, row_bytes: rb, row0: 2, flags: 1, scale: 0.5, n_ctx: 4 }, { n: 3 },
        [Math.ceil(rec.cols / 1024), 3]);
      for (const t of [0, 2]) {
        const w = rec.vals.subarray(toks[t] * rec.cols, (toks[t] + 1) * rec.cols).map((v) => v * 0.5);
        close(xe.subarray(t * rec.cols, (t + 1) * rec.cols), w, 0, `embed ${rec.name} token ${toks[t]}`);
      }
      assert.deepEqual(Array.from(new Uint32Array(hist.buffer).subarray(0, 3)), [rows - 1, 0, 3], 'embed history');
    }
    H.close();
  }
});

// dq_mvw (the Q4_K / Q6_K decode product: 32-weight chunks a lane, quants as 1 + q / 2^n floats,
// RW rows a subgroup, RPG row passes) on gguf-py's blocks: 12 rows of 512 (Q6_K rows of 420
// bytes: block starts at 4 mod 16, the shifted loads), partial workgroups, both reductions;
// the plain form with bias + residual on token 1 of 2, and the fused RMSNorm + gate/up + SiLU form
// (the same matrix as gate and up) with two row passes on the rows repeated 6 times (72 rows:
// more than one pass of a workgroup, 64 or 32 rows with RW 1); rows split over KS subgroups.
test('generic kernels: dq_mvw (Q4_K, Q6_K; RW 1 and 2; plain and NORM + GU; split K; Q4_K on integer products) vs gguf-py', { skip }, async () => {
  const recs = loadVectors().filter((rec) => rec.type === 12 || rec.type === 14);
  assert.equal(recs.length, 2);
  for (const sg of [true, false]) {
    const H = await Harness.open(sg);
    if (sg && !H.sg) { H.close(); continue; }
    const r = rng(sg ? 3 : 4);
    for (const rec of recs) {
      const rb = rec.bytes.length / rec.rows, rows = rec.rows, cols = rec.cols;
      const x = randn(r, 2 * cols), bias = randn(r, rows), y0 = randn(r, rows), nw = randn(r, cols);
      const want = refProduct(rec, x.subarray(cols), 1).map((v, i) => v + bias[i] + y0[i]);
      // RMSNorm(token 1) with weights nw, then act(W xn) * (W xn)
      const x1 = x.subarray(cols);
      const rms = Math.sqrt(x1.reduce((a, v) => a + v * v, 0) / cols + 1e-5);
      const big = { rows: 6 * rows, cols, bytes: new Uint8Array(6 * rec.bytes.length), vals: new Float32Array(6 * rows * cols) };
      for (let i = 0; i < 6; i++) { big.bytes.set(rec.bytes, i * rec.bytes.length); big.vals.set(rec.vals, i * rows * cols); }
      const p = refProduct(big, x1.map((v, i) => (v * nw[i]) / rms), 1);
      const wantGu = p.map((v) => (v / (1 + Math.exp(-v))) * v);
      const vb = new Float32Array(16 + cols);
      vb.set(nw, 16);
      for (const rw of [1, 2]) {
        const what = `${rec.name} RW=${rw} (${sg ? 'subgroups' : 'workgroup memory'})`, rpw = (256 / H.tpr) * rw;
        const [, , y] = await H.run('dq_mvw', { WT: rec.type, RW: rw }, [rec.bytes, x, y0, bias],
          { rows, cols, row_bytes: rb, in_stride: cols, flags: 7 }, { n: 2, last: 1 }, [Math.ceil(rows / rpw)]);
        close(y.subarray(0, rows), want, 1e-5, `mvw_${what}`);
        const [, , yg] = await H.run('dq_mvw', { WT: rec.type, RW: rw, NORM: 1, GU: 1, RPG: 2 }, [big.bytes, x, big.rows * 4, vb],
          { rows: big.rows, cols, row_bytes: rb, in_stride: cols, flags: 4, q_off: 16, eps: 1e-5 }, { n: 2, last: 1 },
          [Math.ceil(big.rows / (2 * rpw))]);
        close(yg.subarray(0, big.rows), wantGu, 1e-5, `mvw_${what} NORM + GU, 2 row passes`);
      }
      // KS subgroups a row group (split K): 2 rows of 3072 (6 rows each, side by side: 96
      // chunks, so that 2 or 3 of 4 subgroups of 32 and all of the 8-lane groups take part),
      // RW 2, plain with bias + residual and NORM + GU.
      const wide = { rows: 2, cols: 6 * cols, bytes: new Uint8Array(rec.bytes.length), vals: new Float32Array(rows * cols) };
      for (let r = 0; r < rows; r++) {
        const wr = Math.floor(r / 6), part = r % 6;
        wide.bytes.set(rec.bytes.subarray(r * rb, (r + 1) * rb), wr * 6 * rb + part * rb);
        wide.vals.set(rec.vals.subarray(r * cols, (r + 1) * cols), wr * 6 * cols + part * cols);
      }
      const xw = randn(r, 2 * wide.cols), nww = randn(r, wide.cols), xw1 = xw.subarray(wide.cols);
      const wantW = refProduct(wide, xw1, 1).map((v, i) => v + bias[i] + y0[i]);
      const rmsW = Math.sqrt(xw1.reduce((a, v) => a + v * v, 0) / wide.cols + 1e-5);
      const pw = refProduct(wide, xw1.map((v, i) => (v * nww[i]) / rmsW), 1);
      // norm weights scaled so that |W xn| <= 2: act(gate) * up then stays far from 0 and inf
      const sw = 2 / Math.max(...pw.map(Math.abs));
      for (let i = 0; i < nww.length; i++) nww[i] *= sw;
      for (let i = 0; i < pw.length; i++) pw[i] *= sw;
      const vbw = new Float32Array(16 + wide.cols);
      vbw.set(nww, 16);
      for (const ks of [2, 4]) {
        const what = `${rec.name} KS=${ks} (${sg ? 'subgroups' : 'workgroup memory'})`, rpw = (256 / H.tpr / ks) * 2;
        const [, , y] = await H.run('dq_mvw', { WT: rec.type, RW: 2, KS: ks }, [wide.bytes, xw, y0.subarray(0, 2), bias.subarray(0, 2)],
          { rows: 2, cols: wide.cols, row_bytes: 6 * rb, in_stride: wide.cols, flags: 7 }, { n: 2, last: 1 }, [Math.ceil(2 / rpw)]);
        close(y.subarray(0, 2), wantW, 1e-5, `mvw_${what}`);
        // gate = up = the wide matrix: act(p) * p of each row
        const [, , yg] = await H.run('dq_mvw', { WT: rec.type, RW: 2, KS: ks, NORM: 1, GU: 1 }, [wide.bytes, xw, 8, vbw],
          { rows: 2, cols: wide.cols, row_bytes: 6 * rb, in_stride: wide.cols, flags: 4, q_off: 16, eps: 1e-5 },
          { n: 2, last: 1 }, [1]);
        close(yg.subarray(0, 2), pw.map((v) => (v / (1 + Math.exp(-v))) * v), 1e-5, `mvw_${what} NORM + GU`);
      }
      // IQ (Q4_K): the input quantised to 16 bits per 32-block in workgroup memory, integer
      // products (relative error ~1e-5): the plain form on the 12 rows (RW 1, 2) and the wide rows
      // (KS 2), the NORM + GU form on the wide rows
      if (rec.type === 12) {
        for (const rw of [1, 2]) {
          const what = `${rec.name} IQ RW=${rw} (${sg ? 'subgroups' : 'workgroup memory'})`, rpw = (256 / H.tpr) * rw;
          const [, , y] = await H.run('dq_mvw', { WT: 12, RW: rw, IQ: 1, KMAX: cols }, [rec.bytes, x, y0, bias],
            { rows, cols, row_bytes: rb, in_stride: cols, flags: 7 }, { n: 2, last: 1 }, [Math.ceil(rows / rpw)]);
          close(y.subarray(0, rows), want, 1e-4, `mvw_${what}`);
        }
        const what = `${rec.name} IQ KS=2 (${sg ? 'subgroups' : 'workgroup memory'})`;
        const [, , y] = await H.run('dq_mvw', { WT: 12, RW: 2, KS: 2, IQ: 1, KMAX: wide.cols }, [wide.bytes, xw, y0.subarray(0, 2), bias.subarray(0, 2)],
          { rows: 2, cols: wide.cols, row_bytes: 6 * rb, in_stride: wide.cols, flags: 7 }, { n: 2, last: 1 }, [1]);
        close(y.subarray(0, 2), wantW, 1e-4, `mvw_${what}`);
        const [, , yg] = await H.run('dq_mvw', { WT: 12, RW: 2, IQ: 1, KMAX: wide.cols, NORM: 1, GU: 1 }, [wide.bytes, xw, 8, vbw],
          { rows: 2, cols: wide.cols, row_bytes: 6 * rb, in_stride: wide.cols, flags: 4, q_off: 16, eps: 1e-5 },
          { n: 2, last: 1 }, [1]);
        close(yg.subarray(0, 2), pw.map((v) => (v / (1 + Math.exp(-v))) * v), 1e-4, `mvw_${what} NORM + GU`);
      }
    }
    H.close();
  }
});

// dq_mms (the prompt product on subgroup matrices, which SwiftShader lacks) with its matrix
// builtins emulated (tests/sgmat-emu.mjs): the rest of the kernel as written (decoding, the
// 16-bit requantisation, the block scaling, tile bounds, bias, scale, residual) on two K-quant
// types against gguf-py. The real builtins run in tests/webgpu.test.mjs on a GPU (bench/gpu-test.sh).
test('generic kernels: quant + dq_mms (subgroup matrices emulated) on Q4_K and Q6_K vs gguf-py', { skip }, async (t) => {
  const H = await Harness.open(true);
  if (!H.sg) { H.close(); t.skip('no subgroups (dq_mms takes a row\'s max through subgroupShuffleXor)'); return; }
  if (MMG_MEM > H.dev.limits.maxComputeWorkgroupStorageSize) { H.close(); t.skip(`dq_mms needs ${MMG_MEM} bytes of workgroup memory`); return; }
  H.bridge.sgMatSource = emulateSgMat;
  const r = rng(3);
  for (const rec of loadVectors().filter((v) => v.type === 12 || v.type === 14)) {
    const n = 70, cols = rec.cols, rows = rec.rows, rb = rec.bytes.length / rows, stride = cols + 32;
    const cap = Math.ceil(n / MMG.TT) * MMG.TT, LO = (cap * cols) / 4, SC = 2 * LO, xqBytes = (SC + (cap * cols) / 128) * 4;
    const x = randn(r, n * stride), xs = new Float32Array(n * cols);
    x[5] = 30; // an outlier in token 0's first block
    for (let i = 0; i < n; i++) xs.set(x.subarray(i * stride, i * stride + cols), i * cols);
    const [, xq] = await H.run('quant', { LO, SC, XQ_WG: H.sg === 32 ? 0 : 1 }, [x, xqBytes], { cols, in_stride: stride }, { n },
      [Math.ceil((n * cols) / 128 / 4)]);
    const os = rows + 3, y0 = randn(r, (n + 1) * os), vb = Float32Array.from([...randn(r, rows), 0.5]);
    const [, , y] = await H.run('dq_mms', { WT: rec.type, LO, SC }, [rec.bytes, new Uint8Array(xq.buffer), y0, vb],
      { rows, cols, row_bytes: rb, out_off: 2, out_stride: os, norm2_off: rows, flags: 11 }, { n },
      [Math.ceil(rows / MMG.TR), Math.ceil(n / MMG.TT)]);
    const want = refProduct(rec, xs, n), got = new Float32Array(n * rows);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < rows; j++) {
        want[i * rows + j] = want[i * rows + j] * 0.5 + vb[j] + y0[2 + i * os + j];
        got[i * rows + j] = y[2 + i * os + j];
      }
    close(got, want, 3e-3, `dq_mms ${rec.name}`);
    const e = relRms(got, want);
    assert.ok(e < 3e-4, `dq_mms ${rec.name}: relative RMS ${e}`);
    t.diagnostic(`dq_mms ${rec.name}: relative RMS ${e.toExponential(2)}`);
    assert.deepEqual([y[0], y[1]], [y0[0], y0[1]], 'before out_off');
    for (let j = 0; j < os; j++) assert.equal(y[2 + n * os + j], y0[2 + n * os + j], `token ${n} row ${j}`);
  }
  H.close();
});

test('generic kernels: norm, rope, act vs JS references', { skip }, async () => {
  const H = await Harness.open(false);
  const r = rng(3);
  // RMSNorm and LayerNorm (+ bias) over 3 tokens of 96 at a stride of 100.
  const n = 3, C = 96, S = 100, x = randn(r, n * S, 2), w = randn(r, 2 * C);
  for (const ln of [false, true]) {
    const [, y] = await H.run('norm', { LN: ln }, [x, n * C * 4, w],
      { cols: C, in_stride: S, out_stride: C, norm_off: 0, norm2_off: C, eps: 1e-5 }, { n }, [1, n]);
    const want = new Float32Array(n * C);
    for (let t = 0; t < n; t++) {
      const v = x.subarray(t * S, t * S + C);
      const mean = ln ? v.reduce((a, b) => a + b, 0) / C : 0;
      const r2 = 1 / Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / C + 1e-5);
      for (let i = 0; i < C; i++) want[t * C + i] = (v[i] - mean) * r2 * w[i] + (ln ? w[C + i] : 0);
    }
    close(y, want, 1e-5, ln ? 'layernorm' : 'rmsnorm');
  }
  // QK-norm in place: 2 q heads (weights at 0) and 1 k head (weights at HD) of 32.
  {
    const HD = 32, q = randn(r, 3 * HD), wq = randn(r, 2 * HD);
    const [got] = await H.run('norm', { INPLACE: true, QK: true }, [q, 16, wq],
      { cols: HD, in_stride: 3 * HD, norm_off: 0, norm2_off: HD, n_head: 2, eps: 1e-6 }, { n: 1 }, [3, 1]);
    const want = new Float32Array(3 * HD);
    for (let h = 0; h < 3; h++) {
      const v = q.subarray(h * HD, (h + 1) * HD), r2 = 1 / Math.sqrt(v.reduce((a, b) => a + b * b, 0) / HD + 1e-6);
      for (let i = 0; i < HD; i++) want[h * HD + i] = v[i] * r2 * wq[(h < 2 ? 0 : HD) + i];
    }
    close(got, want, 1e-5, 'qk-norm');
  }
  // RoPE, both layouts, partial (NROT 16 of HD 32), f32 and f16 cache: 2 q heads, 1 kv head, 2
  // tokens at positions 3, 4 of a 6-position cache.
  for (const [neox, kv16] of [[true, false], [false, false], [false, true]]) {
    const HD = 32, NROT = 16, half = NROT / 2, nh = 2, nkv = 1, QS = (nh + 2 * nkv) * HD, nctx = 6, pos = 3;
    const qkv = randn(r, 2 * QS), tab = new Float32Array(nctx * half * 2);
    for (let p = 0; p < nctx; p++)
      for (let i = 0; i < half; i++) {
        tab[(p * half + i) * 2] = Math.cos(p * 0.3 * (i + 1));
        tab[(p * half + i) * 2 + 1] = Math.sin(p * 0.3 * (i + 1));
      }
    const kd = nkv * HD, voff = (nctx * kd) / (kv16 ? 2 : 1);
    const [q2, kv] = await H.run('rope', { HD, NROT, NEOX: neox, KV16: kv16 }, [qkv, 2 * voff * 4, tab],
      { n_head: nh, n_head_kv: nkv, kv_dim: kd, q_stride: QS, n_ctx: nctx, v_off: voff }, { n: 2, pos }, [nh + 2 * nkv, 2]);
    const rot = (v, p) => {
      const o = Float32Array.from(v);
      for (let i = 0; i < half; i++) {
        const i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        const c = tab[(p * half + i) * 2], s = tab[(p * half + i) * 2 + 1];
        o[i0] = v[i0] * c - v[i1] * s;
        o[i1] = v[i0] * s + v[i1] * c;
      }
      return o;
    };
    for (let t = 0; t < 2; t++) {
      const base = t * QS;
      for (let h = 0; h < nh; h++)
        close(q2.subarray(base + h * HD, base + (h + 1) * HD), rot(qkv.subarray(base + h * HD, base + (h + 1) * HD), pos + t), 1e-6, `rope q (neox ${neox})`);
      const k = rot(qkv.subarray(base + nh * HD, base + (nh + 1) * HD), pos + t), v = qkv.subarray(base + (nh + 1) * HD, base + (nh + 2) * HD);
      let gk, gv;
      if (kv16) {
        const u = new Uint32Array(kv.buffer);
        const h2f = (b) => { const s = b & 0x8000 ? -1 : 1, e = (b >> 10) & 31, m = b & 1023; return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15); };
        const dec = (o) => Float32Array.from({ length: HD }, (_, i) => h2f((u[o + (i >> 1)] >>> (16 * (i & 1))) & 0xffff));
        gk = dec(((pos + t) * kd) / 2);
        gv = dec(voff + ((pos + t) * kd) / 2);
        close(gk, k, 1e-3, 'rope k f16');
        close(gv, v, 1e-3, 'rope v f16');
      } else {
        gk = kv.subarray((pos + t) * kd, (pos + t) * kd + HD);
        gv = kv.subarray(voff + (pos + t) * kd, voff + (pos + t) * kd + HD);
        close(gk, k, 1e-6, `rope k (neox ${neox})`);
        close(gv, v, 0, 'rope v');
      }
    }
  }
  // act: SiLU, GELU, ReLU^2, gated (u at in_off) or not; 2 tokens of 300 in a buffer of 2 x 2 x 300.
  const F = 300, gu = randn(r, 4 * F, 4);
  const acts = [(v) => v / (1 + Math.exp(-v)), (v) => 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v ** 3))), (v) => (v > 0 ? v * v : 0)];
  for (let a = 0; a < 3; a++)
    for (const gated of [true, false]) {
      const [got] = await H.run('act', { ACT: a, GATED: gated }, [gu], { n_ff: F, in_off: 2 * F }, { n: 2 }, [2, 2]);
      const want = Float32Array.from({ length: 2 * F }, (_, i) => acts[a](gu[i]) * (gated ? gu[2 * F + i] : 1));
      close(got.subarray(0, 2 * F), want, 1e-5, `act ${a} gated ${gated}`);
    }
  H.close();
});

// attn_one.wgsl (decode attention) split over the keys: workgroup (h, s) takes the s-th range of
// whole 32-key tiles and writes its partial {m, l, o} (or, with one range, the output), the MERGE
// form combines a head's partials. Heads of 40 dims staged as 64, GQA 4 q heads over 2 KV heads;
// one range, a partial last tile, ranges of several tiles with a shorter last one, and more ranges
// than tiles (empty ones), on the f32 and the f16 cache, against a double-precision softmax.
test('generic kernels: attn_one split over the keys + merge vs a JS reference', { skip }, async () => {
  const H = await Harness.open(false);
  const r = rng(5);
  const nh = 4, nkv = 2, HDR = 40, HD = 64, nctx = 320, kd = nkv * HDR, SM = 8, scale = 1 / Math.sqrt(HDR);
  // f16-exact values (multiples of 1/64 in [-2, 2)) so that both caches hold the same numbers
  const grid64 = (n) => Float32Array.from({ length: n }, () => Math.floor((r() * 2 - 1) * 128) / 64);
  const q = grid64(nh * HDR), k = grid64(nctx * kd), v = grid64(nctx * kd);
  const f2h = (x) => { // exact for these values (normal f16 or zero)
    if (x === 0) return 0;
    const b = new DataView(new Float32Array([x]).buffer).getUint32(0, true);
    return ((b >>> 16) & 0x8000) | ((((b >>> 23) & 255) - 112) << 10) | ((b >>> 13) & 1023);
  };
  const cache = (kv16) => {
    if (!kv16) { const c = new Float32Array(2 * nctx * kd); c.set(k); c.set(v, nctx * kd); return c; }
    const u = new Uint32Array(nctx * kd); // K then V, two f16 a word
    for (let i = 0; i < nctx * kd; i += 2) {
      u[i / 2] = f2h(k[i]) | (f2h(k[i + 1]) << 16);
      u[(nctx * kd + i) / 2] = f2h(v[i]) | (f2h(v[i + 1]) << 16);
    }
    return u;
  };
  const ref = (pos) => {
    const o = new Float32Array(nh * HDR);
    for (let h = 0; h < nh; h++) {
      const g = Math.floor(h / (nh / nkv)), sc = [];
      for (let j = 0; j <= pos; j++) {
        let d = 0;
        for (let i = 0; i < HDR; i++) d += q[h * HDR + i] * k[j * kd + g * HDR + i];
        sc.push(d * scale);
      }
      const m = Math.max(...sc), w = sc.map((x) => Math.exp(x - m)), l = w.reduce((a, b) => a + b, 0);
      for (let i = 0; i < HDR; i++) {
        let a = 0;
        for (let j = 0; j <= pos; j++) a += w[j] * v[j * kd + g * HDR + i];
        o[h * HDR + i] = a / l;
      }
    }
    return o;
  };
  for (const kv16 of [false, true]) {
    const kv = cache(kv16);
    const prm = { n_head: nh, n_head_kv: nkv, kv_dim: kd, n_ctx: nctx, v_off: (nctx * kd) / (kv16 ? 2 : 1), scale };
    const cases = kv16 ? [[299, 3]] : [[0, 1], [44, 2], [299, 3], [99, 7], [299, 1], [319, 8]];
    for (const [pos, splits] of cases) {
      const what = `attn_one pos ${pos} splits ${splits} (${kv16 ? 'f16' : 'f32'} cache)`;
      const kc = { HD, HDR, KV16: kv16, SPLITS_MAX: SM };
      const [, , o1, part] = await H.run('attn_one', kc, [q, kv, nh * HDR * 4, nh * SM * (HD + 4) * 4], prm,
        { n: 1, pos, splits }, [nh, splits]);
      let got = o1;
      if (splits > 1) [, , got] = await H.run('attn_one', { ...kc, MERGE: true }, [q, kv, nh * HDR * 4, part], prm,
        { n: 1, pos, splits }, [nh, 1]);
      close(got.subarray(0, nh * HDR), ref(pos), 1e-5, what);
    }
  }
  H.close();
});

// ---- whole models --------------------------------------------------------------------------

const PROMPT = [258, 72, 101, 108, 108, 111, 32, 119]; // 8 tokens: one prompt chunk
const MODELS = [
  ['llama', 'f32', []], ['llama', 'q8_0', []], ['llama', 'f16', ['rope_freqs']], ['llama', 'bf16', ['tied']],
  ['qwen2', 'q8_0', []], ['qwen2', 'f32', ['tied']], ['qwen2', 'q4_0', []],
  ['qwen3', 'f16', []], // Qwen3's layer (QK-norm) on weights other than Q1_0: the generic plan too
];

function cpuLogits(file, toks) {
  const out = join(tmp, 'cpu.bin');
  sh(join(root, 'build/onebit'), ['logits', '-m', file, '--backend', 'scalar', '--tokens', toks.join(','), '--out', out]);
  const b = readFileSync(out);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

for (const [arch, type, extra] of MODELS) {
  const what = `${arch} ${type}${extra.length ? ' ' + extra.join(' ') : ''}`;
  test(`whole model ${what}: WebGPU generic plan vs the CPU scalar backend`, { skip }, async (t) => {
    const file = join(tmp, `${arch}-${type}-${extra.join('-')}.gguf`);
    sh(PY, ['tests/wg_gen.py', 'model', file, arch, type, ...extra]);
    let want;
    try {
      want = cpuLogits(file, PROMPT);
    } catch (e) {
      // This branch's CPU side decodes F32/F16/BF16/Q8_0/Q1_0; the other types arrive with the CPU
      // quant work, and then this model runs here too.
      if (/type|unsupported/i.test(String(e.stderr))) { t.skip(`the CPU backend does not run ${type} yet`); return; }
      throw e;
    }
    const eng = await Engine.create({ backend: 'webgpu', gpu });
    try {
      await eng.load(file, { nCtx: 64 });
      const V = eng.info.nVocab;
      // f32 activations on both sides, the same dequantised weights: only summation order and
      // exp / sqrt differ (~1e-6); 1e-4 leaves room and still catches any wrong element.
      const got = await eng.logits(PROMPT);
      const e = relRms(got, want);
      assert.ok(e <= 1e-4, `prompt path: relative RMS ${e}`);
      t.diagnostic(`prompt path: relative RMS ${e.toExponential(2)}`);
      for (let i = 0; i < PROMPT.length; i++) assert.equal(argmax(got, i * V, V), argmax(want, i * V, V), `argmax at ${i}`);
      // decode path: one token a step (dq_mv)
      eng.reset();
      for (let i = 0; i < 3; i++) {
        const [{ p }] = eng.gpuBegin([PROMPT[i]], 2 /* OB_STEP_LOGITS */);
        await eng.endStep(p);
        const lp = eng.M._ob_logits(eng.ctx, -1) >>> 2;
        const e1 = relRms(eng.M.HEAPF32.slice(lp, lp + V), want.subarray(i * V, (i + 1) * V));
        assert.ok(e1 <= 1e-4, `decode position ${i}: relative RMS ${e1}`);
        // the generic plan's list: embedding, 9 a layer (10 with QK-norm: q, k, v of one type
        // are one product; the RoPE inside the attention), output norm, head; on dq_mvb types
        // (Q8_0, Q4_0 here) the RMSNorms run inside the products and gate + up + act are one
        // dispatch: 5 a layer (6), no output norm
        const fused = type === 'q8_0' || type === 'q4_0';
        const perLayer = (fused ? 5 : 9) + (arch === 'qwen3' ? 1 : 0);
        assert.equal(eng.bridge.dispatches, (fused ? 2 : 3) + eng.info.nLayer * perLayer, 'dispatches a decode step');
      }
      // greedy generation through the GPU argmax + sampler equals the CPU logits' argmax
      const r = await eng.generate(PROMPT.slice(0, 5), { maxTokens: 3, sampling: { temperature: 0 } });
      const seq = [...PROMPT.slice(0, 5), ...r.tokens];
      const cpu = cpuLogits(file, seq.slice(0, -1));
      for (let i = 0; i < r.tokens.length; i++) {
        const at = 4 + i, best = argmax(cpu, at * V, V), row = cpu.subarray(at * V, (at + 1) * V);
        // a near-tie may go either way
        assert.ok(r.tokens[i] === best || row[best] - row[r.tokens[i]] < 1e-4 * Math.abs(row[best]),
          `generated token ${i}: ${r.tokens[i]}, CPU argmax ${best}`);
      }
      if (type === 'q8_0' && arch === 'llama') {
        // decode past one tile of keys: at positions 32 .. 39 attn_one takes two ranges of keys
        // and its merge dispatch runs (one more a layer)
        const long = Array.from({ length: 40 }, (_, i) => (PROMPT[i % PROMPT.length] + 7 * i) % V);
        const wl = cpuLogits(file, long);
        eng.reset();
        for (let i = 0; i < long.length; i++) {
          const [{ p }] = eng.gpuBegin([long[i]], i >= 32 ? 2 /* OB_STEP_LOGITS */ : 0);
          await eng.endStep(p);
          if (i < 32) continue;
          const lp = eng.M._ob_logits(eng.ctx, -1) >>> 2;
          const e1 = relRms(eng.M.HEAPF32.slice(lp, lp + V), wl.subarray(i * V, (i + 1) * V));
          assert.ok(e1 <= 1e-4, `decode position ${i} (two key ranges): relative RMS ${e1}`);
          assert.equal(eng.bridge.dispatches, 2 + eng.info.nLayer * 6, `dispatches a decode step at position ${i}`);
        }
        // the prompt in chunks of 3 (attention over earlier chunks' cache) with the f16 KV cache:
        // keys and values rounded to f16 (2^-11 relative each) move the logits by ~1e-4 relative
        // RMS; 2e-3 (the fused plan's f16 check allows 1e-2)
        const e16 = await Engine.create({ backend: 'webgpu', gpu });
        try {
          await e16.load(file, { nCtx: 64, kvF16: true, batch: 3 });
          const g16 = await e16.logits(PROMPT);
          assert.ok(relRms(g16, want) <= 2e-3, `f16 cache: relative RMS ${relRms(g16, want)}`);
          t.diagnostic(`f16 cache, chunks of 3: relative RMS ${relRms(g16, want).toExponential(2)}`);
          // and one token a step (the decode kernels: attn_one.wgsl on the f16 cache)
          e16.reset();
          for (let i = 0; i < 4; i++) {
            const [{ p }] = e16.gpuBegin([PROMPT[i]], 2 /* OB_STEP_LOGITS */);
            await e16.endStep(p);
            const lp = e16.M._ob_logits(e16.ctx, -1) >>> 2;
            const e1 = relRms(e16.M.HEAPF32.slice(lp, lp + V), want.subarray(i * V, (i + 1) * V));
            assert.ok(e1 <= 2e-3, `f16 cache, decode position ${i}: relative RMS ${e1}`);
          }
        } finally {
          e16.close();
        }
      }
    } finally {
      eng.close();
    }
  });
}

// ---- files written by llama.cpp's own llama-quantize -----------------------------------------
// The K-quants and the other block types in real files (tools/make-arch-models.sh: Llama 2 shape,
// SentencePiece vocabulary of 32000, tests/run.sh makes them before this lane starts): the WebGPU
// generic plan's prompt logits and two decode steps against the CPU scalar backend on the same
// file. The same decoded weights in f32 on both sides: only summation order differs.
const ARCH = join(root, 'build/models/arch');

// The decode path (one token a step: dq_mvb on the block types, with the fused RMSNorm and
// gate + up + act where they apply) for the first n tokens against the CPU logits.
async function decodeSteps(eng, toks, want, V, n) {
  eng.reset();
  for (let i = 0; i < n; i++) {
    const [{ p }] = eng.gpuBegin([toks[i]], 2 /* OB_STEP_LOGITS */);
    await eng.endStep(p);
    const lp = eng.M._ob_logits(eng.ctx, -1) >>> 2;
    const e1 = relRms(eng.M.HEAPF32.slice(lp, lp + V), want.subarray(i * V, (i + 1) * V));
    assert.ok(e1 <= 1e-4, `decode position ${i}: relative RMS ${e1}`);
  }
}
const ARCH_TYPES = ['q4_k_m', 'q5_k_m', 'q6_k', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k_s', 'q2_0', 'tq1_0', 'tq2_0'];
for (const t of ARCH_TYPES) {
  const file = join(ARCH, `llama2-${t}.gguf`);
  test(`llama.cpp's llama2-${t}.gguf: WebGPU generic plan vs the CPU scalar backend`, { skip }, async (tt) => {
    if (!existsSync(file)) return tt.skip(`${file} missing: bash tools/make-arch-models.sh`);
    const toks = [1, 450, 4996, 17354, 1701, 29916, 432, 17204];
    const want = cpuLogits(file, toks);
    const eng = await Engine.create({ backend: 'webgpu', gpu });
    try {
      await eng.load(file, { nCtx: 32 });
      const V = eng.info.nVocab;
      const got = await eng.logits(toks);
      const e = relRms(got, want);
      assert.ok(e <= 1e-4, `relative RMS ${e}`);
      for (let i = 0; i < toks.length; i++) assert.equal(argmax(got, i * V, V), argmax(want, i * V, V), `argmax at ${i}`);
      await decodeSteps(eng, toks, want, V, 2);
      tt.diagnostic(`relative RMS ${e.toExponential(2)}`);
    } finally {
      eng.close();
    }
  });
}

// The prompt products on subgroup matrices (quant + dq_mms, chosen where the device has them),
// emulated here (tests/sgmat-emu.mjs): the host's side of that path (a quant dispatch before each
// product input, one for q/k/v and one for gate/up, dq_mms's grid, the fallback to dq_mmt for the
// head) on llama.cpp's Q4_K_M file (Q4_K and Q6_K) against the CPU scalar backend. 16-bit inputs
// and weights requantised to 16 bits a 128-block: 1e-3 as for the fused plan's mm_sg.
test("llama.cpp's llama2-q4_k_m.gguf: prompt products on (emulated) subgroup matrices vs the CPU scalar backend", { skip }, async (tt) => {
  const file = join(ARCH, 'llama2-q4_k_m.gguf');
  if (!existsSync(file)) return tt.skip(`${file} missing: bash tools/make-arch-models.sh`);
  const toks = [1, 450, 4996, 17354, 1701, 29916, 432, 17204];
  const want = cpuLogits(file, toks);
  const eng = await Engine.create({ backend: 'webgpu', gpu, subgroupMatrixEmulation: emulateSgMat });
  try {
    if (!eng.dev.sgSize) return tt.skip('no subgroups (dq_mms takes a row\'s max through subgroupShuffleXor)');
    if (MMG_MEM > eng.dev.device.limits.maxComputeWorkgroupStorageSize) return tt.skip(`dq_mms needs ${MMG_MEM} bytes of workgroup memory`);
    await eng.load(file, { nCtx: 32 });
    const V = eng.info.nVocab;
    const got = await eng.logits(toks);
    assert.ok(eng.bridge.modules.has('dq_mms') && eng.bridge.modules.has('quant'), 'the prompt products ran quant + dq_mms');
    const e = relRms(got, want);
    assert.ok(e <= 1e-3, `relative RMS ${e}`);
    for (let i = 0; i < toks.length; i++) assert.equal(argmax(got, i * V, V), argmax(want, i * V, V), `argmax at ${i}`);
    tt.diagnostic(`relative RMS ${e.toExponential(2)}`);
    await decodeSteps(eng, toks, want, V, 2); // one token a step: dq_mvb, as without subgroup matrices
  } finally {
    eng.close();
  }
});

// Gemma (tools/make-arch-models.sh: GeGLU, embeddings x sqrt(n_embd), heads of 256, one KV head,
// tied) in F32 and llama.cpp's Q4_K_M: the generic plan against the CPU scalar backend.
for (const t of ['f32', 'q4_k_m']) {
  const file = join(ARCH, `gemma-${t}.gguf`);
  test(`gemma-${t}.gguf (GeGLU, heads of 256, one KV head): WebGPU generic plan vs the CPU scalar backend`, { skip }, async (tt) => {
    if (!existsSync(file)) return tt.skip(`${file} missing: bash tools/make-arch-models.sh`);
    const toks = [1, 450, 4996, 17354, 1701, 29916, 432, 17204];
    const want = cpuLogits(file, toks);
    const eng = await Engine.create({ backend: 'webgpu', gpu });
    try {
      await eng.load(file, { nCtx: 32 });
      const V = eng.info.nVocab;
      const got = await eng.logits(toks);
      const e = relRms(got, want);
      assert.ok(e <= 1e-4, `relative RMS ${e}`);
      for (let i = 0; i < toks.length; i++) assert.equal(argmax(got, i * V, V), argmax(want, i * V, V), `argmax at ${i}`);
      await decodeSteps(eng, toks, want, V, 2);
      tt.diagnostic(`relative RMS ${e.toExponential(2)}`);
    } finally {
      eng.close();
    }
  });
}

// Phi-2 (heads of 80 staged in attention.wgsl's 128, partial NeoX rotary, LayerNorm + biases, a
// parallel block, fused qkv with bias, GELU, output bias) in llama.cpp's Q4_K_M, and BitNet
// (sub-norms, per-tensor *.scale tensors, ReLU² and SiLU files): the generic plan against the CPU
// scalar backend, prompt path and three decode steps.
for (const name of ['phi2-q4_k_m', 'bitnet-f16', 'bitnet-relu2-f32']) {
  const file = join(ARCH, `${name}.gguf`);
  test(`${name}.gguf: WebGPU generic plan vs the CPU scalar backend`, { skip }, async (tt) => {
    if (!existsSync(file)) return tt.skip(`${file} missing: bash tools/make-arch-models.sh`);
    const toks = [1, 450, 4996, 17354, 1701, 29916, 432, 17204];
    const want = cpuLogits(file, toks);
    const eng = await Engine.create({ backend: 'webgpu', gpu });
    try {
      await eng.load(file, { nCtx: 32 });
      const V = eng.info.nVocab;
      const got = await eng.logits(toks);
      const e = relRms(got, want);
      assert.ok(e <= 1e-4, `prompt path: relative RMS ${e}`);
      for (let i = 0; i < toks.length; i++) assert.equal(argmax(got, i * V, V), argmax(want, i * V, V), `argmax at ${i}`);
      eng.reset();
      for (let i = 0; i < 3; i++) {
        const [{ p }] = eng.gpuBegin([toks[i]], 2 /* OB_STEP_LOGITS */);
        await eng.endStep(p);
        const lp = eng.M._ob_logits(eng.ctx, -1) >>> 2;
        const e1 = relRms(eng.M.HEAPF32.slice(lp, lp + V), want.subarray(i * V, (i + 1) * V));
        assert.ok(e1 <= 1e-4, `decode position ${i}: relative RMS ${e1}`);
      }
      tt.diagnostic(`prompt path: relative RMS ${e.toExponential(2)}`);
    } finally {
      eng.close();
    }
  });
}

// The generic plan's kernels come from a module of their own, imported when a model first needs
// them (web/gpu.mjs): where it cannot be loaded (a host that left it out, a network error) the
// load fails with a message that says so, and the engine is still usable for the fused plan.
test('the generic plan\'s kernel module missing: a clear error, not a crash', { skip }, async () => {
  const file = join(tmp, 'tiny-q8_0-nokernels.gguf');
  sh(join(root, 'build/mkmodel'), ['-o', file, '--preset', 'tiny', '--type', 'q8_0']);
  const eng = await Engine.create({ backend: 'webgpu', gpu, kernelsGenericUrl: new URL('../build/wasm/no-such-kernels.mjs', import.meta.url) });
  try {
    await assert.rejects(eng.load(file, { nCtx: 64 }), /the generic plan's kernels could not be loaded/);
  } finally {
    eng.close();
  }
  const ok = await Engine.create({ backend: 'webgpu', gpu, kernelsGenericUrl: new URL('../build/wasm/no-such-kernels.mjs', import.meta.url) });
  try {
    const info = await ok.load(join(root, 'build/models/tiny.gguf'), { nCtx: 64 });
    assert.equal(info.backend, 'webgpu');
    assert.equal((await ok.logits([1, 2])).length, 2 * info.nVocab);
  } finally {
    ok.close();
  }
});
