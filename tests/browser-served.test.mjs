// browser-served.test.mjs — the chat page as a newcomer meets it after `make run`: served by
// `onebit serve` on the demo model, in headless Chromium (Debian's /usr/bin/chromium via
// playwright-core). The served model is offered first and answers with no click on any download
// (no model file is fetched); the status says generating, then ready; an internet download while
// offline ends in a readable message that says what failed and what to do, with the input still
// in sight; at 1280×800, 1366×768 and a 390×844 phone the input, the Send button and the figures
// are inside the window (screenshots in build/screenshots/served-*.png); the favicon loads.
// Not the in-browser engine (browser-app.test.mjs).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ONEBIT = new URL('build/onebit', root).pathname;
const SHOTS = new URL('build/screenshots/', root);

let chromium = null, skip = false;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  skip = 'playwright-core is not installed';
}
if (!skip && !existsSync(CHROMIUM)) skip = `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
if (!skip && !existsSync(ONEBIT)) skip = 'build/onebit is missing (make)';

// `onebit serve` on the demo model, as tools/run-demo.sh starts it, on a free port.
function startServer() {
  const srv = spawn(ONEBIT, ['serve', '-m', new URL('models/demo.gguf', root).pathname, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const killer = setTimeout(() => srv.kill('SIGKILL'), 280_000); // never outlives the test
  return new Promise((resolve, reject) => {
    let out = '';
    srv.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+?)\/?\n/.exec(out);
      if (m) resolve({ url: m[1], stop: () => { clearTimeout(killer); srv.kill('SIGTERM'); } });
    });
    srv.on('exit', (code) => reject(new Error(`onebit serve exited (${code}): ${out}`)));
  });
}

// Is the element's whole box inside the viewport?
const inView = (page, sel) => page.evaluate((s) => {
  const r = document.querySelector(s).getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight + 0.5 && r.right <= innerWidth + 0.5
    ? true : `${s}: ${JSON.stringify(r)} in ${innerWidth}x${innerHeight}`;
}, sel);

test('served page: the served model answers with no download; offline error; layout at three sizes', { skip, timeout: 300000 }, async () => {
  mkdirSync(SHOTS, { recursive: true });
  const srv = await startServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    const requests = [], consoleErrors = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    await page.goto(srv.url + '/');
    await page.waitForFunction(() => window.onebitApp?.loaded === true, null, { timeout: 30000 });
    assert.match(await page.textContent('#status'), /^Ready: demo, run by onebit serve/);
    assert.equal(await page.$eval('#served', (e) => !e.hidden), true, 'the served model is offered (in the model panel, folded once it is in use)');
    assert.match(await page.textContent('#served-name'), /demo \(11\.9 MB\)/);

    // An answer, without any click on a download; the status says so while it streams.
    await page.fill('#prompt', 'Who are you?');
    await page.click('#send');
    await page.waitForFunction(() => /^Generating/.test(document.querySelector('#status').textContent) || !window.onebitApp.busy, null, { timeout: 10000 });
    await page.waitForFunction(() => !window.onebitApp.busy, null, { timeout: 60000 });
    const answer = await page.evaluate(() => window.onebitApp.chat.messages.at(-1));
    assert.equal(answer.role, 'assistant');
    assert.ok(answer.content.trim().length > 0, 'an answer');
    assert.doesNotMatch(answer.content, /<think>/);
    assert.match(await page.textContent('#status'), /^Ready/);
    assert.match(await page.textContent('#f-tg'), /tok\/s/);
    assert.ok(!requests.some((u) => /\.gguf|huggingface/.test(u)), `no model download: ${requests.filter((u) => /gguf/.test(u))}`);
    assert.ok(requests.some((u) => u.endsWith('/favicon.svg')), 'the favicon is asked for');
    assert.deepEqual(consoleErrors, [], 'no errors in the console (no favicon 404)');
    for (const sel of ['#prompt', '#send', '#figures']) assert.equal(await inView(page, sel), true);
    await page.screenshot({ path: new URL('served-1280x800.png', SHOTS).pathname });

    // Offline, the internet download fails with a message that says what failed and what to do.
    await page.click('#model-panel > summary');
    await ctx.setOffline(true);
    await page.click('#download');
    await page.waitForSelector('#banner:not([hidden])', { timeout: 20000 });
    const msg = await page.textContent('#banner-text');
    assert.match(msg, /Could not download Bonsai-1\.7B-Q1_0\.gguf from huggingface\.co/);
    assert.match(msg, /offline|connection failed/);
    assert.match(msg, /Chat with the served model/);
    assert.doesNotMatch(msg, /^Failed to fetch$/);
    for (const sel of ['#prompt', '#send']) assert.equal(await inView(page, sel), true, 'the banner keeps the input in sight');
    await page.screenshot({ path: new URL('served-offline-1280x800.png', SHOTS).pathname });
    await ctx.setOffline(false);

    // The other common sizes: a fresh page each (the served model again, from storage-free state).
    for (const [w, h] of [[1366, 768], [390, 844]]) {
      const c = await browser.newContext({ viewport: { width: w, height: h }, isMobile: w < 500, hasTouch: w < 500 });
      const p = await c.newPage();
      await p.goto(srv.url + '/');
      await p.waitForFunction(() => window.onebitApp?.loaded === true, null, { timeout: 30000 });
      await p.fill('#prompt', 'And it came to pass');
      await p.click('#send');
      await p.waitForFunction(() => !window.onebitApp.busy, null, { timeout: 60000 });
      await p.screenshot({ path: new URL(`served-${w}x${h}.png`, SHOTS).pathname });
      for (const sel of ['#prompt', '#send', '#figures']) assert.equal(await inView(p, sel), true, `${w}x${h}`);
      await c.close();
    }
  } finally {
    await browser.close();
    srv.stop();
  }
});
