#!/usr/bin/env node
// webgpu-bench.mjs — the WebGPU engine (web/engine.mjs on Dawn) against llama.cpp's Vulkan build
// (through node-llama-cpp) on the same GGUF file, measured like llama-bench: pp = tokens/s of one
// batch of --pp prompt tokens from an empty cache, tg = tokens/s generating --tg tokens one at a
// time (greedy). Prints both, the ratios against the targets (tg >= 2x llama.cpp, pp >= 1x), the
// dispatches per generated token, a per-kernel profile of one decode step and one prompt chunk, and
// the time from opening the file to its first generated token, with its parts (bench/load-time.mjs).
//   node bench/webgpu-bench.mjs -m FILE [--pp 512] [--tg 128] [-r 3] [--no-llama] [--no-ours]
//                               [--kv-f16] [--no-subgroups] [--no-subgroup-matrix] [--no-profile] [--json OUT]
//                               [--dawn-enable TOGGLE]... (more Dawn toggles, e.g. disable_robustness)
//                               [--vocab N] (llama.cpp's random prompt ids below N; default: the
//                               model's vocabulary as our engine loaded it, else 151000)
//                               [--default-limits] (ask the device for the WebGPU default limits,
//                               128 MiB bindings and 256 MiB buffers, as bench/load-time.mjs does)
//                               [--no-load-time] (skip the separate load-to-first-token measurement)
// Dawn runs with allow_unsafe_apis so that experimental features (subgroup matrices for the prompt
// products) are offered where the GPU has them; --no-subgroup-matrix measures without them.
// Needs the npm packages `webgpu` and (for the comparison) `node-llama-cpp` with its Vulkan
// binaries; bench/gpu.sh sets all of that up on a GPU host. Random token ids, as llama-bench uses.
import { writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = { pp: 512, tg: 128, reps: 3, llama: true, ours: true, profile: true };
for (let i = 0; i < args.length; i++) {
  const a = args[i], v = () => args[++i];
  if (a === '-m') opt.model = v();
  else if (a === '--pp') opt.pp = Number(v());
  else if (a === '--tg') opt.tg = Number(v());
  else if (a === '-r') opt.reps = Number(v());
  else if (a === '--no-llama') opt.llama = false;
  else if (a === '--no-ours') opt.ours = false;
  else if (a === '--kv-f16') opt.kvF16 = true;
  else if (a === '--no-subgroups') opt.noSg = true;
  else if (a === '--no-subgroup-matrix') opt.noMat = true;
  else if (a === '--dawn-enable') (opt.dawn ??= []).push(v());
  else if (a === '--no-profile') opt.profile = false;
  else if (a === '--json') opt.json = v();
  else if (a === '--vocab') opt.vocab = Number(v());
  else if (a === '--default-limits') opt.defaultLimits = true;
  else if (a === '--no-load-time') opt.loadTime = false;
  else {
    console.error(`unknown option ${a}`);
    process.exit(2);
  }
}
if (!opt.model) {
  console.error('usage: node bench/webgpu-bench.mjs -m FILE [--pp N] [--tg N] [-r N] [--no-llama] [--json OUT]');
  process.exit(2);
}

const result = { model: opt.model, pp: opt.pp, tg: opt.tg };
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const fmt = (x) => (x ? x.toFixed(1) : '-');

async function benchOurs() {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  // One flag per kind: a second enable-dawn-features= would replace the first.
  const enable = [...(opt.noMat ? [] : ['allow_unsafe_apis']), ...(opt.dawn ?? [])];
  const flags = enable.length ? [`enable-dawn-features=${enable.join(',')}`] : [];
  if (opt.profile) flags.push('disable-dawn-features=timestamp_quantization');
  const gpu = create(flags);
  // Load-to-first-token first, while nothing is compiled in this process yet (bench/load-time.mjs).
  const { loadToFirstToken, describe, DEFAULT_LIMITS } = await import('./load-time.mjs');
  const limits = opt.defaultLimits ? DEFAULT_LIMITS : undefined;
  if (opt.loadTime !== false) {
    result.loadToFirstToken = await loadToFirstToken(gpu, opt.model, { limits, engine: { subgroups: !opt.noSg, subgroupMatrix: !opt.noMat } });
    console.log(`webgpu: ${describe(result.loadToFirstToken)}`);
  }
  const { Engine } = await import('../web/engine.mjs');
  const eng = await Engine.create({ backend: 'webgpu', gpu, subgroups: !opt.noSg, subgroupMatrix: !opt.noMat,
    timestamps: opt.profile, limits });
  if (limits) {
    const L = eng.dev.device.limits;
    result.limits = { maxStorageBufferBindingSize: L.maxStorageBufferBindingSize, maxBufferSize: L.maxBufferSize };
    console.log(`webgpu: device limits: binding ${L.maxStorageBufferBindingSize / 2 ** 20} MiB, buffer ${L.maxBufferSize / 2 ** 20} MiB`);
  }
  const a = eng.gpuInfo.adapter;
  console.log(`webgpu adapter: ${a.vendor} ${a.architecture} ${a.description} (subgroups: ${eng.gpuInfo.subgroupSize || 'off'}, ` +
    `subgroup matrices: ${eng.gpuInfo.subgroupMatrix ? 'on' : 'off'})`);
  const t0 = performance.now();
  const info = await eng.load(opt.model, { nCtx: Math.max(1024, opt.pp + opt.tg + 16), kvF16: opt.kvF16 });
  const loadMs = performance.now() - t0;
  console.log(`webgpu: loaded ${info.nLayer} layers, vocab ${info.nVocab} in ${loadMs.toFixed(0)} ms`);
  result.nVocab = info.nVocab;
  const r = await eng.bench({ pp: opt.pp, tg: opt.tg, reps: opt.reps });
  result.ours = { ...r, loadMs, subgroups: eng.gpuInfo.subgroupSize, subgroupMatrix: eng.gpuInfo.subgroupMatrix, kvF16: !!opt.kvF16 };
  console.log(`webgpu: pp${opt.pp} ${fmt(r.ppTps)} tok/s, tg${opt.tg} ${fmt(r.tgTps)} tok/s, ${r.dispatchesPerToken} dispatches per token`);
  if (opt.profile) {
    // One decode step and one prompt chunk: GPU time per kernel from timestamp queries (each
    // dispatch in a pass of its own), and the whole list replayed in one pass (wall clock).
    const M = eng.M;
    const sp = eng.buf('sampling', 72), dp = eng.buf('taken', 4);
    new Float64Array(M.HEAPU8.buffer, sp, 1)[0] = 0; // greedy on the device
    if (M._ob_js_set_sampling(eng.ctx, sp, 1, dp)) throw new Error('profile: sampling settings refused');
    const prof = {};
    for (const [n, pos] of [[1, 0], [1, 256], [Math.min(opt.pp, 512), 0]]) {
      eng.reset();
      if (pos) {
        const pre = Array.from({ length: pos }, (_, i) => (i * 31) % info.nVocab);
        for (const { p } of eng.gpuBegin(pre, 0)) await eng.endStep(p);
      }
      const tp = eng.buf('evaltok', n * 4), kp = eng.buf('taken', 4);
      for (let i = 0; i < n; i++) M.HEAP32[(tp >>> 2) + i] = (i * 7919) % info.nVocab;
      if (M._ob_step_begin(eng.ctx, tp, n, 8 /* OB_STEP_SAMPLE */, kp) || M.HEAP32[kp >>> 2] !== n) throw new Error('profile step failed');
      const r = await eng.bridge.execTimed(M, M._ob_wgpu_cmds(), M._ob_wgpu_cmds_len(), n === 1 ? 50 : 3);
      const [rp, rl] = eng.putReads(r.reads);
      if (M._ob_step_end(eng.ctx, rp, rl, 0)) throw new Error('profile step: bad result');
      const key = `n${n}_pos${pos}`;
      prof[key] = { gpuMs: +r.gpuMs.toFixed(4), passMs: +r.passMs.toFixed(4), hostMs: +r.hostMs.toFixed(4),
        kernels: Object.fromEntries([...r.times].map(([k, v]) => [k, { ms: +v.ms.toFixed(4), count: v.count }])) };
      console.log(`profile ${key}: kernels ${r.gpuMs.toFixed(3)} ms GPU, one pass ${r.passMs.toFixed(3)} ms, recording ${r.hostMs.toFixed(3)} ms; ` +
        [...r.times].sort((x, y) => y[1].ms - x[1].ms).map(([k, v]) => `${k} ${v.ms.toFixed(3)}ms/${v.count} (${(1000 * v.ms / v.count).toFixed(1)}us)`).join(', '));
    }
    // The floor: dependent empty dispatches (each writes one word the next reads) in one pass.
    const dev = eng.bridge.device;
    const code = `@group(0) @binding(0) var<storage, read_write> b: array<u32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x == 0u) { b[0] = b[0] + 1u; } }`;
    const pipe = dev.createComputePipeline({ layout: 'auto', compute: { module: dev.createShaderModule({ code }), entryPoint: 'main' } });
    const buf = dev.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE });
    const bg = dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
    for (const groups of [1, 132, 1024]) {
      const N = 2000;
      const enc = dev.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipe);
      for (let i = 0; i < N; i++) { pass.setBindGroup(0, bg); pass.dispatchWorkgroups(groups); }
      pass.end();
      await dev.queue.onSubmittedWorkDone();
      const t0 = performance.now();
      dev.queue.submit([enc.finish()]);
      await dev.queue.onSubmittedWorkDone();
      const us = (1000 * (performance.now() - t0)) / N;
      prof[`emptyDispatchUs_${groups}`] = +us.toFixed(2);
      console.log(`floor: ${us.toFixed(2)} us per dependent empty dispatch of ${groups} workgroups`);
    }
    buf.destroy();
    result.ours.profile = prof;
  }
  eng.close();
}

