#!/usr/bin/env node
// wllama-bench.mjs — onebit's wasm CPU fallback (web/engine.mjs, backend 'cpu') against wllama
// (@wllama/wllama: llama.cpp compiled to wasm, CPU only) in the same headless Chromium, on the same
// GGUF file, measured like llama-bench: pp = tokens/s of one batch of --pp prompt tokens from an
// empty cache, tg = tokens/s generating --tg tokens one at a time (greedy), medians of -r reps after
// a warm-up (one pp run, 8 generated tokens). Same pseudo-random prompt token ids for both engines.
// --rounds N repeats both engines N times, alternating, and reports the median of the rounds.
//   node bench/wllama-bench.mjs -m build/models/bonsai.gguf [--pp 128] [--tg 64] [-r 3] [--threads N]
//        [--rounds N] [--check FILE | --no-check] [--only onebit|wllama] [--verbose] [--json OUT]
//        [--timeout SECONDS]
// It serves bench/wllama/ (page + module), web/, build/wasm/ and wllama's esm/ from 127.0.0.1 with
// the cross-origin-isolation headers (so both engines may use threads), prints a table and the
// ratios onebit / wllama, the thread count each engine reports, and checks that the two engines'
// greedy tokens agree on a trained model (--check, default models/demo.gguf: random-weight models
// give no stable greedy text across implementations). Exits non-zero with a message on any failure.
// Needs `make wasm`, playwright-core and /usr/bin/chromium (or $CHROMIUM). Not a test: no targets
// are asserted, the ratios are reported.
import http from 'node:http';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

function die(msg) {
  console.error(`wllama-bench: ${msg}`);
  process.exit(1);
}

const args = process.argv.slice(2);
const opt = { pp: 128, tg: 64, reps: 3, threads: 2, rounds: 1, check: 'models/demo.gguf', only: null, verbose: false, timeout: 3600 };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const v = () => {
    if (i + 1 >= args.length) die(`${a} needs a value`);
    return args[++i];
  };
  const int = (min) => {
    const s = v(), n = Number(s);
    if (!Number.isInteger(n) || n < min) die(`${a} wants an integer >= ${min}, not ${JSON.stringify(s)}`);
    return n;
  };
  if (a === '-m') opt.model = v();
  else if (a === '--pp') opt.pp = int(1);
  else if (a === '--tg') opt.tg = int(1);
  else if (a === '-r') opt.reps = int(1);
  else if (a === '--threads') opt.threads = int(1);
  else if (a === '--rounds') opt.rounds = int(1);
  else if (a === '--check') opt.check = v();
  else if (a === '--no-check') opt.check = null;
  else if (a === '--only') {
    opt.only = v();
    if (!['onebit', 'wllama'].includes(opt.only)) die('--only takes onebit or wllama');
  } else if (a === '--verbose') opt.verbose = true;
  else if (a === '--json') opt.json = v();
  else if (a === '--timeout') opt.timeout = int(1);
  else if (a === '-h' || a === '--help') {
    console.log('usage: node bench/wllama-bench.mjs -m FILE [--pp 128] [--tg 64] [-r 3] [--threads 2] [--rounds 1]\n' +
      '                                   [--check models/demo.gguf | --no-check] [--only onebit|wllama] [--verbose] [--json OUT]\n' +
      '                                   [--timeout SECONDS (whole run, default 3600)]');
    process.exit(0);
  } else die(`unknown option ${a} (see --help)`);
}
if (!opt.model) die('no model: -m FILE (e.g. build/models/bonsai.gguf from tools/make-models.sh build)');
const files = { '/model/bench.gguf': resolve(opt.model) };
if (opt.check) files['/model/check.gguf'] = resolve(opt.check);
for (const f of Object.values(files)) if (!existsSync(f) || !statSync(f).isFile()) die(`no such model file: ${f}`);
for (const f of ['build/wasm/onebit.wasm', 'build/wasm/onebit-core.mjs'])
  if (!existsSync(ROOT + f)) die(`${f} is missing: run \`make wasm\``);
