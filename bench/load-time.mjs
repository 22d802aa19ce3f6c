#!/usr/bin/env node
// load-time.mjs — the time from "open a stored model" to its first generated token on the WebGPU
// engine (web/engine.mjs on Dawn), with its parts: the device and the core (Engine.create), the
// header read and planned, the GPU buffers created, the weights streamed from the file into them,
// the pipelines compiled (asynchronously, overlapping the upload; the figure is the longest
// compile), the load done, and the first token (prompt step plus one decode step). Then, with -n,
// that many more tokens and their rate. A fresh process measures a cold start: Dawn has not
// compiled any of the pipelines yet.
//   node bench/load-time.mjs -m FILE [-n TOKENS (default 8)] [--default-limits] [--sync-pipelines|--async-pipelines] [--json OUT]
//                            [--dawn-enable T]... [--root CHECKOUT (another checkout's engine, e.g. before a change)]
// --sync-pipelines compiles each pipeline when its command comes (createComputePipeline), as
// before async compilation, to compare; --async-pipelines compiles asynchronously even on a CPU
// adapter in Node (SwiftShader), where the engine does not by default.
// --default-limits asks the device for the WebGPU defaults, maxStorageBufferBindingSize 128 MiB
// and maxBufferSize 256 MiB, as a small device (Android, integrated GPUs) has.
// Also a module: loadToFirstToken(gpu, file, opts) returns the figures (bench/webgpu-bench.mjs).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

export const DEFAULT_LIMITS = { maxStorageBufferBindingSize: 128 << 20, maxBufferSize: 256 << 20 };

// gpu: a navigator.gpu-like object. opts: limits, tokens (after the first), engine (Engine.create
// options). Returns { createMs, headerMs, setupMs, uploadMs, pipelinesMs, loadMs, firstTokenMs,
// tokens, tps, gpuBytes, fileBytes, limits } (ms from the start, except createMs and pipelinesMs).
// root: another checkout to measure (its web/engine.mjs; parts it does not report are left out).
export async function loadToFirstToken(gpu, file, { limits, tokens = 0, engine = {}, root = new URL('../', import.meta.url) } = {}) {
  const { Engine } = await import(String(new URL('web/engine.mjs', root)));
  const t0 = performance.now();
  const eng = await Engine.create({ backend: 'webgpu', gpu, limits, ...engine });
  try {
    const createMs = performance.now() - t0;
    const tl = performance.now();
    const info = await eng.load(file, { nCtx: 256 });
    const T = eng.loadTimes ?? { loadMs: performance.now() - tl };
    let tFirst = 0;
    const r = await eng.generate('Hello', { maxTokens: 1 + tokens, sampling: { temperature: 0 }, onToken: () => { tFirst ||= performance.now(); } });
    const first = tFirst - tl;
    const L = eng.dev.device.limits;
    return {
      createMs, headerMs: T.headerMs, setupMs: T.setupMs, uploadMs: T.uploadMs, pipelinesMs: T.pipelinesMs, loadMs: T.loadMs,
      firstTokenMs: first, totalMs: createMs + first, tokens: r.tokens.length, genMs: r.tGenMs, promptMs: r.tPromptMs,
      tps: r.tokens.length > 1 ? (r.tokens.length - 1) / (r.tGenMs / 1000) : 0,
      gpuBytes: T.gpuBytes ?? 0, fileBytes: info.fileSize ?? 0, layers: info.nLayer, embd: info.nEmbd,
      limits: { maxStorageBufferBindingSize: L.maxStorageBufferBindingSize, maxBufferSize: L.maxBufferSize },
    };
  } finally {
    eng.close();
  }
}

export function describe(r) {
  const f = (x) => (x === undefined ? '-' : x.toFixed(0));
  return `load-to-first-token ${f(r.totalMs)} ms: device+core ${f(r.createMs)}, header ${f(r.headerMs)}, ` +
    `buffers ${f(r.setupMs)}, upload ${f(r.uploadMs)} (${(r.fileBytes / 1e6).toFixed(0)} MB), ` +
    `pipelines ${r.pipelinesMs ? `${f(r.pipelinesMs)} (async, overlapping the upload)` : 'compiled one by one'}, load done at ${f(r.loadMs)}, ` +
    `first token at ${f(r.firstTokenMs)} (ms from the load's start)`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = { tokens: 8, dawn: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i], v = () => args[++i];
    if (a === '-m') opt.model = v();
    else if (a === '-n') opt.tokens = Number(v());
    else if (a === '--default-limits') opt.limits = DEFAULT_LIMITS;
    else if (a === '--sync-pipelines') opt.sync = true;
    else if (a === '--async-pipelines') opt.async = true;
    else if (a === '--json') opt.json = v();
    else if (a === '--dawn-enable') opt.dawn.push(v());
    else if (a === '--root') opt.root = new URL(`file://${resolve(v())}/`);
    else {
      console.error(`unknown option ${a}`);
      process.exit(2);
    }
  }
  if (!opt.model || !(opt.tokens >= 0)) {
    console.error('usage: node bench/load-time.mjs -m FILE [-n TOKENS] [--default-limits] [--json OUT]');
    process.exit(2);
  }
  try {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create(opt.dawn.length ? [`enable-dawn-features=${opt.dawn.join(',')}`] : []);
    const r = await loadToFirstToken(gpu, opt.model, { limits: opt.limits, tokens: opt.tokens, root: opt.root,
      engine: opt.sync ? { asyncPipelines: false } : opt.async ? { asyncPipelines: true } : {} });
    console.log(`model ${opt.model}: ${r.layers} layers, hidden ${r.embd}, ${(r.fileBytes / 1e6).toFixed(0)} MB file, ` +
      `${(r.gpuBytes / 1e6).toFixed(0)} MB of GPU weight buffers; device limits: binding ${r.limits.maxStorageBufferBindingSize / 2 ** 20} MiB, ` +
      `buffer ${r.limits.maxBufferSize / 2 ** 20} MiB`);
    console.log(describe(r) + (opt.sync ? ' [pipelines compiled synchronously]' : ''));
    if (r.tokens > 1) console.log(`generated ${r.tokens} tokens: ${r.tps.toFixed(1)} tokens/s after the first`);
    if (opt.json) writeFileSync(opt.json, JSON.stringify(r, null, 2));
  } catch (e) {
    console.error(`load-time: ${e.message ?? e}`);
    process.exitCode = 1;
  }
  // Dawn may keep handles open after the device is released: exit explicitly.
  process.exit(process.exitCode ?? 0);
}