async function benchLlama() {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: 'vulkan', build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: opt.model, gpuLayers: 'max' });
  const ctx = await model.createContext({ contextSize: Math.max(1024, opt.pp + opt.tg + 16), batchSize: Math.max(opt.pp, 1), sequences: 1 });
  const seq = ctx.getSequence();
  const nv = Math.min(opt.vocab ?? result.nVocab ?? 151000, 151000); // random ids below the vocabulary
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % nv;
  const prompt = Array.from({ length: opt.pp }, rnd);
  const runPP = async () => {
    await seq.clearHistory();
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt);
    return performance.now() - t0;
  };
  const runTG = async () => {
    await seq.clearHistory();
    let n = 0;
    const t0 = performance.now();
    for await (const _ of seq.evaluate([prompt[0] ?? 1], { temperature: 0 })) if (++n >= opt.tg) break;
    return performance.now() - t0;
  };
  if (opt.pp > 0) await runPP();
  if (opt.tg > 0) await runTG();
  const tpp = [], ttg = [];
  for (let r = 0; r < opt.reps; r++) {
    if (opt.pp > 0) tpp.push(await runPP());
    if (opt.tg > 0) ttg.push(await runTG());
  }
  result.llama = {
    gpu: llama.gpu, gpuLayers: model.gpuLayers,
    ppTps: opt.pp > 0 ? opt.pp / (median(tpp) / 1000) : 0, tgTps: opt.tg > 0 ? opt.tg / (median(ttg) / 1000) : 0,
  };
  console.log(`llama.cpp (${llama.gpu}, ${model.gpuLayers} layers on GPU): pp${opt.pp} ${fmt(result.llama.ppTps)} tok/s, ` +
    `tg${opt.tg} ${fmt(result.llama.tgTps)} tok/s`);
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
}

let failed = false;
for (const [on, name, fn] of [[opt.ours, 'webgpu', benchOurs], [opt.llama, 'llama.cpp', benchLlama]]) {
  if (!on) continue;
  try {
    await fn();
  } catch (e) {
    failed = true;
    result[name === 'webgpu' ? 'oursError' : 'llamaError'] = String(e.stack ?? e);
    console.error(`${name} bench failed: ${e.stack ?? e}`);
  }
}
if (result.ours && result.llama) {
  const tg = result.ours.tgTps / result.llama.tgTps, pp = result.ours.ppTps / result.llama.ppTps;
  result.ratio = { tg, pp };
  console.log(`ratio webgpu / llama.cpp: tg ${tg.toFixed(2)}x (target >= 2x: ${tg >= 2 ? 'met' : 'not met'}), ` +
    `pp ${pp.toFixed(2)}x (target >= 1x: ${pp >= 1 ? 'met' : 'not met'})`);
}
if (opt.json) writeFileSync(opt.json, JSON.stringify(result, null, 2));
process.exit(failed ? 1 : 0);
