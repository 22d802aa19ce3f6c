#!/usr/bin/env node
// cli.mjs — a command line over the WebAssembly engine (web/engine.mjs) for Node: the same
// subcommands, flags, defaults and exit codes as build/onebit where they make sense, to test and
// benchmark the wasm/WebGPU path.
//   node web/cli.mjs run    -m FILE -p TEXT [--gpu|--cpu] [-n N] [--raw] [--no-think] [sampling flags]
//   node web/cli.mjs logits -m FILE --tokens 1,2,3 --out F [--gpu|--cpu]   (raw float32, like `onebit logits`)
//   node web/cli.mjs bench  -m FILE [--gpu|--cpu] [--pp 512] [--tg 128] [-r 3] [--json]
// As `onebit run`: a chat answer by default (--raw: plain continuation, the prompt echoed first),
// Qwen3's empty think block not shown, -n 0 = no limit (the default), exit codes 0 ok, 1 failure,
// 2 usage, 3 unreadable file, 4 invalid or unsupported model (or --gpu without a GPU), 5 prompt
// too long, 6 out of memory, 130 interrupted. Sampling values are checked by the library's one
// check (ob_sampling_check, in the wasm core).
// WebGPU in Node comes from the `webgpu` npm package (Dawn, started with allow_unsafe_apis so that
// experimental features such as subgroup matrices are offered where the GPU has them; off with
// --no-subgroup-matrix). Without --gpu or --cpu it uses a GPU adapter when there is one and says on
// stderr when it falls back to the CPU; --gpu without an adapter is an error (exit 4). Dawn's own
// driver warnings (printed by native code straight to stderr) are filtered out unless -v is given:
// the command runs itself as a child process whose stderr it reads. It prints errors and exits
// non-zero; it is not library code.

import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Engine, OnebitError, Status } from './engine.mjs';

const USAGE = `usage: node web/cli.mjs run|logits|bench -m FILE [options]
  run     -p TEXT [-s SYSTEM] [-n N (0 = no limit, the default)] [-c N_CTX] [--raw] [--no-think]
          [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--repeat-last-n N]
          [--presence-penalty P] [--frequency-penalty F] [--seed S] [--greedy] [--stop TEXT]
  logits  --tokens 1,2,3 --out FILE      raw little-endian float32 logits of every position
  bench   [--pp 512] [--tg 128] [-r REPS] [--json]
common: --gpu (WebGPU; exit 4 without a GPU adapter) | --cpu (wasm CPU path); default: the GPU when
        there is one, else the CPU (said on stderr); --kv-f16; --no-subgroups;
        --no-subgroup-matrix (prompt products without the experimental subgroup matrices);
        -v (also Dawn's driver messages)
exit codes: 0 ok, 1 failure, 2 usage, 3 unreadable file, 4 invalid or unsupported model or no GPU,
            5 prompt too long for the context, 6 out of memory, 130 interrupted`;

// The native CLI's exit codes (cli/opts.c cli_exit_code), by library status.
const EXIT = { [Status.ERR_ARG]: 2, [Status.ERR_IO]: 3, [Status.ERR_FORMAT]: 4, [Status.ERR_UNSUPPORTED]: 4,
  [Status.ERR_CONTEXT]: 5, [Status.ERR_NOMEM]: 6, [Status.ERR_CANCELLED]: 130 };