const WLLAMA_PKG = ROOT + 'node_modules/@wllama/wllama/package.json';
if (!existsSync(WLLAMA_PKG)) die('@wllama/wllama is not installed: run `npm ci`');
if (!existsSync(CHROMIUM)) die(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set $CHROMIUM)`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  die('playwright-core is not installed: run `npm ci`');
}
const wllamaVersion = JSON.parse(readFileSync(WLLAMA_PKG, 'utf8')).version;

// ---- static server: only the folders the page needs, byte ranges, cross-origin isolation ----------

const TYPES = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html',
  '.gguf': 'application/octet-stream', '.json': 'application/json' };
const HEADERS = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin', 'cache-control': 'no-store' };
const SERVED = ['/bench/wllama/', '/web/', '/build/wasm/', '/node_modules/@wllama/wllama/esm/'];

function fileFor(path) {
  if (files[path]) return files[path];
  if (path.includes('..') || !SERVED.some((p) => path.startsWith(p))) return null;
  const f = ROOT + path.slice(1);
  return existsSync(f) && statSync(f).isFile() ? f : null;
}

function serve() {
  const srv = http.createServer((req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      return res.writeHead(400, HEADERS).end();
    }
    if (path === '/favicon.ico') return res.writeHead(204, HEADERS).end();
    const f = fileFor(path);
    if (!f) return res.writeHead(404, HEADERS).end();
    const size = statSync(f).size, type = TYPES[extname(f)] ?? 'application/octet-stream';
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      const a = Number(m[1]), b = Math.min(m[2] ? Number(m[2]) : size - 1, size - 1);
      if (a > b) return res.writeHead(416, { ...HEADERS, 'content-range': `bytes */${size}` }).end();
      res.writeHead(206, { ...HEADERS, 'content-type': type, 'content-range': `bytes ${a}-${b}/${size}`, 'content-length': b - a + 1 });
      return createReadStream(f, { start: a, end: b }).pipe(res);
    }
    res.writeHead(200, { ...HEADERS, 'content-type': type, 'content-length': size, 'accept-ranges': 'bytes' });
    createReadStream(f).pipe(res);
  });
  return new Promise((ok, fail) => {
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => ok(srv));
  });
}

// ---- wllama's log: which backend and how many threads it says it used ------------------------------

function wllamaEvidence(logs) {
  const lines = logs.filter((l) => /Multithread enabled|ggml_webgpu|WebGPU|type +q1_0|file type|buffer size|CPU_REPACK|n_batch|n_ubatch|flash_attn|error|failed/i.test(l));
  // With WebGPU, llama.cpp allocates the weights in a WebGPU buffer and says so at load.
  const webgpuUsed = logs.some((l) => /WebGPU\S* +(model|KV|compute) buffer size|offloaded [1-9]\d*\/\d+ layers to GPU/i.test(l));
  return { lines: lines.slice(0, 40), webgpuUsed };
}

function sourceInfo() {
  const out = { wasm: {} };
  try {
    out.commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', timeout: 30000 }).trim();
    out.dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  } catch {
    out.commit = null; // not a git checkout
  }
  for (const f of ['onebit.wasm', 'onebit-mt.wasm']) {
    const p = ROOT + 'build/wasm/' + f;
    if (existsSync(p)) out.wasm[f] = createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16);
  }
  return out;
}

// ---- run ------------------------------------------------------------------------------------------------

// ---- how quiet the machine was: CPU time used by processes outside this run -----------------------
// Linux /proc: every second, the machine's busy CPU time minus that of this process and its
// descendants (Chromium and its workers). A benchmark on a shared 2-core machine is only worth
// quoting when this stays near 0; the figures are printed for each engine's part of the run.
const HZ = 100; // USER_HZ, the unit of /proc's CPU times
function cpuSnapshot() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7]; // user nice system irq softirq steal
  const procs = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const r = st.slice(st.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(d), { ppid: Number(r[1]), cpu: Number(r[11]) + Number(r[12]) });
    } catch {} // gone meanwhile
  }
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, p] of procs) if (!mine.has(pid) && mine.has(p.ppid)) mine.add(pid), (grew = true);
  }
  const ours = new Map([...mine].map((pid) => [pid, procs.get(pid).cpu]));
  return { t: performance.now(), busy, ours };
}
// CPU time of this run's processes between two snapshots: a process that ended in between is left
// out (its total would otherwise vanish from the sum and show up as someone else's).
function oursDelta(a, b) {
  let d = 0;
  for (const [pid, cpu] of b.ours) d += Math.max(0, cpu - (a.ours.get(pid) ?? 0));
  return d;
}
function startMonitor() {
  const samples = []; // {t, dt, other}: % of one CPU used by other processes in the last dt s
  let last = null;
  const tick = () => {
    let now;
    try {
      now = cpuSnapshot();
    } catch {
      return; // no /proc: nothing to report
    }
    if (last) {
      const dt = (now.t - last.t) / 1000;
      if (dt < 0.5) return; // CPU times count in 10 ms steps: too coarse for a short interval
      const other = Math.max(0, now.busy - last.busy - oursDelta(last, now)) / HZ / dt * 100;
      samples.push({ t: now.t, dt, other });
    }
    last = now;
  };
  tick();
  const timer = setInterval(tick, 1000);
  return {
    // Mean and peak over [t0, now] of the other processes' CPU use, in % of one CPU.
    window(t0) {
      tick();
      const w = samples.filter((x) => x.t > t0);
      if (!w.length) return null;
      const time = w.reduce((a, x) => a + x.dt, 0);
      return { meanPct: +(w.reduce((a, x) => a + x.other * x.dt, 0) / time).toFixed(1), peakPct: +Math.max(...w.map((x) => x.other)).toFixed(1) };
    },
    stop: () => clearInterval(timer),
  };
}
const quiet = (w) => (w ? `other processes ${w.meanPct}% of a CPU on average, peak ${w.peakPct}%` : 'other processes: unknown');

const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const fmt = (x) => (Number.isFinite(x) && x > 0 ? x.toFixed(1) : '-');
const cpuName = cpus()[0]?.model ?? 'unknown';
const result = {
  date: new Date().toISOString(),
  command: ['node', 'bench/wllama-bench.mjs', ...args].join(' '),
  machine: { cpu: cpuName, logicalCpus: cpus().length, loadavgBefore: loadavg().map((x) => +x.toFixed(2)) },
  model: { path: opt.model, bytes: statSync(files['/model/bench.gguf']).size },
  pp: opt.pp, tg: opt.tg, reps: opt.reps, threadsAsked: opt.threads, rounds: [],
  wllamaVersion,
  // What was measured: the commit (and whether the tree had changes) and the wasm cores' digests.
  source: sourceInfo(),
};

const monitor = startMonitor();
const runStart = performance.now();
const srv = await serve();
const base = `http://127.0.0.1:${srv.address().port}`;
// No --enable-unsafe-webgpu: this is the CPU fallback, and wllama must not find a GPU either.
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
let exitCode = 0;
// A hung engine would otherwise hang the script: the whole run has a deadline. Interrupted, it
// closes Chromium rather than leave it computing.
const abandon = (why) => {
  console.error(`wllama-bench: FAILED: ${why}`);
  browser.close().catch(() => {}).finally(() => process.exit(1));
};
const deadline = setTimeout(() => abandon(`no result after ${opt.timeout} s (--timeout)`), opt.timeout * 1000);
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => abandon(`interrupted (${sig})`));
try {
  result.chromium = browser.version();
  const page = await (await browser.newContext()).newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (opt.verbose || m.type() === 'error' || m.text().startsWith('bench:')) console.log(`  page ${m.type()} | ${m.text()}`);
  });
  await page.goto(base + '/bench/wllama/index.html');
  await page.waitForFunction(() => window.bench?.ready === true, null, { timeout: 30000 }).catch((e) => {
    throw new Error(`the bench page did not start: ${pageErrors.join('; ') || e.message}`);
  });
  result.env = await page.evaluate(() => window.bench.env());
  console.log(`Chromium ${result.chromium}, wllama ${wllamaVersion}; crossOriginIsolated: ${result.env.crossOriginIsolated}, ` +
    `hardwareConcurrency: ${result.env.hardwareConcurrency}, navigator.gpu: ${result.env.webgpu} (adapter: ${result.env.webgpuAdapter})`);
  console.log(`machine: ${cpuName}, ${cpus().length} logical CPUs, load average ${result.machine.loadavgBefore.join(' ')}`);
  console.log(`model: ${opt.model} (${result.model.bytes} bytes), pp${opt.pp}, tg${opt.tg}, ${opt.reps} reps, ${opt.rounds} round(s), --threads ${opt.threads}`);
  if (!result.env.crossOriginIsolated) throw new Error('the page is not cross-origin isolated: no threads for either engine');

  const nCtx = Math.max(256, opt.pp + opt.tg + 16);
  result.promptNote = 'pseudo-random whole-word token ids (Engine.bench LCG, seed 12345, kept when the token is a space + letters), ' +
    'given to wllama as their text (wllama 3.13 takes no token-id prompt); both engines get the same ids';
  const job = { modelUrl: base + '/model/bench.gguf', pp: opt.pp, tg: opt.tg, reps: opt.reps, threads: opt.threads, nCtx };
  const call = (engine, m) => page.evaluate(([e, x]) => window.bench[e]({ ...x }), [engine, m]);
  let words = null; // the prompt ids (and their text, for wllama), chosen by onebit's tokenizer
  if (opt.only === 'wllama') words = (await call('onebit', { type: 'prep', ...job })).words;
  for (let r = 0; r < opt.rounds; r++) {
    const round = {};
    for (const engine of ['onebit', 'wllama']) {
      if (opt.only && opt.only !== engine) continue;
      const t0 = performance.now();
      const x = await call(engine, { type: 'bench', ...job, words });
      x.otherCpu = monitor.window(t0);
      round[engine] = x;
      if (engine === 'onebit') words = x.words;
      delete x.words;
      if (engine === 'onebit') {
        console.log(`round ${r + 1} onebit: pp${opt.pp} ${fmt(x.ppTps)} t/s, tg${opt.tg} ${fmt(x.tgTps)} t/s ` +
          `(threads ${x.threads}${x.threads > 1 && x.threadsPeak != null ? `, at most ${x.threadsPeak} busy at once` : ''}${x.threadsNote ? ` (${x.threadsNote})` : ''}, ` +
          `core backend ${x.coreBackend}, load ${x.loadMs.toFixed(0)} ms; ${quiet(x.otherCpu)})`);
      } else {
        const ev = wllamaEvidence(x.logs);
        x.evidence = ev.lines;
        x.webgpuUsed = ev.webgpuUsed;
        if (opt.verbose || r === 0) for (const l of ev.lines) console.log(`  wllama log | ${l}`);
        if (ev.webgpuUsed) throw new Error('wllama ran on WebGPU, not on the CPU (see its log above)');
        console.log(`round ${r + 1} wllama: pp${opt.pp} ${fmt(x.ppTps)} t/s, tg${opt.tg} ${fmt(x.tgTps)} t/s ` +
          `(wall clock: ${fmt(x.ppTpsWall)} / ${fmt(x.tgTpsWall)}; threads ${x.threads}, multithread ${x.multithread}, ` +
          `n_batch ${x.nBatch}, n_ubatch ${x.nUbatch}, load ${x.loadMs.toFixed(0)} ms; ${quiet(x.otherCpu)})`);
        if (opt.verbose) for (const l of x.logs) console.log(`  wllama log (all) | ${l}`);
        delete x.logs;
      }
    }
    result.rounds.push(round);
  }

  // The figures: medians over rounds of each round's median.
  const summary = {};
  for (const engine of ['onebit', 'wllama']) {
    const rs = result.rounds.map((x) => x[engine]).filter(Boolean);
    if (!rs.length) continue;
    summary[engine] = { threads: rs[0].threads, ppTps: median(rs.map((x) => x.ppTps)), tgTps: median(rs.map((x) => x.tgTps)) };
  }
  result.summary = summary;
  console.log('\n| engine | threads | pp' + opt.pp + ' t/s | tg' + opt.tg + ' t/s |\n|---|---|---|---|');
  for (const [e, s] of Object.entries(summary)) console.log(`| ${e} | ${s.threads} | ${fmt(s.ppTps)} | ${fmt(s.tgTps)} |`);
  if (summary.onebit && summary.wllama) {
    result.ratio = { pp: summary.onebit.ppTps / summary.wllama.ppTps, tg: summary.onebit.tgTps / summary.wllama.tgTps };
    console.log(`| **ratio onebit / wllama** | | **${result.ratio.pp.toFixed(2)}x** | **${result.ratio.tg.toFixed(2)}x** |`);
    console.log(`issue #6 target (>= 2x both): pp ${result.ratio.pp >= 2 ? 'met' : 'NOT met'}, tg ${result.ratio.tg >= 2 ? 'met' : 'NOT met'}`);
  }

  // Correctness, cheaply: greedy tokens of both engines after the same prompt ids, on a trained model.
  if (opt.check && !opt.only) {
    const text = 'And God said, Let there be light: and';
    const n = 16;
    const ob = await call('onebit', { type: 'greedy', modelUrl: base + '/model/check.gguf', text, n, nCtx: 256, threads: opt.threads });
    const wl = await call('wllama', { type: 'greedy', modelUrl: base + '/model/check.gguf', text, n, nCtx: 256, threads: opt.threads });
    if (wl.promptN !== ob.promptIds.length)
      throw new Error(`the check prompt is ${ob.promptIds.length} tokens for onebit but ${wl.promptN} for wllama`);
    let same = 0;
    while (same < ob.tokens.length && same < wl.tokens.length && ob.tokens[same] === wl.tokens[same]) same++;
    let dlp = 0;
    for (let i = 0; i < same; i++) dlp = Math.max(dlp, Math.abs(ob.logprobs[i] - wl.logprobs[i]));
    const compared = Math.min(ob.tokens.length, wl.tokens.length);
    result.check = { model: opt.check, text, promptIds: ob.promptIds, onebit: { tokens: ob.tokens, logprobs: ob.logprobs, text: ob.text },
      wllama: { tokens: wl.tokens, logprobs: wl.logprobs, text: wl.text }, leadingTokensEqual: same, compared, maxLogprobDiff: dlp };
    console.log(`\ngreedy check on ${opt.check}: prompt ${JSON.stringify(text)} (${ob.promptIds.length} tokens for both)`);
    console.log(`  onebit: ${JSON.stringify(ob.text)}`);
    console.log(`  wllama: ${JSON.stringify(wl.text)}`);
    console.log(`  first ${same} of ${compared} greedy token ids equal; largest difference of their log-probabilities ${dlp.toFixed(4)}`);
    if (same < Math.min(8, compared)) throw new Error(`greedy tokens diverge after ${same} tokens`);
  }
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
} catch (e) {
  exitCode = 1;
  result.error = String(e.message ?? e);
  console.error(`wllama-bench: FAILED: ${e.message ?? e}`);
} finally {
  result.machine.loadavgAfter = loadavg().map((x) => +x.toFixed(2));
  result.machine.otherCpu = monitor.window(runStart);
  monitor.stop();
  console.log(`load average after: ${result.machine.loadavgAfter.join(' ')}; during the whole run: ${quiet(result.machine.otherCpu)}`);
  clearTimeout(deadline);
  await browser.close().catch(() => {});
  srv.close();
  if (opt.json) writeFileSync(opt.json, JSON.stringify(result, null, 2) + '\n');
}
process.exit(exitCode);
