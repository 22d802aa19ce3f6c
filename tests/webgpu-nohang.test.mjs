// `node web/cli.mjs run --gpu` exits after its answer, every time (issue 18: on a fresh machine it
// once printed its whole answer and never exited, and make test hung). Runs the tiny model on
// SwiftShader ONEBIT_NOHANG_RUNS times in a row (default 20), each under its own timeout; a run
// that does not exit in time is killed and the test fails naming it. Each run must also print
// the same greedy answer and exit 0.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('../', import.meta.url).pathname;
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;
const TINY = join(root, 'build/models/tiny.gguf');
assert.ok(existsSync(join(root, 'build/wasm/onebit.wasm')), 'build/wasm/onebit.wasm is missing: run `make wasm`');
assert.ok(existsSync(TINY), 'build/models/tiny.gguf is missing: run tools/make-models.sh');
const RUNS = Number(process.env.ONEBIT_NOHANG_RUNS ?? 20);
// Generous: a run takes seconds on a quiet machine, over a minute on a crowded 2-core one; a hang never ends.
const TIMEOUT_MS = Number(process.env.ONEBIT_NOHANG_TIMEOUT_MS ?? 300_000);

let skip = false;
try {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  if (!(await create([]).requestAdapter())) skip = 'Dawn (npm webgpu) found no WebGPU adapter';
} catch (e) {
  skip = `Dawn (npm webgpu) cannot start: ${e.message}`;
}
if (skip) console.log(`# SKIP webgpu no-hang test: ${skip}`);

// One run: resolves {code, signal, out, err, ms, timedOut}; a run past the timeout is killed
// (its whole process group: the CLI runs itself as a child).
function runOnce() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const args = [join(root, 'web/cli.mjs'), 'run', '-m', TINY, '--gpu', '-n', '3', '--temp', '0', '--raw', '-p', 'Hello'];
    const p = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '', err = '', timedOut = false;
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-p.pid, 'SIGKILL'); } catch { p.kill('SIGKILL'); }
    }, TIMEOUT_MS);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err, ms: performance.now() - t0, timedOut });
    });
  });
}

test(`node web/cli.mjs run --gpu exits within ${TIMEOUT_MS / 1000} s, ${RUNS} runs in a row`, { skip }, async () => {
  assert.ok(Number.isInteger(RUNS) && RUNS > 0, 'ONEBIT_NOHANG_RUNS must be a positive integer');
  let first = null;
  const times = [];
  for (let i = 1; i <= RUNS; i++) {
    const r = await runOnce();
    times.push(Math.round(r.ms));
    assert.ok(!r.timedOut, `run ${i} of ${RUNS} did not exit within ${TIMEOUT_MS} ms (killed); it printed ${JSON.stringify(r.out)}, ` +
      `stderr ${JSON.stringify(r.err.slice(-400))}`);
    assert.equal(r.code, 0, `run ${i} of ${RUNS}: exit ${r.code} (signal ${r.signal}): ${r.err.slice(-400)}`);
    first ??= r.out;
    assert.equal(r.out, first, `run ${i} of ${RUNS} printed another answer`);
  }
  console.log(`# ${RUNS} runs, ms each: ${times.join(' ')}`);
});
