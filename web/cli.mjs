#!/usr/bin/env node
// cli.mjs — a command line over the WebAssembly engine (web/engine.mjs) for Node: the same
// subcommands as build/onebit where they make sense, to test and benchmark the wasm/WebGPU path.
//   node web/cli.mjs run    -m FILE -p TEXT [--gpu|--cpu] [-n N] [--temp T] [--top-k K] [--seed S] [--chat]
//   node web/cli.mjs logits -m FILE --tokens 1,2,3 --out F [--gpu|--cpu]   (raw float32, like `onebit logits`)
//   node web/cli.mjs bench  -m FILE [--gpu|--cpu] [--pp 512] [--tg 128] [-r 3] [--json]
// WebGPU in Node comes from the `webgpu` npm package (Dawn, started with allow_unsafe_apis so that
// experimental features such as subgroup matrices are offered where the GPU has them; off with
// --no-subgroup-matrix); without it, or without an adapter, the CPU path runs. It prints errors and exits non-zero; it is not library code.

import { writeFileSync } from 'node:fs';
import { Engine, OnebitError } from './engine.mjs';

const USAGE = `usage: node web/cli.mjs run|logits|bench -m FILE [options]
  run     -p TEXT [-n N] [--temp T] [--top-k K] [--top-p P] [--seed S] [--chat] [-c N_CTX]
  logits  --tokens 1,2,3 --out FILE      raw little-endian float32 logits of every position
  bench   [--pp 512] [--tg 128] [-r REPS] [--json]
common: --gpu (WebGPU, fail without it) | --cpu (wasm CPU path); --kv-f16; --no-subgroups;
        --no-subgroup-matrix (prompt products without the experimental subgroup matrices); -v`;

function parse(argv) {
  const o = { cmd: argv[0], backend: 'auto', n: 128, pp: 512, tg: 128, reps: 3, ctx: 0 };
  const num = (v, name) => {
    const x = Number(v);
    if (!Number.isFinite(x)) die(`bad value for ${name}: ${v}`);
    return x;
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i], v = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '-m': case '--model': o.model = v(); break;
      case '-p': case '--prompt': o.prompt = v(); break;
      case '-n': case '--max-tokens': o.n = num(v(), a); break;
      case '-c': case '--ctx': o.ctx = num(v(), a); break;
      case '--temp': o.temp = num(v(), a); break;
      case '--top-k': o.topK = num(v(), a); break;
      case '--top-p': o.topP = num(v(), a); break;
      case '--seed': o.seed = num(v(), a); break;
      case '--chat': o.chat = true; break;
      case '--tokens': o.tokens = v().split(',').filter((s) => s.length).map((s) => num(s, a)); break;
      case '--out': o.out = v(); break;
      case '--pp': o.pp = num(v(), a); break;
      case '--tg': o.tg = num(v(), a); break;
      case '-r': case '--reps': o.reps = num(v(), a); break;
      case '--json': o.json = true; break;
      case '--gpu': o.backend = 'webgpu'; break;
      case '--cpu': o.backend = 'cpu'; break;
      case '--kv-f16': o.kvF16 = true; break;
      case '--no-subgroups': o.noSg = true; break;
      case '--no-subgroup-matrix': o.noMat = true; break;
      case '-v': case '--verbose': o.verbose = true; break;
      case '-h': case '--help': console.log(USAGE); process.exit(0);
      default: die(`unknown option ${a}\n${USAGE}`);
    }
  }
  return o;
}

function die(msg) {
  console.error(`onebit-web: ${msg}`);
  process.exit(2);
}

// navigator.gpu for Node: Dawn from the `webgpu` package, when it is installed.
async function nodeGpu(unsafeApis) {
  try {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    return create(unsafeApis ? ['enable-dawn-features=allow_unsafe_apis'] : []);
  } catch {
    return null;
  }
}

async function main() {
  const o = parse(process.argv.slice(2));
  if (!['run', 'logits', 'bench'].includes(o.cmd)) die(USAGE);
  if (!o.model) die('-m FILE is required');
  const gpu = o.backend === 'cpu' ? null : await nodeGpu(!o.noMat);
  if (o.backend === 'webgpu' && !gpu) die("--gpu needs the 'webgpu' npm package");
  const eng = await Engine.create({ backend: o.backend, gpu, subgroups: !o.noSg, subgroupMatrix: !o.noMat });
  const t0 = performance.now();
  const info = await eng.load(o.model, { nCtx: o.ctx, kvF16: o.kvF16 });
  if (o.verbose)
    console.error(`loaded ${info.name || info.arch} (${info.nLayer} layers) on ${eng.backend}` +
      (eng.gpuInfo ? ` (subgroups: ${eng.gpuInfo.subgroupSize || 'off'}, subgroup matrices: ${eng.gpuInfo.subgroupMatrix ? 'on' : 'off'})` : '') + ` in ${(performance.now() - t0).toFixed(0)} ms`);
  try {
    if (o.cmd === 'run') {
      if (o.prompt === undefined) die('run needs -p TEXT');
      const prompt = o.chat ? eng.chat([{ role: 'user', content: o.prompt }]) : o.prompt;
      const sampling = {};
      if (o.temp !== undefined) sampling.temperature = o.temp;
      if (o.topK !== undefined) sampling.topK = o.topK;
      if (o.topP !== undefined) sampling.topP = o.topP;
      if (o.seed !== undefined) sampling.seed = o.seed;
      const r = await eng.generate(prompt, { maxTokens: o.n, sampling, onText: (t) => void process.stdout.write(t) });
      process.stdout.write('\n');
      if (o.verbose)
        console.error(`prompt ${r.nPrompt} tokens in ${r.tPromptMs.toFixed(1)} ms, generated ${r.nGenerated} in ` +
          `${r.tGenMs.toFixed(1)} ms (${(r.nGenerated / (r.tGenMs / 1000)).toFixed(1)} tok/s), finish: ${r.finish}`);
    } else if (o.cmd === 'logits') {
      if (!o.tokens || !o.tokens.length) die('logits needs --tokens');
      if (!o.out) die('logits needs --out FILE');
      const l = await eng.logits(o.tokens);
      writeFileSync(o.out, new Uint8Array(l.buffer, l.byteOffset, l.byteLength));
      if (o.verbose) console.error(`wrote ${o.tokens.length} x ${info.nVocab} logits to ${o.out}`);
    } else {
      const r = await eng.bench({ pp: o.pp, tg: o.tg, reps: o.reps });
      if (o.json) console.log(JSON.stringify({ model: o.model, ...r }));
      else {
        console.log(`backend ${r.backend}` + (eng.gpuInfo ? ` (subgroups: ${eng.gpuInfo.subgroupSize || 'off'}, ` +
          `subgroup matrices: ${eng.gpuInfo.subgroupMatrix ? 'on' : 'off'})` : ''));
        if (o.pp > 0) console.log(`pp${o.pp}: ${r.ppTps.toFixed(1)} tok/s`);
        if (o.tg > 0) console.log(`tg${o.tg}: ${r.tgTps.toFixed(1)} tok/s`);
        if (r.dispatchesPerToken) console.log(`dispatches per generated token: ${r.dispatchesPerToken}`);
      }
    }
  } finally {
    eng.close();
  }
}

main().catch((e) => {
  console.error(`onebit-web: ${e instanceof OnebitError ? e.message : e.stack ?? e}`);
  process.exit(1);
});
