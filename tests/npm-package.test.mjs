// npm-package.test.mjs — the npm package (tools/pack-npm.mjs, `make npm`) used as an app would.
//
// Packs the package twice (the same bytes both times, and a page's download within the budget),
// installs the tarball into a scratch project (offline: it has no dependencies), and there:
// a Node script chats with the demo model (wasm CPU path, and WebGPU through Dawn on whatever
// adapter Vulkan offers: SwiftShader here); TypeScript type-checks an example
// against the declarations (and rejects a wrong one); Vite builds a page that imports the package,
// and a plain <script type="module"> page imports it unbundled: headless Chromium chats with the
// demo model in both. Every process has a timeout.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const DEMO = join(root, 'models', 'demo.gguf');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const tmp = mkdtempSync(join(tmpdir(), 'onebit-npm-'));
const proj = join(tmp, 'app');
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function run(cmd, args, { cwd = root, timeout = 180_000, env = {} } = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  assert.equal(r.error, undefined, `${cmd} ${args.join(' ')}: ${r.error} (timeout ${timeout / 1000} s)`);
  return r;
}

let tgz;
const sha = (f) => createHash('sha256').update(readFileSync(f)).digest('hex');

test('the package packs reproducibly, and a page downloads at most 200 KB gzipped', () => {
  const a = run('node', ['tools/pack-npm.mjs', join(tmp, 'p1')]);
  assert.equal(a.status, 0, a.stderr + a.stdout);
  const b = run('node', ['tools/pack-npm.mjs', join(tmp, 'p2')]);
  assert.equal(b.status, 0, b.stderr + b.stdout);
  const sizes = JSON.parse(readFileSync(join(tmp, 'p1', 'sizes.json'), 'utf8'));
  tgz = join(tmp, 'p1', sizes.tarball);
  assert.equal(sha(tgz), sha(join(tmp, 'p2', sizes.tarball)), 'two packs of the same build differ');
  assert.ok(sizes.pageGzipBytes <= 200 * 1024 && sizes.pageGzipBytes > 50 * 1024, `page download ${sizes.pageGzipBytes} B`);
  assert.match(a.stdout, /total \d+\.\d KB gzipped \(budget 200 KB\)/);
});

test('installed into a scratch project, a Node script chats with the demo model', () => {
  mkdirSync(proj, { recursive: true });
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  const i = run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tgz], { cwd: proj });
  assert.equal(i.status, 0, i.stderr);
  assert.ok(existsSync(join(proj, 'node_modules', 'onebit', 'wasm', 'onebit.wasm')));
  writeFileSync(join(proj, 'chat.mjs'), `
import { OneBit } from 'onebit';
const ai = await OneBit.load(process.argv[2], { backend: 'cpu' });
const r = await ai.chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, temperature: 0 });
const s = await (await ai.chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, temperature: 0, stream: true })).text();
console.log(JSON.stringify({ backend: ai.backend, text: r.choices[0].message.content, streamed: s, usage: r.usage }));
ai.close();
`);
  const r = run('node', ['chat.mjs', DEMO], { cwd: proj, timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.equal(o.backend, 'cpu');
  assert.ok(o.usage.completion_tokens >= 1 && o.text.length > 0, r.stdout);
  assert.equal(o.streamed, o.text, 'greedy: streamed and whole answers agree');
});

