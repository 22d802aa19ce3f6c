#!/usr/bin/env node
// kernel-bench.mjs — times single WGSL kernels of src/webgpu/kernels on the GPU at Bonsai-1.7B sizes:
// each configuration is dispatched N times in one compute pass (each dispatch depends on the
// previous one through its output buffer, as in a forward pass) and the wall time per dispatch
// is reported, next to an empty kernel's (the floor). For tuning kernel shapes on a real GPU;
// correctness is tests/webgpu.test.mjs's job. Random weights and inputs.
// With subgroup matrices (Dawn's allow_unsafe_apis): the prompt product src/webgpu/kernels/mm_sg.wgsl at
// the shapes of a 512-token chunk, and candidate files with the same bindings (--mm-variant FILE,
// its tile from a line `// tile: R x T`, the shipped kernel's from its consts TR and TT; the host
// adds the same directives, so a candidate may rely on the subgroup-matrix uniformity diagnostic
// being off). Every output is compared with the shipped kernel's (the candidates compute the same
// integers, so they agree to float rounding). The same for the product on packed integer dot
// products, src/webgpu/kernels/mm_dp.wgsl (every adapter), with candidates from --dp-variant FILE.
//   node bench/kernel-bench.mjs [--n 400] [--no-subgroups] [--only SUBSTRING] [--mm-variant FILE]...
//                               [--dp-variant FILE]... [--small]
// --small: the products only at a small odd shape (200 x 384, 70 tokens: partial tiles), one
// timed dispatch: a quick check of candidates against the shipped kernel on a CPU adapter.
// --mv: only the generic plan's decode products (dq_mvb.wgsl and, where the build has it,
// dq_mvw.wgsl, with rows split over KS = 2 and 4 subgroups where it has that) at the shapes of a Llama-3.1-8B Q4_K_M file (Q4_K q / o / gate+up / down, Q6_K
// down and the 128256 x 4096 output head, both forms) and of the Qwen2.5-1.5B Q8_0 file: time a dispatch,
// the weight bytes it reads per second, and each form's output against dq_mvb's (relative RMS);
// random blocks with sane f16 scales. --mv-only SUBSTRING limits it to the shapes named so.
import { readFileSync } from 'node:fs';
import { KERNELS as K0 } from '../build/wasm/kernels.mjs';
import { GpuBridge, openDevice } from '../web/gpu.mjs';
// kernels-generic.mjs (the generic plan's kernels) where the build has it; an older build's
// kernels.mjs holds every kernel and wins
const KERNELS = { ...(await import('../build/wasm/kernels-generic.mjs').then((m) => m.KERNELS, () => ({}))), ...K0 };

const args = process.argv.slice(2);
const opt = { n: 400, sg: true, only: '', mmVariants: [], dpVariants: [], small: false, mv: false, mvOnly: '' };
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--n') opt.n = Number(args[++i]);
  else if (args[i] === '--no-subgroups') opt.sg = false;
  else if (args[i] === '--only') opt.only = args[++i];
  else if (args[i] === '--mm-variant') opt.mmVariants.push(args[++i]);
  else if (args[i] === '--dp-variant') opt.dpVariants.push(args[++i]);
  else if (args[i] === '--small') opt.small = true;
  else if (args[i] === '--mv') opt.mv = true;
  else if (args[i] === '--mv-only') { opt.mv = true; opt.mvOnly = args[++i]; }
  else die(`unknown option ${args[i]}`);
}
function die(msg) {
  console.error(`kernel-bench: ${msg}`);
  process.exit(2);
}
const readVariant = (f) => {
  try {
    return readFileSync(f, 'utf8');
  } catch (e) {
    return die(`cannot read variant ${f}: ${e.message}`);
  }
};
const mmSources = opt.mmVariants.map(readVariant), dpSources = opt.dpVariants.map(readVariant);
const { create, globals } = await import('webgpu');
Object.assign(globalThis, globals);
const gpu = create(['enable-dawn-features=allow_unsafe_apis']);
// Dawn for Node aborts (futex / mutex assertion failures, std::system_error) once the GPU object
// is collected while its device is in use: keep it reachable for the whole run.
globalThis.onebitGpu = gpu;
const d = await openDevice(gpu, { subgroups: opt.sg });
const dev = d.device;
const br = new GpuBridge(dev, KERNELS, d.sgSize);
console.log(`adapter: ${d.info.vendor} ${d.info.description} subgroups ${d.sgSize} subgroup matrices ${d.sgMat}`);