function parse(argv) {
  const o = { cmd: argv[0], backend: 'auto', n: 0, pp: 512, tg: 128, reps: 3, ctx: 0, sampling: {}, stop: [], think: true };
  const num = (v, name) => {
    const x = Number(v);
    if (v === '' || !Number.isFinite(x)) die(`${name} expects a number, got '${v}'`);
    return x;
  };
  const int = (v, name) => {
    const x = Number(v);
    if (v === '' || !Number.isSafeInteger(x)) die(`${name} expects an integer, got '${v}'`);
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
      case '-s': case '--system': o.system = v(); break;
      case '-n': case '--max-tokens': o.n = int(v(), a); if (o.n < 0) die(`${a}: max_tokens must be an integer between 0 and 1073741824 (0: until the context is full), got ${o.n}`); break;
      case '-c': case '--ctx': o.ctx = int(v(), a); if (o.ctx < 0 || o.ctx > 4194304) die(`${a}: n_ctx must be an integer between 0 and 4194304 (0: the model's, at most 4096), got ${o.ctx}`); break;
      case '--temp': o.sampling.temperature = num(v(), a); break;
      case '--top-k': o.sampling.topK = int(v(), a); break;
      case '--top-p': o.sampling.topP = num(v(), a); break;
      case '--min-p': o.sampling.minP = num(v(), a); break;
      case '--repeat-penalty': o.sampling.repeatPenalty = num(v(), a); break;
      case '--repeat-last-n': o.sampling.repeatLastN = int(v(), a); break;
      case '--presence-penalty': o.sampling.presencePenalty = num(v(), a); break;
      case '--frequency-penalty': o.sampling.frequencyPenalty = num(v(), a); break;
      case '--seed': o.sampling.seed = int(v(), a); break;
      case '--greedy': o.sampling.temperature = 0; break;
      case '--stop': o.stop.push(v()); break;
      case '--raw': o.raw = true; break;
      case '--chat': o.raw = false; break; // the default; kept for older scripts
      case '--no-think': o.think = false; break;
      case '--think': o.think = true; break;
      case '--tokens': o.tokens = v().split(',').filter((s) => s.length).map((s) => int(s, a)); break;
      case '--out': o.out = v(); break;
      case '--pp': o.pp = int(v(), a); break;
      case '--tg': o.tg = int(v(), a); break;
      case '-r': case '--reps': o.reps = int(v(), a); break;
      case '--json': o.json = true; break;
      case '--gpu': o.backend = 'webgpu'; break;
      case '--cpu': o.backend = 'cpu'; break;
      case '--kv-f16': o.kvF16 = true; break;
      case '--no-subgroups': o.noSg = true; break;
      case '--no-subgroup-matrix': o.noMat = true; break;
      case '-v': case '--verbose': o.verbose = true; break;
      case '-h': case '--help': console.log(USAGE); process.exit(0);
      default: die(`unknown option '${a}' (see --help)`);
    }
  }
  return o;
}

function die(msg, code = 2) {
  console.error(`onebit-web: ${msg}`);
  childExit(code);
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

// Dawn prints its driver warnings from native code straight to file descriptor 2, out of reach
// of JavaScript: the parent runs the command as a child and drops those lines from its stderr.
// Those lines: "Warning: ..." from Dawn and the Vulkan loader, "    at Fn (.../dawn/...)" under them,
// and the blank line after them. Our own messages all start with "onebit-web:".
const DAWN_NOISE = /^(Warning: |\s+at \S+ \(.*dawn.*\)$)/;
function runFiltered(args) {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], {
    stdio: ['inherit', 'inherit', 'pipe'], env: { ...process.env, ONEBIT_WEB_CHILD: '1' },
  });
  let rest = '', dropped = false;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop();
    for (const l of lines) {
      const drop = DAWN_NOISE.test(l) || (dropped && l === '') || l.startsWith(DONE_MARK);
      if (!drop) process.stderr.write(l + '\n');
      dropped = drop;
    }
  });
  child.stderr.on('end', () => { if (rest && !DAWN_NOISE.test(rest)) process.stderr.write(rest); });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  // The child says "done, exit code N" on its stderr before it exits. Should its exit then hang
  // (Dawn's native teardown waiting on something: seen once as an answer printed and no exit),
  // it is killed after EXIT_GRACE_MS and this process exits with the code it reported.
  let reported = null;
  child.stderr.on('data', (d) => {
    const m = DONE_RE.exec(String(d));
    if (m && reported === null) {
      reported = Number(m[1]);
      setTimeout(() => {
        process.stderr.write(`onebit-web: the finished command did not exit within ${EXIT_GRACE_MS} ms: killed it\n`);
        child.kill('SIGKILL');
      }, EXIT_GRACE_MS).unref();
    }
  });
  child.on('close', (code, signal) => process.exit(reported ?? code ?? (signal === 'SIGINT' ? 130 : 1)));
  return 'parent';
}

// The child's last line on stderr (the parent drops it): its exit code.
const DONE_MARK = 'onebit-web-child-done';
const DONE_RE = new RegExp(`${DONE_MARK} (\\d+)`);
const EXIT_GRACE_MS = 10000;
function childExit(code) {
  if (process.env.ONEBIT_WEB_CHILD) process.stderr.write(`${DONE_MARK} ${code}\n`);
  process.exit(code);
}

