// wasm-threads.test.mjs — the threaded wasm CPU core (build/wasm/onebit-mt-core.mjs,
// onebit-mt.wasm, onebit-mt-core.worker.js) in headless Chromium (Debian's /usr/bin/chromium via
// playwright-core). Two small static servers on 127.0.0.1 serve the same files, one with the
// cross-origin-isolation headers `onebit serve` sends and one without: web/ at /, build/wasm/ at
// /build/wasm/, models/demo.gguf and build/models/tiny.gguf at /models/, and this test's page and
// worker at /t/. It checks that the engine picks the threaded core only where it can run (an
// isolated Web Worker: pthreads then live in workers nested in that worker), that it reports how
// many threads it got and that more than one really ran parts of a job, and that greedy tokens
// and logits are the same as the single-threaded core's and the native CPU backend's (the golden
// text of tests/demo.test.mjs). It also loads the chat page (web/app.js + worker.js) both ways
// and reads the thread count it shows. No timings are checked here (bench/ is for speed).
// Needs `make wasm`.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';

const root = new URL('../', import.meta.url);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const NATIVE = new URL('build/onebit', root);
const TINY = new URL('build/models/tiny.gguf', root);
// The golden greedy text of the demo model (tests/demo.test.mjs: -n 12, greedy, raw prompt).
const PROMPT = 'And God said';
const GOLDEN = 'And God said unto him, I will not go with thee, and I';
for (const f of ['onebit.wasm', 'onebit-core.mjs', 'onebit-mt.wasm', 'onebit-mt-core.mjs', 'onebit-mt-core.worker.js'])
  assert.ok(existsSync(new URL(`build/wasm/${f}`, root)), `build/wasm/${f} is missing: run \`make wasm\``);

let chromium = null, skip = false;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  skip = 'playwright-core is not installed';
}
if (!skip && !existsSync(CHROMIUM)) skip = `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
if (skip) console.log(`# SKIP wasm threads test: ${skip}`);

// What the page and the worker run: one engine, models loaded in turn, greedy text, the thread
// figures and a digest of the logits of the prompt.
const RUN = `
import { Engine } from '/engine.mjs';
function digest(f32) {
  let h = 0x811c9dc5;
  for (const w of new Uint32Array(f32.buffer, f32.byteOffset, f32.length)) h = Math.imul(h ^ w, 0x01000193) >>> 0;
  return h.toString(16);
}
export async function run(job) {
  const out = { ok: true, isolated: !!globalThis.crossOriginIsolated, cores: navigator.hardwareConcurrency, runs: [] };
  try {
    const eng = await Engine.create({ backend: 'cpu', threads: job.threads, ...(job.engine ?? {}) });
    out.shared = eng.shared;
    for (const model of job.models) {
      await eng.load(model);
      eng.threadStats({ reset: true });
      const r = await eng.generate(job.prompt, { maxTokens: job.n, sampling: { temperature: 0 } });
      let st = eng.threadStats();
      // Workers that the system has not scheduled yet leave the jobs to the caller (threadpool.c):
      // where more than one thread should run, give them batches of prompt (bigger jobs) until
      // one has joined in, for at most 60 s. Only a pool that never works fails this.
      const long = eng.tokenize(job.prompt.repeat(32)).slice(0, 64);
      let rounds = 0;
      for (const t0 = performance.now(); job.threads !== 1 && eng.threads > 1 && st.peak < 2 && performance.now() - t0 < 60000;) {
        await eng.logits(long);
        st = eng.threadStats();
        rounds++;
      }
      const logits = digest(await eng.logits(eng.tokenize(job.prompt)));
      out.runs.push({ model, text: job.prompt + r.text, tokens: r.tokens, threads: eng.threads, note: eng.threadsNote,
        peak: st.peak, rounds, logits, bench: job.bench ? await eng.bench(job.bench) : null });
    }
    eng.close();
    if (job.again) {
      // A second engine after close() (the chat page's worker makes one per model): threads again.
      const e2 = await Engine.create({ backend: 'cpu', threads: job.threads });
      await e2.load(job.models[0]);
      const r = await e2.generate(job.prompt, { maxTokens: job.n, sampling: { temperature: 0 } });
      out.again = { text: job.prompt + r.text, threads: e2.threads, shared: e2.shared };
      e2.close();
    }
  } catch (e) {
    return { ok: false, error: String(e?.stack ?? e) };
  }
  return out;
}`;
const WORKER = `import { run } from '/t/run.mjs';
onmessage = async ({ data }) => postMessage(await run(data));`;
const PAGE = `<!doctype html><meta charset="utf-8"><title>threads</title><script type="module">
import { run } from '/t/run.mjs';
window.here = run;
window.inWorker = (job) => new Promise((resolve) => {
  const w = new Worker('/t/worker.mjs', { type: 'module' });
  w.onmessage = ({ data }) => { w.terminate(); resolve(data); };
  w.onerror = (e) => { w.terminate(); resolve({ ok: false, error: 'worker error: ' + e.message }); };
  w.postMessage(job);
});
window.ready = true;
</script>`;

