// WebGPU on small devices (issues 18 and 19): the engine runs with the WebGPU default limits
// (maxStorageBufferBindingSize 128 MiB, maxBufferSize 256 MiB, as Android and many integrated GPUs
// have), splits what does not fit one binding across several buffers (each layer's weights in
// "segments", the embedding and output matrix in row parts) and refuses, before any weight is
// read, a model whose single matrix cannot fit a binding, saying what it needs and what the device
// allows. The split is exercised for real on tiny models with a test knob that caps each layer's
// buffers (Engine.create's maxLayerBuffer) and the bindings (maxBindingSize). Also: the wasm CPU
// path refuses a file too big for wasm32 memory before reading it. Runs on SwiftShader (Dawn via
// the `webgpu` npm package), like tests/webgpu.test.mjs.
import test from 'node:test';
import assert from 'node:assert/strict';
import { relRms } from './compare.mjs';
import { existsSync, mkdtempSync, rmSync, openSync, ftruncateSync, closeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../', import.meta.url).pathname;
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;
const TINY = join(root, 'build/models/tiny.gguf');
assert.ok(existsSync(join(root, 'build/wasm/onebit.wasm')), 'build/wasm/onebit.wasm is missing: run `make wasm`');
assert.ok(existsSync(TINY), 'build/models/tiny.gguf is missing: run tools/make-models.sh');

const { Engine } = await import('../web/engine.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'onebit-wglim-'));
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
if (skip) console.log(`# SKIP webgpu limits tests: ${skip}`);

const PROMPT = Array.from({ length: 6 }, (_, i) => (i * 7919 + 11) % 151000);
const DEFAULTS = { maxStorageBufferBindingSize: 128 << 20, maxBufferSize: 256 << 20 };

const refs = new Map();
async function reference(file) {
  if (!refs.has(file)) {
    const r = await Engine.create({ backend: 'cpu', cpuBackend: 'scalar' });
    await r.load(file, { nCtx: 64 });
    refs.set(file, r);
  }
  return refs.get(file);
}
test.after(() => { for (const r of refs.values()) r.close(); });

// Logits of PROMPT and two greedy tokens on a WebGPU engine made with opts, against the scalar CPU path.
async function check(file, opts, expectBuffers) {
  const eng = await Engine.create({ backend: 'webgpu', gpu, ...opts });
  try {
    await eng.load(file, { nCtx: 64 });
    if (expectBuffers) assert.equal(eng.M._ob_wgpu_layer_buffers(eng.model, 0), expectBuffers, 'buffers of layer 0');
    const ref = await reference(file);
    const want = await ref.logits(PROMPT), got = await eng.logits(PROMPT);
    assert.ok(relRms(got, want) <= 1e-3, `relative RMS ${relRms(got, want)}`);
    const g = { maxTokens: 2, sampling: { temperature: 0 } };
    assert.deepEqual((await eng.generate(PROMPT, g)).tokens, (await ref.generate(PROMPT, g)).tokens);
    return eng.dev.device.limits;
  } finally {
    eng.close();
  }
}

test('the WebGPU default limits (128 MiB binding, 256 MiB buffer) requested exactly: logits and greedy tokens match', { skip }, async () => {
  const eng = await Engine.create({ backend: 'webgpu', gpu, limits: DEFAULTS });
  try {
    const fit = await eng.checkFit(TINY);
    assert.equal(fit.ok, true, fit.message);
    assert.ok(fit.gpuBytes > 5e6 && fit.gpuBytes < 12e6, `GPU weight bytes ${fit.gpuBytes}`);
  } finally {
    eng.close();
  }
  const L = await check(TINY, { limits: DEFAULTS }, 1);
  assert.equal(L.maxStorageBufferBindingSize, DEFAULTS.maxStorageBufferBindingSize);
  assert.equal(L.maxBufferSize, DEFAULTS.maxBufferSize);
});

test('fused Q1_0 plan: each layer in 3 buffers, the embedding in row parts (2 MiB bindings)', { skip }, async () => {
  // tiny's layer: [q|k|v] 18 KiB + o 9 KiB | gate/up 54 KiB | down 27 KiB with 64 KiB buffers
  await check(TINY, { limits: DEFAULTS, maxBindingSize: 2 << 20, maxLayerBuffer: 64 << 10 }, 3);
});

test('generic plan (Q4_0): each layer in 4 buffers', { skip }, async () => {
  const file = join(tmp, 'tiny-q4_0.gguf');
  const r = spawnSync(join(root, 'build/mkmodel'), ['--preset', 'tiny', '--type', 'q4_0', '-o', file],
    { cwd: root, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
  assert.equal(r.error, undefined, `build/mkmodel did not finish: ${r.error}`);
  assert.equal(r.status, 0, r.stderr);
  // q, k, v, o 108 KiB | gate 108 KiB | up | down with 128 KiB buffers
  await check(file, { limits: DEFAULTS, maxLayerBuffer: 128 << 10 }, 4);
});

// The generic plan's K-quant decode products (dq_mvw) on matrices in several buffers: llama.cpp's
// Llama-2-shaped Q4_K_M file (2 layers; layer 1 has a Q6_K attn_v and ffn_down) with 160 KiB
// layer buffers: layer 1 in 4 (q, k and v | o and gate | up | down): q and k one product, v
// another, gate and up in two buffers (no gate+up form: two products and act), the Q6_K down
// alone at the end of its buffer (dq_mvw's shifted loads read past its last block there).
// Decode logits of four steps against the scalar CPU path.
test('generic plan (Q4_K_M, dq_mvw): layers split across buffers, decode logits', { skip }, async (t) => {
  const file = join(root, 'build/models/arch/llama2-q4_k_m.gguf');
  if (!existsSync(file)) return t.skip(`${file} missing: bash tools/make-arch-models.sh`);
  const toks = [1, 450, 4996, 17354];
  const ref = await reference(file);
  const want = await ref.logits(toks);
  const eng = await Engine.create({ backend: 'webgpu', gpu, limits: DEFAULTS, maxLayerBuffer: 160 << 10 });
  try {
    await eng.load(file, { nCtx: 64 });
    assert.equal(eng.M._ob_wgpu_layer_buffers(eng.model, 1), 4, 'buffers of layer 1');
    const V = eng.info.nVocab;
    eng.reset();
    for (let i = 0; i < toks.length; i++) {
      const [{ p }] = eng.gpuBegin([toks[i]], 2 /* OB_STEP_LOGITS */);
      await eng.endStep(p);
      const lp = eng.M._ob_logits(eng.ctx, -1) >>> 2;
      const e = relRms(eng.M.HEAPF32.slice(lp, lp + V), want.subarray(i * V, (i + 1) * V));
      assert.ok(e <= 1e-4, `decode position ${i}: relative RMS ${e}`);
    }
  } finally {
    eng.close();
  }
});

test('a matrix larger than a binding is refused before any weight is read, naming both sizes', { skip }, async () => {
  const eng = await Engine.create({ backend: 'webgpu', gpu, limits: DEFAULTS, maxLayerBuffer: 32 << 10 });
  try {
    let progress = 0;
    await assert.rejects(eng.load(TINY, { nCtx: 64, onProgress: (f) => { progress = f; } }),
      /a weight matrix of 55296 bytes needs a GPU storage binding of 55328 bytes; this device allows 32768/);
    assert.equal(progress, 0, 'weights were uploaded before the refusal');
    // The same verdict from the header alone, as the browser app asks before a download.
    const fit = await eng.checkFit(TINY);
    assert.equal(fit.ok, false);
    assert.match(fit.message, /needs a GPU storage binding of 55328 bytes; this device allows 32768/);
  } finally {
    eng.close();
  }
});

test('the wasm CPU path refuses a file too big for wasm32 memory before reading it', async () => {
  const big = join(tmp, 'big.gguf');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, 4.5 * 1024 ** 3); // sparse: no disk used
  closeSync(fd);
  const eng = await Engine.create({ backend: 'cpu' });
  try {
    await assert.rejects(eng.load(big), /too big for the WebAssembly CPU path: it holds the whole file in wasm32 memory, 4\.29 GB at most/);
    const fit = await eng.checkFit(big);
    assert.equal(fit.ok, false);
    assert.match(fit.message, /too big for the WebAssembly CPU path/);
    assert.equal((await eng.checkFit(TINY)).ok, true);
  } finally {
    eng.close();
  }
});