// Qwen3's empty think block at the start of an answer is not shown, as ob_think_strip does for
// `onebit run` (to be replaced by the C filter once generation runs in the wasm core).
const EMPTY_THINK = '<think>\n\n</think>\n\n';
function thinkStrip(write) {
  let held = '', done = false;
  return {
    push(t) {
      if (done) return write(t);
      held += t;
      if (EMPTY_THINK.startsWith(held)) return;
      done = true;
      write(held.startsWith(EMPTY_THINK) ? held.slice(EMPTY_THINK.length) : held);
    },
    flush() { if (!done && held && held !== EMPTY_THINK) write(held); done = true; },
  };
}

async function main() {
  const argv = process.argv.slice(2);
  if (['-h', '--help', 'help'].includes(argv[0])) { console.log(USAGE); process.exit(0); }
  const o = parse(argv);
  if (!['run', 'logits', 'bench'].includes(o.cmd)) die(o.cmd === undefined ? USAGE : `unknown command '${o.cmd}'\n${USAGE}`);
  if (!o.model) die('no model given (use -m FILE)');
  if (o.cmd === 'run' && o.prompt === undefined) die('no prompt given (use -p TEXT)');
  if (o.cmd === 'run' && o.prompt === '') die('the prompt is empty');
  if (o.backend !== 'cpu' && !o.verbose && !process.env.ONEBIT_WEB_CHILD) return runFiltered(argv); // exits with the child
  const gpu = o.backend === 'cpu' ? null : await nodeGpu(!o.noMat);
  if (o.backend === 'webgpu' && !gpu) die("--gpu needs the 'webgpu' npm package (npm install webgpu)", 4);
  let eng;
  try {
    eng = await Engine.create({ backend: o.backend, gpu, subgroups: !o.noSg, subgroupMatrix: !o.noMat });
  } catch (e) {
    if (o.backend === 'webgpu' && e instanceof OnebitError)
      die(`--gpu: ${e.message.replace(/^WebGPU: /, '')}: leave out --gpu to run on the CPU`, 4);
    throw e;
  }
  if (o.backend === 'auto' && eng.backend !== 'webgpu')
    console.error('onebit-web: no WebGPU adapter: running on the CPU (WebAssembly; --cpu skips the GPU probe)');
  const t0 = performance.now();
  const info = await eng.load(o.model, { nCtx: o.ctx, kvF16: o.kvF16 });
  if (o.verbose)
    console.error(`loaded ${info.name || info.arch} (${info.nLayer} layers) on ${eng.backend}` +
      (eng.gpuInfo ? ` (subgroups: ${eng.gpuInfo.subgroupSize || 'off'}, subgroup matrices: ${eng.gpuInfo.subgroupMatrix ? 'on' : 'off'})` : '') + ` in ${(performance.now() - t0).toFixed(0)} ms`);
  try {
    if (o.cmd === 'run') {
      const msgs = (o.system ? [{ role: 'system', content: o.system }] : []).concat({ role: 'user', content: o.prompt });
      const prompt = o.raw ? o.prompt : eng.chat(msgs, { enableThinking: o.think });
      const toks = eng.tokenize(prompt);
      if (toks.length >= info.nCtx)
        die(`the prompt is ${toks.length} tokens but the context holds ${info.nCtx}: use a larger -c or a shorter prompt`, 5);
      const write = (t) => void process.stdout.write(t);
      const out = o.raw ? { push: write, flush() {} } : thinkStrip(write);
      if (o.raw) write(o.prompt);
      const r = await eng.generate(toks, { maxTokens: o.n, sampling: o.sampling, stop: o.stop, onText: (t) => out.push(t) });
      out.flush();
      process.stdout.write('\n');
      if (r.finish === 'context') console.error(`onebit-web: stopped: the context of ${info.nCtx} tokens is full (a larger -c gives more room)`);
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

// Exit explicitly once the command is done: Dawn can keep handles open after the device is released,
// and a Node process waits for them (seen: a whole answer printed, then no exit). stdout and stderr
// are synchronous on pipes and files on Linux, so nothing written is lost.
main().then((filtered) => filtered !== 'parent' && childExit(process.exitCode ?? 0), (e) => {
  if (e instanceof OnebitError) die(e.message, EXIT[e.status] ?? 1);
  console.error(`onebit-web: ${e.stack ?? e}`);
  childExit(1);
});
