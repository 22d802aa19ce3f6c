// browser-app.test.mjs — the chat page (web/index.html, app.js, worker.js) in headless Chromium
// (Debian's /usr/bin/chromium via playwright-core), served on 127.0.0.1 by a small static server
// in this test: web/ at /, build/wasm/ at /build/wasm/, the demo model at /models/demo.gguf
// (with byte ranges and the cross-origin-isolation headers `onebit serve` sends), plus a "flaky"
// copy of the model whose first download breaks off halfway, and a file that is not a model.
// It walks the main paths: download + store + load the demo model (WebGPU on SwiftShader), a
// streamed answer, stop mid-answer, reload (conversation kept, model loaded from storage), a
// corrupted stored file detected, the CPU fallback (?backend=cpu), a resumed download (HTTP
// Range) and an invalid file. Screenshots go to build/screenshots/. Needs `make wasm`.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, readFileSync, statSync, mkdirSync } from 'node:fs';
import { extname } from 'node:path';

const root = new URL('../', import.meta.url);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const DEMO = new URL('models/demo.gguf', root);
const DEMO_SHA = 'e93d50c8b3e56ef9dcc1ea81ba403b62d077221b6890f4abde39fc7c994af468';
const SHOTS = new URL('build/screenshots/', root);
assert.ok(existsSync(new URL('build/wasm/onebit.wasm', root)), 'build/wasm/onebit.wasm is missing: run `make wasm`');

let chromium = null, skip = false;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  skip = 'playwright-core is not installed';
}
if (!skip && !existsSync(CHROMIUM)) skip = `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
if (skip) console.log(`# SKIP browser app test: ${skip}`);

const TYPES = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html',
  '.css': 'text/css', '.gguf': 'application/octet-stream', '.png': 'image/png' };
const ISOLATION = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin', 'cache-control': 'no-cache' };