const FIELDS = Object.fromEntries(['Params', 'Step'].map((n) => {
  const body = KERNELS.common.match(new RegExp(`struct ${n} ?\\{([^}]*)\\}`))[1];
  return [n, [...body.matchAll(/(\w+):\s*(u32|f32|i32)/g)].map((m) => [m[1], m[2]])];
}));
function pack(name, vals) {
  const f = FIELDS[name], b = new ArrayBuffer(Math.ceil((f.length * 4) / 16) * 16), dv = new DataView(b);
  f.forEach(([k, t], i) => (t === 'f32' ? dv.setFloat32(i * 4, vals[k] ?? 0, true) : dv.setUint32(i * 4, vals[k] ?? 0, true)));
  return new Uint8Array(b);
}
function buffer(bytes, fill = 'rand') {
  const size = Math.max(16, Math.ceil(bytes / 16) * 16);
  const b = dev.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  if (fill === 'rand') {
    const a = new Float32Array(size / 4);
    for (let i = 0; i < a.length; i++) a[i] = Math.random() * 0.02 - 0.01;
    dev.queue.writeBuffer(b, 0, a);
  }
  return b;
}
function q1(rows, cols) {
  const rb = (cols / 128) * 18, bytes = new Uint8Array(Math.ceil((rows * rb) / 4) * 4);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (Math.random() * 256) | 0;
  for (let r = 0; r < rows; r++) for (let b = 0; b < cols / 128; b++) { bytes[r * rb + b * 18] = 0x00; bytes[r * rb + b * 18 + 1] = 0x20; }
  const buf = dev.createBuffer({ size: bytes.length, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  dev.queue.writeBuffer(buf, 0, bytes);
  return { buf, rb };
}

// name: a kernel of src/webgpu/kernels, or { code } for a whole WGSL source.
async function time(name, constants, storage, params, step, grid) {
  const module = typeof name === 'string' ? br.module(name) : dev.createShaderModule({ code: name.code });
  const tpr = typeof name === 'string' ? { TPR: d.sgSize || 8 } : {};
  const pipe = dev.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main', constants: { ...tpr, ...constants } } });
  const ub = [pack('Params', params), pack('Step', step)].map((u) => {
    const b = dev.createBuffer({ size: u.length, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    dev.queue.writeBuffer(b, 0, u);
    return b;
  });
  const bg = dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [...storage, ...ub].map((b, i) => ({ binding: i, resource: { buffer: b } })) });
  const run = async (n) => {
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    for (let i = 0; i < n; i++) { pass.setBindGroup(0, bg); pass.dispatchWorkgroups(grid[0], grid[1] ?? 1); }
    pass.end();
    const cb = enc.finish();
    await dev.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    dev.queue.submit([cb]);
    await dev.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await run(20);
  const ms = Math.min(await run(opt.n), await run(opt.n));
  return (1000 * ms) / opt.n;
}

async function readBack(buf, bytes) {
  const rd = dev.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = dev.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, rd, 0, bytes);
  dev.queue.submit([enc.finish()]);
  await rd.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(rd.getMappedRange().slice(0));
  rd.unmap();
  rd.destroy();
  return out;
}

// Decode products at the 8B shapes (--mv). Weights: 64 random rows of the type (f16 scales set
// to small normal values) repeated over the matrix.
if (opt.mv) {
  const T = { q4_K: [12, 144, 256, [[0, 0x1c00], [2, 0x1800]]], q6_K: [14, 210, 256, [[208, 0x1c00]]], q8_0: [8, 34, 32, [[0, 0x1c00]]] };
  const weights = (type, rows, cols) => {
    const [, bs, bw, f16] = T[type], rb = (cols / bw) * bs, tr = 64;
    const tmpl = new Uint8Array(tr * rb);
    for (let i = 0; i < tmpl.length; i++) tmpl[i] = (Math.random() * 256) | 0;
    for (let r = 0; r < tr; r++) for (let b = 0; b < cols / bw; b++) for (const [o, v] of f16) {
      const a = r * rb + b * bs + o, h = v + ((Math.random() * 256) | 0);
      tmpl[a] = h & 255;
      tmpl[a + 1] = h >> 8;
    }
    const size = Math.ceil((rows * rb) / 16) * 16 + 16;
    const buf = dev.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    for (let r = 0; r < rows; r += tr) dev.queue.writeBuffer(buf, r * rb, tmpl, 0, (Math.min(tr, rows - r) * rb + 3) & ~3);
    return { buf, rb };
  };
  const sg = d.sgSize || 8;
  const xv = buffer(14336 * 4 * 2), nv = buffer(16 * 4096 * 4);
  const yv = dev.createBuffer({ size: 151936 * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  // [label, type, rows, cols, form]; form: '' plain, 'n' with the RMSNorm, 'gu' gate+up+act
  // with the norm (up rows at v_off), 'h' the output head (norm, RPG 4, the last token's row)
  const shapes = [['8B q 4096x4096', 'q4_K', 4096, 4096, 'n'], ['8B o 4096x4096 resid', 'q4_K', 4096, 4096, ''],
    ['8B gate+up 2x14336x4096', 'q4_K', 14336, 4096, 'gu'], ['8B down 4096x14336 resid', 'q4_K', 4096, 14336, ''],
    ['8B down 4096x14336 resid', 'q6_K', 4096, 14336, ''], ['8B head 128256x4096', 'q6_K', 128256, 4096, 'h'],
    ['1B gate+up 2x8192x2048', 'q4_K', 8192, 2048, 'gu'], ['1.5B gate+up 2x8960x1536', 'q8_0', 8960, 1536, 'gu'],
    ['1.5B head 151936x1536', 'q8_0', 151936, 1536, 'h'], ['1.5B qkv 2048x1536', 'q8_0', 2048, 1536, 'n'],
    ['1.5B o 1536x1536 resid', 'q8_0', 1536, 1536, ''], ['1.5B down 1536x8960 resid', 'q8_0', 1536, 8960, ''],
    // small odd shapes (only with --mv-only small: a quick check on a CPU adapter)
    ['small gate+up 2x40x512', 'q4_K', 40, 512, 'gu'], ['small o 72x768 resid', 'q4_K', 72, 768, ''],
    ['small q 24x1024', 'q4_K', 24, 1024, 'n'], ['small head 200x512', 'q6_K', 200, 512, 'h'],
    ['small down 40x2048 resid', 'q6_K', 40, 2048, '']];
  for (const [label, type, rows, cols, form] of shapes) {
    if (opt.mvOnly ? !`${label} ${type}`.includes(opt.mvOnly) : label.startsWith('small')) continue;
    const [wt] = T[type], gu = form === 'gu';
    const Wm = weights(type, gu ? 2 * rows : rows, cols);
    const bytes = (gu ? 2 : 1) * rows * Wm.rb;
    const P = { rows, cols, row_bytes: Wm.rb, eps: 1e-6, in_stride: cols, out_off: 0, flags: form === '' ? 2 : form === 'h' ? 4 : 0,
      q_off: form === '' ? 0 : 4096, v_off: gu ? rows * Wm.rb : 0, n_embd: cols };
    const forms = [['dq_mvb', { WT: wt, NORM: form !== '' ? 1 : 0, GU: gu ? 1 : 0, RPG: form === 'h' ? 4 : 1 }, form === 'h' ? 4 : 1]];
    if ((type === 'q4_K' || type === 'q6_K') && KERNELS.dq_mvw)
      for (const [rw, ks] of [[1, 1], [2, 1], [2, 2], [2, 4]]) {
        const rpg = form === 'h' ? 4 : 1;
        if (ks > 1 && (!/override KS/.test(KERNELS.dq_mvw) || cols / 32 < ks * sg)) continue;
        forms.push([`dq_mvw RW=${rw}${ks > 1 ? ` KS=${ks}` : ''}`, { WT: wt, NORM: form !== '' ? 1 : 0, GU: gu ? 1 : 0, RW: rw, RPG: rpg, ...(ks > 1 ? { KS: ks } : {}) }, (rw * rpg) / ks]);
        // the integer-product form (IQ: the input quantised in workgroup memory), Q4_K
        if (type === 'q4_K' && /override IQ/.test(KERNELS.dq_mvw) && rw === 2)
          forms.push([`dq_mvw RW=2${ks > 1 ? ` KS=${ks}` : ''} IQ`, { WT: wt, NORM: form !== '' ? 1 : 0, GU: gu ? 1 : 0, RW: 2, RPG: rpg, IQ: 1,
            KMAX: Math.ceil(cols / 256) * 256, ...(ks > 1 ? { KS: ks } : {}) }, (2 * rpg) / ks]);
      }
    let ref = null;
    for (const [kname, consts, rpw] of forms) {
      const name = kname.split(' ')[0], tag = `${label} ${type} ${kname}`;
      try {
        const grid = Math.ceil(rows / ((256 / sg) * rpw));
        dev.pushErrorScope('validation');
        const us = await time(name, consts, [Wm.buf, xv, yv, nv], P, { n: 1, last: 0 }, [grid]);
        // the output of the plain form (without the residual), against dq_mvb's; NaN before it
        // (a kernel that did not run reads as WRONG)
        dev.queue.writeBuffer(yv, 0, new Float32Array(rows).fill(NaN));
        await time(name, consts, [Wm.buf, xv, yv, nv], { ...P, flags: P.flags & ~2 }, { n: 1, last: 0 }, [grid]);
        const err = await dev.popErrorScope();
        if (err) throw new Error(err.message.split('\n')[0]);
        const y = await readBack(yv, rows * 4);
        let note = '';
        if (!ref) ref = y;
        else {
          let e2 = 0, r2 = 0;
          for (let i = 0; i < rows; i++) { e2 += (y[i] - ref[i]) ** 2; r2 += ref[i] ** 2; }
          const rel = Math.sqrt(e2 / r2);
          note = ` rel RMS ${rel.toExponential(2)} vs dq_mvb${rel < (consts.IQ ? 1e-4 : 1e-5) ? '' : ' WRONG'}`;
        }
        if (!y.every(Number.isFinite)) note += ' (not finite: WRONG)';
        {
        }
        console.log(`mv ${tag.padEnd(52)} ${us.toFixed(2).padStart(8)} us ${(bytes / us / 1e3).toFixed(0).padStart(6)} GB/s${note}`);
      } catch (e) {
        console.log(`mv ${tag}: failed ${e.message}`);
      }
    }
    Wm.buf.destroy();
  }
  process.exit(0);
}

const E = 2048, F = 6144, QD = 2048, QS = 4096, V = 151936, HD = 128, NH = 16;
const x = buffer(F * 4 * 4), y = buffer(V * 4), nw = buffer(F * 4), am = buffer(V * 8);
const Wo = q1(E, QD), Wd = q1(E, F), Wqkv = q1(QS, E), Wgu = q1(2 * F, E), Wh = q1(V, E);
const part = buffer(NH * 32 * (HD + 4) * 4);
const results = [];
async function cfg(label, ...a) {
  if (opt.only && !label.includes(opt.only)) return;
  try {
    const us = await time(...a);
    results.push([label, us]);
    console.log(`${label.padEnd(48)} ${us.toFixed(2)} us`);
  } catch (e) {
    console.log(`${label}: failed ${e.message}`);
  }
}
const mp = (rows, cols, W, extra = {}) => ({ rows, cols, row_bytes: W.rb, eps: 1e-6, in_stride: cols, ...extra });

const Wt = q1(256, 128);
await cfg('matvec tiny 256x128 ROWS=32', 'matvec', { ROWS: 32, RESID: 1 }, [Wt.buf, x, y, nw, am], mp(256, 128, Wt), { n: 1 }, [8]);
await cfg('rmsnorm 1 row (near-empty kernel)', 'rmsnorm', {}, [x, y, nw], { cols: 2048, eps: 1e-6 }, { n: 1 }, [1]);
for (const R of [8, 16, 32, 64]) {
  await cfg(`matvec o-proj 2048x2048 resid ROWS=${R}`, 'matvec', { ROWS: R, RESID: 1, KW: 64 }, [Wo.buf, x, y, nw, am], mp(E, QD, Wo), { n: 1 }, [Math.ceil(E / R)]);
}
for (const R of [16, 32, 64]) {
  await cfg(`matvec down 2048x6144 resid ROWS=${R}`, 'matvec', { ROWS: R, RESID: 1, QXW: F / 4, KW: 192 }, [Wd.buf, x, y, nw, am], mp(E, F, Wd), { n: 1 }, [Math.ceil(E / R)]);
  await cfg(`matvec qkv 4096x2048 norm ROWS=${R}`, 'matvec', { ROWS: R, NORM: 1, KW: 64 }, [Wqkv.buf, x, y, nw, am], mp(QS, E, Wqkv), { n: 1 }, [Math.ceil(QS / R)]);
  await cfg(`gateup 2x6144x2048 ROWS=${R}`, 'gateup', { ROWS: R, KW: 64 }, [Wgu.buf, x, y, nw], mp(F, E, Wgu), { n: 1 }, [Math.ceil(F / R)]);
}
for (const R of [32, 64, 128, 256]) {
  await cfg(`matvec head 151936x2048 ROWS=${R}`, 'matvec', { ROWS: R, NORM: 1, LASTROW: 1, ARGMAX: 1, KW: 64 }, [Wh.buf, x, y, nw, am], mp(V, E, Wh), { n: 1 }, [Math.ceil(V / R)]);
}
await cfg('matvec o-proj combine S=1 ROWS=32', 'matvec', { ROWS: 32, RESID: 1, COMBINE: 1, HD, KW: 64, CW: 512 }, [Wo.buf, part, y, nw, am], mp(E, QD, Wo), { n: 1, splits: 1 }, [E / 32]);
await cfg('matvec o-proj combine S=8 ROWS=32', 'matvec', { ROWS: 32, RESID: 1, COMBINE: 1, HD, KW: 64, CW: 512 }, [Wo.buf, part, y, nw, am], mp(E, QD, Wo), { n: 1, splits: 8 }, [E / 32]);
const kv = buffer(2 * 4096 * 1024 * 4), rope = buffer(4096 * 64 * 8), qkv = buffer(QS * 4);
const ap = { n_head: 16, n_head_kv: 8, head_dim: HD, kv_dim: 1024, n_ctx: 4096, v_off: 4096 * 1024, eps: 1e-6, scale: 0.088, norm_off: 0, norm2_off: 128 };
for (const [pos, S] of [[0, 1], [127, 2], [255, 4], [1023, 16], [4000, 32]])
  await cfg(`attn_dec pos=${pos} splits=${S}`, 'attn_dec', { HD, KV16: 0 }, [qkv, kv, part, nw, rope, nw], ap, { n: 1, pos, splits: S }, [16, S]);
// prompt attention (attention.wgsl) over a chunk of 512 tokens: QH = 2 q heads a workgroup (Bonsai)
const qkvP = buffer(512 * QS * 4), att = buffer(512 * QD * 4);
for (const [pos, kv16] of [[0, 0], [512, 0], [3584, 0], [0, 1]])
  await cfg(`attention prompt n=512 pos=${pos}${kv16 ? ' f16' : ''}`, 'attention', { HD, KV16: kv16, QH: 2 }, [qkvP, kv, att],
    { ...ap, q_stride: QS, v_off: kv16 ? 2048 * 1024 : 4096 * 1024 }, { n: 512, pos }, [NH / 2, 512 / 16]);

// The prompt products on the quantised input, 512 tokens, Bonsai shapes: `kernel` and candidates.
async function products(kernel, variants, sources) {
  const NT = opt.small ? 70 : 512, TP = 512, maxc = F, LO = (TP * maxc) / 4, SC = 2 * LO;
  const xq = buffer((SC + (TP * maxc) / 128) * 4);  // random planes; scales: small random floats
  const ym = dev.createBuffer({ size: NT * 2 * F * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const base = br.source(kernel);
  const tile = (src, re) => Number(src.match(re)?.[1] ?? 0);
  const cfgs = [{ label: kernel, code: base, tr: tile(KERNELS[kernel], /const TR ?= ?(\d+)u;/), tt: tile(KERNELS[kernel], /const TT ?= ?(\d+)u;/) }];
  variants.forEach((f, i) => {
    const src = sources[i], m = src.match(/^\/\/ tile: (\d+) x (\d+)/m);
    if (!m) die(`${f}: no line '// tile: ROWS x TOKENS'`);
    cfgs.push({ label: f, code: base.replace(KERNELS[kernel], () => src), tr: Number(m[1]), tt: Number(m[2]) });
  });
  if (!cfgs[0].tr || !cfgs[0].tt) die(`src/webgpu/kernels/${kernel}.wgsl: no const TR / TT`);
  const shapes = opt.small ? [['small', 200, 384, q1(200, 384)]] :
    [['qkv', QS, E, Wqkv], ['wo', E, QD, Wo], ['gate/up', 2 * F, E, Wgu], ['down', E, F, Wd]];
  const ref = {};
  for (const c of cfgs) {
    let sum = 0;
    for (const [k, rows, cols, W] of shapes) {
      const label = `${c.label} ${k} ${rows}x${cols} n=${NT}`;
      let us;
      try {
        us = await time({ code: c.code }, { LO, SC }, [W.buf, xq, ym], mp(rows, cols, W, { out_stride: rows }), { n: NT },
          [Math.ceil(rows / c.tr), Math.ceil(NT / c.tt)]);
      } catch (e) {
        console.log(`${label}: failed ${e.message}`);
        continue;
      }
      const y = await readBack(ym, NT * rows * 4);
      let note = '';
      if (!ref[k]) ref[k] = y;
      else {
        let e2 = 0, r2 = 0;
        for (let i = 0; i < y.length; i++) { e2 += (y[i] - ref[k][i]) ** 2; r2 += ref[k][i] ** 2; }
        if (!(Math.sqrt(e2 / r2) < 1e-5)) note = ` WRONG (relative RMS ${Math.sqrt(e2 / r2).toExponential(2)} against ${cfgs[0].label})`;
      }
      console.log(`${label.padEnd(48)} ${us.toFixed(2)} us${note}`);
      sum += us;
    }
    console.log(`${(c.label + ': a layer\'s four products').padEnd(48)} ${sum.toFixed(2)} us`);
  }
}
if (d.sgMat && (!opt.only || opt.only.includes('mm_sg'))) await products('mm_sg', opt.mmVariants, mmSources);
if (!opt.only || opt.only.includes('mm_dp')) await products('mm_dp', opt.dpVariants, dpSources);
