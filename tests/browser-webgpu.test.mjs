// browser-webgpu.test.mjs — the WebGPU engine in a real browser: headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) opens a page served on 127.0.0.1 by a tiny static
// server in this test, loads build/models/tiny.gguf by URL (HTTP range requests, streamed into
// GPU buffers) and compares its logits with the CPU reference (relative RMS <= 1e-3, same
// argmax); then the same for the tiny model with Q8_0 weights (the generic plan), whose kernels
// the page imports only then (kernels-generic.mjs: not fetched for the first model, fetched for
// the second). Chromium falls back to SwiftShader when there is no GPU. Needs `make wasm`.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, readFileSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { extname } from 'node:path';
import { execFileSync } from 'node:child_process';

const root = new URL('../', import.meta.url);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TINY = new URL('build/models/tiny.gguf', root);
const TINY_Q8 = new URL('build/models/tiny-q8_0.gguf', root);  // written below by build/mkmodel
assert.ok(existsSync(new URL('build/wasm/onebit.wasm', root)), 'build/wasm/onebit.wasm is missing: run `make wasm`');
assert.ok(existsSync(TINY), 'build/models/tiny.gguf is missing: run tools/make-models.sh');

let chromium = null, skip = false;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  skip = 'playwright-core is not installed';
}
if (!skip && !existsSync(CHROMIUM)) skip = `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
if (skip) console.log(`# SKIP browser test: ${skip}`);

const TOKENS = [9707, 11, 1879, 374, 264, 1273];
const TYPES = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.gguf': 'application/octet-stream' };

// Serves /web/*, /build/wasm/* and the tiny models (with byte ranges), the reference logits
// (/ref.bin: the first model's, /ref-q8.bin: the second's) and the page; nothing else. Every path
// asked for goes into `asked`.
function serve(refBytes, refQ8Bytes, asked) {
  const page = `<!doctype html><meta charset="utf-8"><title>onebit webgpu test</title>
<script type="module">
import { Engine } from '/web/engine.mjs';
window.runTest = async (tokens, model, ref) => {
  const eng = await Engine.create({ backend: 'webgpu' });
  const info = await eng.load(model, { nCtx: 64 });
  const got = await eng.logits(tokens);
  const want = new Float32Array(await (await fetch(ref)).arrayBuffer());
  let d = 0, s = 0;
  for (let i = 0; i < want.length; i++) { d += (got[i] - want[i]) ** 2; s += want[i] ** 2; }
  const V = info.nVocab, am = (a, r) => { let m = -Infinity, k = 0; for (let i = 0; i < V; i++) if (a[r * V + i] > m) { m = a[r * V + i]; k = i; } return k; };
  const argmax = tokens.map((_, r) => [am(got, r), am(want, r)]);
  eng.close();
  return { backend: info.backend, n: got.length, relRms: Math.sqrt(d / s), argmax };
};
window.ready = true;
</script>`;
  const srv = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    asked.push(path);
    if (path === '/' || path === '/index.html') return res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    if (path === '/ref.bin') return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(refBytes);
    if (path === '/ref-q8.bin') return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(refQ8Bytes);
    const ok = (path.startsWith('/web/') || path.startsWith('/build/wasm/') || path === '/build/models/tiny.gguf' ||
      path === '/build/models/tiny-q8_0.gguf') && !path.includes('..');
    const file = new URL('.' + path, root);
    if (!ok || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
    const size = statSync(file).size, type = TYPES[extname(path)] ?? 'application/octet-stream';
    const m = /^bytes=(\d+)-(\d+)?$/.exec(req.headers.range ?? '');
    if (!m) return res.writeHead(200, { 'content-type': type, 'content-length': size, 'accept-ranges': 'bytes' }).end(readFileSync(file));
    const a = Number(m[1]), b = Math.min(m[2] ? Number(m[2]) : size - 1, size - 1);
    if (a > b) return res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
    const buf = Buffer.alloc(b - a + 1), fd = openSync(file, 'r');
    readSync(fd, buf, 0, buf.length, a);
    closeSync(fd);
    res.writeHead(206, { 'content-type': type, 'content-range': `bytes ${a}-${b}/${size}`, 'content-length': buf.length }).end(buf);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

test('WebGPU logits in headless Chromium match the CPU reference (fused plan, then the generic plan with its kernels fetched then)', { skip, timeout: 170000 }, async (t) => {
  const { Engine } = await import('../web/engine.mjs');
  execFileSync(new URL('build/mkmodel', root).pathname, ['-o', TINY_Q8.pathname, '--preset', 'tiny', '--type', 'q8_0'], { timeout: 60000 });
  const refLogits = async (file) => {
    const ref = await Engine.create({ backend: 'cpu', cpuBackend: 'scalar' });
    await ref.load(file.pathname);
    const l = await ref.logits(TOKENS);
    ref.close();
    return l;
  };
  const want = await refLogits(TINY), wantQ8 = await refLogits(TINY_Q8);
  const asked = [];
  const srv = await serve(Buffer.from(want.buffer, want.byteOffset, want.byteLength),
    Buffer.from(wantQ8.buffer, wantQ8.byteOffset, wantQ8.byteLength), asked);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--enable-unsafe-webgpu'] });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${srv.address().port}/`);
    await page.waitForFunction(() => window.ready === true, null, { timeout: 30000 });
    const hasAdapter = await page.evaluate(async () => !!(navigator.gpu && (await navigator.gpu.requestAdapter())));
    if (!hasAdapter) {
      t.skip('Chromium found no WebGPU adapter');
      return;
    }
    const generic = () => asked.filter((p) => p.endsWith('/kernels-generic.mjs')).length;
    const r = await page.evaluate(([tokens]) => window.runTest(tokens, '/build/models/tiny.gguf', '/ref.bin'), [TOKENS]);
    assert.deepEqual(errors, []);
    assert.equal(r.backend, 'webgpu');
    assert.equal(r.n, want.length);
    assert.ok(r.relRms <= 1e-3, `relative RMS ${r.relRms}`);
    for (const [g, w] of r.argmax) assert.equal(g, w);
    assert.equal(generic(), 0, 'the fused plan fetched the generic plan\'s kernels');
    const q = await page.evaluate(([tokens]) => window.runTest(tokens, '/build/models/tiny-q8_0.gguf', '/ref-q8.bin'), [TOKENS]);
    assert.deepEqual(errors, []);
    assert.equal(q.backend, 'webgpu');
    assert.equal(q.n, wantQ8.length);
    assert.ok(q.relRms <= 1e-3, `Q8_0 model: relative RMS ${q.relRms}`);
    for (const [g, w] of q.argmax) assert.equal(g, w);
    assert.equal(generic(), 1, 'kernels-generic.mjs fetched once for the Q8_0 model');
  } finally {
    await browser.close();
    srv.close();
  }
});