function serve(log) {
  const demo = readFileSync(DEMO);
  let flakyServed = false;
  const srv = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    log.push({ path, range: req.headers.range ?? null });
    let body = null, type = 'application/octet-stream';
    if (path === '/models/demo.gguf' || path === '/flaky/demo.gguf') body = demo;
    else if (path === '/models/junk.gguf') body = Buffer.from('GGUF but not really a model file at all'.repeat(10));
    else if (!path.includes('..')) {
      const file = path.startsWith('/build/wasm/') ? new URL('.' + path, root) : new URL('web' + (path === '/' ? '/index.html' : path), root);
      if (existsSync(file) && statSync(file).isFile()) {
        body = readFileSync(file);
        type = TYPES[extname(file.pathname)] ?? type;
      }
    }
    if (!body) return res.writeHead(404, ISOLATION).end();
    const m = /^bytes=(\d+)-(\d+)?$/.exec(req.headers.range ?? '');
    if (m) {
      const a = Number(m[1]), b = Math.min(m[2] ? Number(m[2]) : body.length - 1, body.length - 1);
      if (a > b) return res.writeHead(416, { ...ISOLATION, 'content-range': `bytes */${body.length}` }).end();
      return res.writeHead(206, { ...ISOLATION, 'content-type': type, 'content-range': `bytes ${a}-${b}/${body.length}`,
        'content-length': b - a + 1 }).end(body.subarray(a, b + 1));
    }
    res.writeHead(200, { ...ISOLATION, 'content-type': type, 'content-length': body.length, 'accept-ranges': 'bytes' });
    if (path === '/flaky/demo.gguf' && !flakyServed) {
      // The first full download breaks off after 9 MB, as a dropped connection would.
      flakyServed = true;
      res.write(body.subarray(0, 9 << 20), () => setTimeout(() => res.destroy(), 100));
      return;
    }
    res.end(body);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

async function waitLoaded(page) {
  await page.waitForFunction(() => window.onebitApp?.loaded === true, null, { timeout: 60000 });
}
const shot = (page, name) => page.screenshot({ path: new URL(`${name}.png`, SHOTS).pathname });
const lastAnswer = (page) => page.evaluate(() => window.onebitApp.chat.messages.at(-1));

test('chat page: download, stream, stop, reload, corruption, CPU fallback, resume', { skip, timeout: 300000 }, async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const log = [];
  const srv = await serve(log);
  const base = `http://127.0.0.1:${srv.address().port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--enable-unsafe-webgpu'] });
  t.after(async () => { await browser.close(); srv.close(); });
  const errors = [];

  // ---- WebGPU (SwiftShader): demo model, streaming, stop, reload, corruption ----
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(base + '/');
  await page.waitForSelector('#demo');
  await shot(page, '1-start');
  await page.click('#demo');
  await waitLoaded(page);
  const backend = await page.textContent('#f-backend');
  assert.match(backend, /WebGPU|CPU/);
  const entry = await page.evaluate(() => JSON.parse(localStorage.getItem('onebit.models')).find((m) => m.name === 'demo.gguf'));
  assert.equal(entry.sha256, DEMO_SHA, 'stored file has the demo model digest');
  assert.equal(entry.partial, false);
  assert.match(await page.textContent('#stored'), /demo\.gguf/);

  await page.click('#settings > summary');
  await page.fill('#max-tokens', '400');
  await page.dispatchEvent('#max-tokens', 'input');
  await page.fill('#prompt', 'Who made the heaven and the earth?');
  await page.press('#prompt', 'Enter');
  // Streamed: text shows while the answer is still being generated.
  await page.waitForFunction(() => {
    const m = window.onebitApp.chat.messages.at(-1);
    return window.onebitApp.busy && m?.role === 'assistant' && m.content.length > 0 &&
      document.querySelector('#messages li.assistant.streaming')?.textContent.length > 5;
  }, null, { timeout: 60000 });
  await shot(page, '2-streaming');
  await page.click('#stop');
  await page.waitForFunction(() => !window.onebitApp.busy, null, { timeout: 30000 });
  const stopped = await lastAnswer(page);
  assert.ok(stopped.content.length > 0);
  assert.equal(stopped.note, 'stopped');

  // A second, complete answer; its figures are filled in.
  await page.fill('#max-tokens', '12');
  await page.dispatchEvent('#max-tokens', 'input');
  await page.fill('#prompt', 'And what did he say?');
  await page.click('#send');
  // SwiftShader runs the WebGPU decode kernels (integer dot products emulated) at well under 1 tok/s
  // (0.4-0.5 on a 2-core CI machine): few tokens, and a generous test timeout.
  await page.waitForFunction(() => !window.onebitApp.busy && window.onebitApp.chat.messages.length === 4, null, { timeout: 180000 });
  assert.match(await page.textContent('#f-tg'), /tok\/s/);
  assert.match(await page.textContent('#f-ctx'), /of 256 tokens/);
  await shot(page, '3-answer');
  await page.click('#settings > summary');
  await page.click('#model-panel > summary');
  await shot(page, '3-figures');
  await page.click('#model-panel > summary');
  t.diagnostic(`backend: ${backend}; adapter: ${await page.textContent('#f-adapter')}; prompt ${await page.textContent('#f-pp')}; ` +
    `generation ${await page.textContent('#f-tg')}`);

  // Reload: the conversation is still there and the model comes from storage, not the network.
  const before = await page.evaluate(() => window.onebitApp.chat.messages.map((m) => m.content));
  const fetched = log.filter((l) => l.path === '/models/demo.gguf').length;
  await page.reload();
  await waitLoaded(page);
  const after = await page.evaluate(() => window.onebitApp.chat.messages.map((m) => m.content));
  assert.deepEqual(after, before);
  assert.equal(log.filter((l) => l.path === '/models/demo.gguf').length, fetched, 'no new download after reload');
  assert.equal(await page.locator('#messages li').count(), 4);
  await page.click('#regen');
  await page.waitForFunction(() => !window.onebitApp.busy && window.onebitApp.chat.messages.at(-1)?.content, null, { timeout: 60000 });
  assert.equal(await page.evaluate(() => window.onebitApp.chat.messages.length), 4);

  // A lost GPU device: an honest message, then Recover reloads the model and keeps the chat.
  if (/WebGPU/.test(backend)) {
    await page.evaluate(() => window.onebitApp.loseDevice());
    await page.fill('#prompt', 'Are you there?');
    await page.press('#prompt', 'Enter');
    await page.waitForSelector('#recover:not([hidden])', { timeout: 30000 });
    assert.match(await page.textContent('#banner-text'), /GPU device was lost/);
    await shot(page, '4-device-lost');
    await page.click('#recover');
    await waitLoaded(page);
    assert.equal(await page.locator('#messages li').count(), 5, 'conversation kept (with the unanswered message)');
    await page.click('#regen');
    await page.waitForFunction(() => !window.onebitApp.busy && window.onebitApp.chat.messages.at(-1)?.role === 'assistant', null, { timeout: 60000 });
    assert.ok((await lastAnswer(page)).content.length > 0);
  } else t.diagnostic('no WebGPU in this Chromium: device-loss recovery not exercised');

  // A corrupted stored file is detected on the next load.
  await page.evaluate(async () => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('models');
    const w = await (await dir.getFileHandle('demo.gguf')).createWritable({ keepExistingData: true });
    await w.seek(5 << 20);
    await w.write(new Uint8Array(64).fill(0x55));
    await w.close();
  });
  await page.reload();
  await page.waitForSelector('#banner:not([hidden])', { timeout: 30000 });
  assert.match(await page.textContent('#banner-text'), /corrupted/);
  assert.equal(await page.evaluate(() => window.onebitApp.loaded), false);
  await shot(page, '5-corrupted');
  await ctx.close();

  // ---- CPU fallback, resumed download, invalid file (fresh storage) ----
  const ctx2 = await browser.newContext({ viewport: { width: 390, height: 800 } }); // phone-sized
  const p2 = await ctx2.newPage();
  p2.on('pageerror', (e) => errors.push(String(e)));
  await p2.goto(base + '/?backend=cpu');
  await p2.fill('#model-url', base + '/models/junk.gguf');
  await p2.click('#download');
  await p2.waitForSelector('#banner:not([hidden])', { timeout: 30000 });
  assert.match(await p2.textContent('#banner-text'), /not a model onebit can run/);

  await p2.fill('#model-url', base + '/flaky/demo.gguf');
  await p2.click('#download');
  await p2.waitForFunction(() => /interrupted/.test(document.querySelector('#banner-text')?.textContent), null, { timeout: 30000 });
  assert.match(await p2.textContent('#stored'), /interrupted/);
  await p2.click('#stored button:text("Resume")');
  await waitLoaded(p2);
  const ranged = log.filter((l) => l.path === '/flaky/demo.gguf' && l.range);
  assert.equal(ranged.length, 1, 'the resumed download asked for a byte range');
  assert.ok(Number(/bytes=(\d+)-/.exec(ranged[0].range)[1]) > 0);
  const e2 = await p2.evaluate(() => JSON.parse(localStorage.getItem('onebit.models')).find((m) => m.name === 'demo.gguf'));
  assert.equal(e2.sha256, DEMO_SHA, 'resumed file is whole');
  assert.match(await p2.textContent('#f-backend'), /CPU/);
  await p2.fill('#prompt', 'Blessed are');
  await p2.press('#prompt', 'Enter');
  await p2.waitForFunction(() => !window.onebitApp.busy && window.onebitApp.chat.messages.at(-1)?.role === 'assistant', null, { timeout: 60000 });
  assert.ok((await lastAnswer(p2)).content.length > 0);
  await shot(p2, '6-cpu-phone');
  await ctx2.close();
  assert.deepEqual(errors, []);
});

test('storage quota is checked before a download; markdown escapes model output', { skip, timeout: 60000 }, async (t) => {
  const log = [];
  const srv = await serve(log);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.after(async () => { await browser.close(); srv.close(); });
  const page = await browser.newPage();
  // A site that may store only 100 more bytes.
  await page.addInitScript(() => { navigator.storage.estimate = async () => ({ quota: 1100, usage: 1000 }); });
  const base = `http://127.0.0.1:${srv.address().port}`;
  await page.goto(base + '/');
  await page.waitForFunction(() => !!window.onebitApp);
  await page.fill('#model-url', base + '/models/junk.gguf');
  await page.click('#download');
  await page.waitForSelector('#banner:not([hidden])', { timeout: 30000 });
  assert.match(await page.textContent('#banner-text'), /Not enough storage .* needs 390 B/);

  const html = await page.evaluate(() => window.onebitApp.markdown(
    '# T\n<img src=x onerror=alert(1)> **b** `<script>`\n```\n<b>x</b>\n```\n- [a](javascript:alert(1))\n- [ok](https://e.org/"x)'));
  assert.ok(!/<img|<script|<b>|href="javascript/i.test(html), html);
  assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/);
  assert.match(html, /<strong>b<\/strong>/);
  assert.match(html, /<pre><code>&lt;b&gt;x&lt;\/b&gt;<\/code><\/pre>/);
  assert.match(html, /<a href="https:\/\/e\.org\/&quot;x"/);
});
