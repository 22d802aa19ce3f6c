#!/usr/bin/env node
// sgk-check.mjs — on a GPU with subgroup matrices: a file's prompt logits with the generic plan's
// prompt products on subgroup matrices (quant + dq_mms) against the same engine without them
// (dq_mmt, f32), for a prompt of N random tokens (every token's logits). Prints the relative RMS
// difference, the argmax agreement and whether dq_mms ran; exits 1 when it did not run or the
// difference passes --max (default 3e-3: 16-bit inputs and weights give ~1e-4 on the tests' files).
//   node bench/sgk-check.mjs -m FILE [-n 64] [--max 3e-3]
const args = process.argv.slice(2);
const opt = { n: 64, max: 3e-3 };
for (let i = 0; i < args.length; i++) {
  const a = args[i], v = () => args[++i];
  if (a === '-m') opt.model = v();
  else if (a === '-n') opt.n = Number(v());
  else if (a === '--max') opt.max = Number(v());
  else {
    console.error(`unknown option ${a}`);
    process.exit(2);
  }
}
if (!opt.model || !(opt.n >= 2)) {
  console.error('usage: node bench/sgk-check.mjs -m FILE [-n 64] [--max 3e-3]');
  process.exit(2);
}
const { create, globals } = await import('webgpu');
Object.assign(globalThis, globals);
const gpu = create(['enable-dawn-features=allow_unsafe_apis']);
const { Engine } = await import('../web/engine.mjs');

async function logits(subgroupMatrix, toks) {
  const eng = await Engine.create({ backend: 'webgpu', gpu, subgroupMatrix });
  try {
    await eng.load(opt.model, { nCtx: Math.max(256, toks.length + 8) });
    const V = eng.info.nVocab;
    const got = await eng.logits(toks);
    return { got, V, mms: eng.bridge.modules.has('dq_mms'), mat: eng.gpuInfo.subgroupMatrix };
  } finally {
    eng.close();
  }
}

let s = 4242;
const probe = await Engine.create({ backend: 'webgpu', gpu });
await probe.load(opt.model, { nCtx: 64 });
const nv = probe.info.nVocab;
probe.close();
const toks = Array.from({ length: opt.n }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % nv);
const a = await logits(true, toks), b = await logits(false, toks);
let d = 0, ss = 0, agree = 0;
for (let i = 0; i < a.got.length; i++) {
  d += (a.got[i] - b.got[i]) ** 2;
  ss += b.got[i] ** 2;
}
const am = (x, o) => {
  let k = 0;
  for (let i = 1; i < a.V; i++) if (x[o + i] > x[o + k]) k = i;
  return k;
};
for (let t = 0; t < opt.n; t++) if (am(a.got, t * a.V) === am(b.got, t * a.V)) agree++;
const rel = Math.sqrt(d / ss);
const ok = a.mms && a.mat && !b.mms && rel <= opt.max;
console.log(`sgk-check ${opt.model}: subgroup matrices ${a.mat ? 'on' : 'off'}, dq_mms ${a.mms ? 'ran' : 'did not run'}; ` +
  `prompt logits (${opt.n} tokens) vs dq_mmt: relative RMS ${rel.toExponential(2)} (max ${opt.max}), argmax equal at ${agree}/${opt.n}: ${ok ? 'PASS' : 'FAIL'}`);
process.exit(ok ? 0 : 1);