const TYPES = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html',
  '.css': 'text/css', '.gguf': 'application/octet-stream' };
const ISOLATION = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin' };

function serve(isolated) {
  const inline = { '/t/run.mjs': RUN, '/t/worker.mjs': WORKER, '/t/page.html': PAGE };
  const srv = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const head = { 'cache-control': 'no-cache', ...(isolated ? ISOLATION : {}) };
    let body = null, type = 'application/octet-stream';
    if (inline[path]) {
      body = Buffer.from(inline[path]);
      type = TYPES[extname(path)];
    } else if (!path.includes('..')) {
      const file = path === '/models/demo.gguf' ? new URL('models/demo.gguf', root)
        : path === '/models/tiny.gguf' ? TINY
        : path.startsWith('/build/wasm/') ? new URL('.' + path, root) : new URL('web' + (path === '/' ? '/index.html' : path), root);
      if (existsSync(file) && statSync(file).isFile()) {
        body = readFileSync(file);
        type = TYPES[extname(file.pathname)] ?? type;
      }
    }
    if (!body) return res.writeHead(404, head).end();
    const m = /^bytes=(\d+)-(\d+)?$/.exec(req.headers.range ?? '');
    if (m) {
      const a = Number(m[1]), b = Math.min(m[2] ? Number(m[2]) : body.length - 1, body.length - 1);
      return res.writeHead(206, { ...head, 'content-type': type, 'content-range': `bytes ${a}-${b}/${body.length}`,
        'content-length': b - a + 1 }).end(body.subarray(a, b + 1));
    }
    res.writeHead(200, { ...head, 'content-type': type, 'content-length': body.length, 'accept-ranges': 'bytes' }).end(body);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

const ok = (r) => {
  assert.ok(r.ok, r.error);
  return r;
};

test('threaded wasm CPU core: chosen where it can run, threads really used, same tokens as 1 thread and native', { skip, timeout: 240000 }, async (t) => {
  const iso = await serve(true), plain = await serve(false);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.after(async () => { await browser.close(); iso.close(); plain.close(); });
  const errors = [];
  const open = async (srv) => {
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${srv.address().port}/t/page.html`);
    await page.waitForFunction(() => window.ready === true);
    return page;
  };
  const page = await open(iso);
  const models = ['/models/demo.gguf', ...(existsSync(TINY) ? ['/models/tiny.gguf'] : [])];
  if (models.length === 1) t.diagnostic('build/models/tiny.gguf missing (tools/make-models.sh build): demo model only');
  const job = { prompt: PROMPT, n: 12, models };

  // Two threads in an isolated worker: the threaded core, shared memory, both threads at work.
  const mt = ok(await page.evaluate((j) => window.inWorker(j), { ...job, threads: 2, again: true }));
  assert.equal(mt.isolated, true);
  assert.equal(mt.shared, true, 'the threaded core (shared memory) is in use');
  for (const r of mt.runs) {
    assert.equal(r.threads, 2, `${r.model}: two threads reported (${r.note})`);
    assert.equal(r.note, '');
  }
  assert.equal(mt.runs[0].text, GOLDEN);
  assert.equal(mt.runs[0].peak, 2, 'two threads ran parts of one job');
  assert.deepEqual(mt.again, { text: GOLDEN, threads: 2, shared: true }, 'a second engine after close()');
  t.diagnostic(`2 threads: both at work after generating${mt.runs[0].rounds ? ` and ${mt.runs[0].rounds} prompt batches` : ''}`);

  // One thread asked for: the single-threaded core; every token and logit the same.
  const st = ok(await page.evaluate((j) => window.inWorker(j), { ...job, threads: 1 }));
  assert.equal(st.shared, false);
  assert.equal(st.runs[0].threads, 1);
  assert.equal(st.runs[0].text, GOLDEN);
  for (let i = 0; i < models.length; i++) {
    assert.deepEqual(mt.runs[i].tokens, st.runs[i].tokens, `${models[i]}: greedy tokens, 2 threads vs 1`);
    assert.equal(mt.runs[i].logits, st.runs[i].logits, `${models[i]}: logits bit for bit, 2 threads vs 1`);
  }

  // The native CPU backend says the same.
  if (existsSync(NATIVE)) {
    const native = execFileSync(NATIVE.pathname, ['run', '-m', new URL('models/demo.gguf', root).pathname, '--backend', 'cpu',
      '--raw', '--greedy', '-n', '12', '-p', PROMPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
    assert.equal(native.trimEnd(), mt.runs[0].text);
  } else t.diagnostic('build/onebit missing: native comparison skipped (make)');

  // The default: min(hardwareConcurrency, 8) threads.
  const def = ok(await page.evaluate((j) => window.inWorker(j), { ...job, models: [models[0]] }));
  const want = Math.min(def.cores, 8);
  assert.equal(def.runs[0].threads, want, `default thread count for ${def.cores} cores`);
  assert.equal(def.shared, want > 1);
  assert.equal(def.runs[0].text, GOLDEN);
  if (want > 1) assert.ok(def.runs[0].peak > 1, 'default: more than one thread ran');
  t.diagnostic(`hardwareConcurrency ${def.cores}: default ${def.runs[0].threads} threads, peak ${def.runs[0].peak}` +
    ` (${def.runs[0].rounds} extra prompt batches)`);

  // On the page's main thread: one thread (blocking waits are not allowed there), not a hang.
  const main = ok(await page.evaluate((j) => window.here(j), { ...job, models: [models[0]], threads: 2 }));
  assert.equal(main.shared, false);
  assert.equal(main.runs[0].threads, 1);
  assert.match(main.runs[0].note, /Web Worker/);
  assert.equal(main.runs[0].text, GOLDEN);

  // A threaded core that cannot be loaded: the single-threaded one takes over and says why.
  const broken = ok(await page.evaluate((j) => window.inWorker(j),
    { ...job, models: [models[0]], threads: 2, engine: { mtCoreUrl: '/build/wasm/no-such-core.mjs' } }));
  assert.equal(broken.shared, false);
  assert.equal(broken.runs[0].threads, 1);
  assert.match(broken.runs[0].note, /did not start/);
  assert.equal(broken.runs[0].text, GOLDEN);

  // The threaded core also starts on a page's main thread: its workers load from /build/wasm/
  // there as well as from inside a worker (the engine itself keeps threads off the main thread).
  const started = await page.evaluate(async () => {
    const { default: createCore } = await import('/build/wasm/onebit-mt-core.mjs');
    const wasmBinary = new Uint8Array(await (await fetch('/build/wasm/onebit-mt.wasm')).arrayBuffer());
    const M = await createCore({ wasmBinary, obWorkers: 2, print() {}, printErr() {} });
    const r = { workers: M.PThread.unusedWorkers.length, shared: M.HEAPU8.buffer instanceof SharedArrayBuffer };
    M.PThread.terminateAllThreads();
    return r;
  });
  assert.deepEqual(started, { workers: 2, shared: true });

  // Not cross-origin isolated: one thread, with the reason.
  const p2 = await open(plain);
  const ni = ok(await p2.evaluate((j) => window.inWorker(j), { ...job, models: [models[0]], threads: 2 }));
  assert.equal(ni.isolated, false);
  assert.equal(ni.shared, false);
  assert.equal(ni.runs[0].threads, 1);
  assert.match(ni.runs[0].note, /cross-origin isolated/);
  assert.equal(ni.runs[0].text, GOLDEN);
  assert.deepEqual(errors, []);
});

// `onebit serve` with the demo model (its page, /build/wasm/ and /models/demo.gguf, COOP/COEP on
// all of them); resolves to its base URL once it listens.
function onebitServe(t) {
  const p = spawn(NATIVE.pathname, ['serve', '-m', new URL('models/demo.gguf', root).pathname, '--port', '0', '-t', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => p.kill());
  return new Promise((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+?)\/?\s/.exec(out);
      if (m) resolve(m[1]);
    });
    p.on('exit', (code) => reject(new Error(`onebit serve exited (${code}): ${out}`)));
  });
}

test('chat page shows the CPU thread count: threads when isolated, one when not', { skip, timeout: 180000 }, async (t) => {
  const iso = await serve(true), plain = await serve(false);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.after(async () => { await browser.close(); iso.close(); plain.close(); });
  const errors = [];
  const sites = [[`http://127.0.0.1:${iso.address().port}`, true], [`http://127.0.0.1:${plain.address().port}`, false]];
  if (existsSync(NATIVE)) sites.push([await onebitServe(t), true]);
  else t.diagnostic('build/onebit missing: the page under `onebit serve` is not checked');
  for (const [base, isolated] of sites) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${base}/?backend=cpu`);
    // The page first asks whether a server runs a model (`onebit serve`): then it offers that
    // file ("Run it in this browser") in place of the demo button, else the demo is the primary.
    await page.waitForFunction(() => !document.querySelector('#served').hidden || document.querySelector('#demo').classList.contains('primary'),
      null, { timeout: 30000 });
    // (Under the server the page starts chatting with the served model and folds the model panel.)
    const servedPage = await page.evaluate(() => !document.querySelector('#served').hidden);
    if (servedPage) await page.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 30000 });
    await page.evaluate(() => { document.querySelector('#model-panel').open = true; });
    await page.click(servedPage ? '#served-local' : '#demo');
    await page.waitForFunction(() => window.onebitApp?.loaded === true && document.querySelector('#f-backend').textContent.startsWith('CPU'),
      null, { timeout: 60000 });
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const want = isolated ? Math.min(cores, 8) : 1;
    const shown = await page.textContent('#f-backend');
    t.diagnostic(`${base} (${isolated ? 'isolated' : 'not isolated'}): ${shown}`);
    assert.match(shown, new RegExp(`^CPU \\(WebAssembly SIMD, ${want} threads?\\)`));
    if (!isolated) assert.match(shown, /cross-origin isolated/);
    // A whole answer through the page's worker (text decoded out of shared memory when isolated).
    await page.fill('#prompt', 'Who made the heaven and the earth?');
    await page.press('#prompt', 'Enter');
    await page.waitForFunction(() => !window.onebitApp.busy && window.onebitApp.chat.messages.at(-1)?.role === 'assistant',
      null, { timeout: 60000 });
    assert.ok((await page.evaluate(() => window.onebitApp.chat.messages.at(-1).content)).length > 0);
    await ctx.close();
  }
  assert.deepEqual(errors, []);
});
