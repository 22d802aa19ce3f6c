#!/usr/bin/env node
// load-time-browser.mjs — load-to-first-token of the WebGPU engine in headless Chromium
// (playwright-core, Debian's /usr/bin/chromium; SwiftShader where there is no GPU): a page served
// on 127.0.0.1 holds the model as a Blob (as the app holds a stored model: a File from the Origin
// Private File System), then times Engine.create, load and the first generated token, with the
// parts of eng.loadTimes (see bench/load-time.mjs). Each round is a fresh browser.
//   node bench/load-time-browser.mjs -m FILE [-r ROUNDS (default 1)] [--root CHECKOUT (default this one)]
//                                    [--pipelines async|sync]
// --root measures another checkout's web/ and build/wasm/ (e.g. before a change: totals only
// where its engine has no loadTimes).
import http from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = { rounds: 1, root: fileURLToPath(new URL('../', import.meta.url)) };
for (let i = 0; i < args.length; i++) {
  const a = args[i], v = () => args[++i];
  if (a === '-m') opt.model = resolve(v());
  else if (a === '-r') opt.rounds = Number(v());
  else if (a === '--root') opt.root = resolve(v()) + '/';
  else if (a === '--pipelines') opt.pipes = v(); // async | sync (default: the engine's choice)
  else { console.error(`unknown option ${a}`); process.exit(2); }
}
if (!opt.model || !existsSync(opt.model)) { console.error('usage: node bench/load-time-browser.mjs -m FILE [-r N] [--root DIR]'); process.exit(2); }
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const { chromium } = await import('playwright-core');
const TYPES = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
const page = `<!doctype html><meta charset="utf-8"><title>load time</title>
<script type="module">
import { Engine } from '/web/engine.mjs';
const PIPES = ${opt.pipes === 'async' ? 'true' : opt.pipes === 'sync' ? 'false' : 'undefined'};
window.run = async () => {
  const blob = await (await fetch('/model.gguf')).blob();
  const t0 = performance.now();
  const eng = await Engine.create({ backend: 'webgpu', asyncPipelines: PIPES });
  const created = performance.now() - t0;
  await eng.load(blob, { nCtx: 256 });
  const loaded = performance.now() - t0;
  let first = 0;
  await eng.generate('Hello', { maxTokens: 1, sampling: { temperature: 0 }, onToken: () => { first ||= performance.now() - t0; } });
  const T = eng.loadTimes ?? {};
  eng.close();
  return { total: first, created, loaded, headerMs: T.headerMs, setupMs: T.setupMs, uploadMs: T.uploadMs, pipelinesMs: T.pipelinesMs, loadMs: T.loadMs };
};
window.ready = true;
</script>`;
const srv = http.createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(page);
  const file = path === '/model.gguf' ? opt.model : (path.startsWith('/web/') || path.startsWith('/build/wasm/')) && !path.includes('..') ? opt.root + path.slice(1) : null;
  if (!file || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
  res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
});
await new Promise((r) => srv.listen(0, '127.0.0.1', r));
const f = (x) => (x === undefined ? '-' : x.toFixed(0));
let code = 0;
for (let r = 0; r < opt.rounds; r++) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--enable-unsafe-webgpu'] });
  try {
    const p = await browser.newPage();
    await p.goto(`http://127.0.0.1:${srv.address().port}/`);
    await p.waitForFunction(() => window.ready === true, null, { timeout: 60000 });
    const x = await p.evaluate(() => window.run());
    console.log(`chromium load-to-first-token ${f(x.total)} ms: device+core ${f(x.created)}, load done at ${f(x.loaded)} ` +
      `(header ${f(x.headerMs)}, buffers ${f(x.setupMs)}, upload ${f(x.uploadMs)}, pipelines ${f(x.pipelinesMs)} from the load's start)`);
  } catch (e) {
    console.error(`load-time-browser: ${e.message ?? e}`);
    code = 1;
  } finally {
    await browser.close();
  }
}
srv.close();
process.exit(code);
