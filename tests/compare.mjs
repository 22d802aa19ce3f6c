// compare.mjs — how the tests compare vectors of floats (logits, kernel outputs): an element-wise
// check relative to each value's size plus the vector's RMS, the relative RMS error of a whole
// vector, and the argmax of a row. Shared by the WebGPU test files; not a test itself.
import assert from 'node:assert/strict';

// Each element within tol of the expected value, relative to its size plus the RMS of the whole
// expected vector (sums that cancel to near zero are judged against the vector's scale).
export function close(actual, expect, tol, what) {
  assert.equal(actual.length, expect.length, `${what}: length`);
  let worst = 0, at = -1, ss = 0;
  for (const v of expect) ss += v * v;
  const rms = Math.sqrt(ss / expect.length);
  for (let i = 0; i < expect.length; i++) {
    const e = Math.abs(actual[i] - expect[i]) / (Math.abs(expect[i]) + rms + 1e-30);
    if (!(e <= worst)) { worst = e; at = i; }
  }
  assert.ok(worst <= tol, `${what}: worst relative error ${worst} at ${at} (got ${actual[at]}, want ${expect[at]})`);
}

// ||a - b|| / ||b||
export function relRms(a, b) {
  let d = 0, s = 0;
  for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; s += b[i] ** 2; }
  return Math.sqrt(d / s);
}

// Index of the largest of a[off .. off + n).
export function argmax(a, off, n) {
  let m = -Infinity, k = 0;
  for (let i = 0; i < n; i++) if (a[off + i] > m) { m = a[off + i]; k = i; }
  return k;
}