test('in Node with Dawn (the webgpu package beside it), the package runs on WebGPU', () => {
  const dawn = join(root, 'node_modules', 'webgpu');
  assert.ok(existsSync(dawn), 'the webgpu package is missing: make deps');
  symlinkSync(dawn, join(proj, 'node_modules', 'webgpu'), 'dir');
  writeFileSync(join(proj, 'gpu.mjs'), `
import { OneBit } from 'onebit';
const ai = await OneBit.load(process.argv[2], { backend: 'webgpu' });
const r = await ai.chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 3, temperature: 0 });
console.log(JSON.stringify({ backend: ai.backend, adapter: ai.adapter, n: r.usage.completion_tokens, text: r.choices[0].message.content }));
ai.close();
process.exit(0); // Dawn's teardown can keep Node alive
`);
  const r = run('node', ['gpu.mjs', DEMO], { cwd: proj, timeout: 240_000,
    env: { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json' } });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.equal(o.backend, 'webgpu', r.stdout);
  assert.ok(o.n >= 1, r.stdout);
});

test('TypeScript type-checks an example against the declarations, and rejects a wrong one', () => {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  assert.ok(existsSync(tsc), 'typescript is missing: make deps');
  writeFileSync(join(proj, 'ok.ts'), `
import { OneBit, OneBitError, type ChatCompletion } from 'onebit';
export async function main(path: string): Promise<string> {
  const ai: OneBit = await OneBit.load(path, { backend: 'cpu', onProgress: ({ fraction }) => void fraction });
  const r: ChatCompletion = await ai.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 });
  let text = r.choices[0].message.content;
  for await (const c of await ai.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], stream: true }))
    text += c.choices[0]?.delta?.content ?? '';
  try { ai.close(); } catch (e) { if (e instanceof OneBitError) text += e.code; }
  return text;
}
`);
  writeFileSync(join(proj, 'bad.ts'), `
import { OneBit } from 'onebit';
export async function main(ai: OneBit) {
  await ai.chat.completions.create({ messages: 'Hi', temprature: 1 });
}
`);
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', 'false'];
  const ok = run('node', [tsc, ...args, 'ok.ts'], { cwd: proj });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  const bad = run('node', [tsc, ...args, 'bad.ts'], { cwd: proj });
  assert.notEqual(bad.status, 0, 'a wrong request type-checks');
  assert.match(bad.stdout, /bad\.ts/);
});

// ---- browsers ------------------------------------------------------------------------------------

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.gguf': 'application/octet-stream' };
function serve(dir) {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
      const file = join(dir, path.endsWith('/') ? path + 'index.html' : path);
      if (!file.startsWith(dir) || !existsSync(file) || statSync(file).isDirectory()) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

const PAGE_SCRIPT = (spec) => `
import { OneBit } from '${spec}';
try {
  const ai = await OneBit.load('/demo.gguf', { backend: 'cpu' });
  const r = await ai.chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, temperature: 0 });
  document.getElementById('out').textContent = JSON.stringify({ text: r.choices[0].message.content, n: r.usage.completion_tokens });
} catch (e) {
  document.getElementById('out').textContent = 'error: ' + e.message;
}
document.title = 'done';
`;

let chromium = null;
let skip = false;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  skip = 'playwright-core is missing (make deps)';
}
if (!skip && !existsSync(CHROMIUM)) skip = `no Chromium at ${CHROMIUM}`;

let browser = null;
after(async () => { await browser?.close(); });

async function chatIn(dir, path) {
  const server = await serve(dir);
  try {
    browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 60_000 });
    const page = await browser.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    await page.goto(`http://127.0.0.1:${server.address().port}${path}`, { timeout: 60_000 });
    await page.waitForFunction(() => document.title === 'done', null, { timeout: 120_000 }).catch(() => {});
    const out = await page.textContent('#out');
    await page.close();
    assert.ok(out && !out.startsWith('error') && out !== '', `page said ${JSON.stringify(out)}; console: ${logs.join('\n')}`);
    const o = JSON.parse(out);
    assert.ok(o.n >= 1 && o.text.length > 0, out);
  } finally {
    server.close();
  }
}

test('a Vite-built page chats with the demo model in Chromium', { skip }, async () => {
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  assert.ok(existsSync(vite), 'vite is missing: make deps');
  const site = join(proj, 'site');
  mkdirSync(join(site, 'public'), { recursive: true });
  copyFileSync(DEMO, join(site, 'public', 'demo.gguf'));
  writeFileSync(join(site, 'index.html'), '<!doctype html><title>vite</title><pre id="out"></pre><script type="module" src="./main.js"></script>');
  writeFileSync(join(site, 'main.js'), PAGE_SCRIPT('onebit'));
  writeFileSync(join(proj, 'vite.config.js'), "export default { root: 'site', build: { outDir: '../dist', emptyOutDir: true, target: 'es2022' }, logLevel: 'warn' };");
  const b = run('node', [vite, 'build'], { cwd: proj, timeout: 180_000 });
  assert.equal(b.status, 0, b.stdout + b.stderr);
  assert.ok(existsSync(join(proj, 'dist', 'index.html')));
  await chatIn(join(proj, 'dist'), '/');
});

test('a plain <script type="module"> page imports the package unbundled and chats', { skip }, async () => {
  copyFileSync(DEMO, join(proj, 'demo.gguf'));
  writeFileSync(join(proj, 'plain.html'), `<!doctype html><title>plain</title><pre id="out"></pre><script type="module">${PAGE_SCRIPT('/node_modules/onebit/onebit.js')}</script>`);
  await chatIn(proj, '/plain.html');
});
