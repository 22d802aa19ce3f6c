#!/usr/bin/env node
// decode-logits.mjs — on a GPU host: the WebGPU engine (the build in build/wasm) decodes a fixed
// token sequence one token a step and writes the logits of some positions, so that two builds can
// be compared on the real GPU where the tests cannot run (bench/ab-gpumv.sh: the generic plan's
// decode kernels of a branch against main's on the issue's files, at positions on both sides of
// attn_one's 32-key tiles and past several key ranges).
//   node bench/decode-logits.mjs -m FILE -o OUT.bin [--n 300] [--default-limits]
//   node bench/decode-logits.mjs --compare A.bin B.bin [--tol 1e-4]
// OUT.bin: for each checked position, its n_vocab logits as f32 (the positions: CHECK below,
// those < n). --compare prints the relative RMS difference and the argmax of each position and
// exits 1 when one passes tol or the files differ in length.
import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = { n: 300, tol: 1e-4 };
for (let i = 0; i < args.length; i++) {
  const a = args[i], v = () => args[++i];
  if (a === '-m') opt.model = v();
  else if (a === '-o') opt.out = v();
  else if (a === '--n') opt.n = Number(v());
  else if (a === '--tol') opt.tol = Number(v());
  else if (a === '--default-limits') opt.defaultLimits = true;
  else if (a === '--compare') opt.compare = [v(), v()];
  else {
    console.error(`unknown option ${a}`);
    process.exit(2);
  }
}
const CHECK = [0, 1, 31, 32, 33, 63, 64, 100, 255, 256, 299, 511];

if (opt.compare) {
  const [a, b] = opt.compare.map((f) => {
    const buf = readFileSync(f);
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  });
  if (a.length !== b.length || a.length === 0) {
    console.log(`decode-logits: FAILED: ${a.length} and ${b.length} logits`);
    process.exit(1);
  }
  const pos = CHECK.filter((p) => p < opt.n), V = a.length / pos.length;
  let bad = 0;
  for (let i = 0; i < pos.length; i++) {
    let d = 0, s = 0, ma = 0, mb = 0;
    for (let j = 0; j < V; j++) {
      const x = a[i * V + j], y = b[i * V + j];
      d += (x - y) ** 2;
      s += y * y;
      if (x > a[i * V + ma]) ma = j;
      if (y > b[i * V + mb]) mb = j;
    }
    const e = Math.sqrt(d / s);
    if (!(e <= opt.tol)) bad++;
    console.log(`position ${pos[i]}: relative RMS ${e.toExponential(2)}, argmax ${ma} / ${mb}`);
  }
  console.log(`decode-logits: ${bad ? `FAILED (${bad} positions over ${opt.tol})` : `ok (every position within ${opt.tol})`}`);
  process.exit(bad ? 1 : 0);
}

if (!opt.model || !opt.out) {
  console.error('usage: node bench/decode-logits.mjs -m FILE -o OUT.bin [--n N] | --compare A.bin B.bin');
  process.exit(2);
}
const { create, globals } = await import('webgpu');
Object.assign(globalThis, globals);
const gpu = create(['enable-dawn-features=allow_unsafe_apis']);
const { DEFAULT_LIMITS } = await import('./load-time.mjs');
const { Engine } = await import('../web/engine.mjs');
const eng = await Engine.create({ backend: 'webgpu', gpu, limits: opt.defaultLimits ? DEFAULT_LIMITS : undefined });
const info = await eng.load(opt.model, { nCtx: Math.max(512, opt.n + 1) });
const V = info.nVocab, out = [];
eng.reset();
for (let i = 0; i < opt.n; i++) {
  const want = CHECK.includes(i);
  const [{ p }] = eng.gpuBegin([(i * 7919 + 13) % V], want ? 2 /* OB_STEP_LOGITS */ : 0);
  await eng.endStep(p);
  if (!want) continue;
  const lp = eng.M._ob_logits(eng.ctx, -1) >>> 2;
  out.push(eng.M.HEAPF32.slice(lp, lp + V));
}
const all = new Float32Array(out.length * V);
out.forEach((l, i) => all.set(l, i * V));
writeFileSync(opt.out, new Uint8Array(all.buffer));
console.log(`decode-logits: ${opt.model}: ${out.length} positions of ${V} logits, ${eng.bridge.dispatches} dispatches in the last step`);
eng.close();
