// q1-accuracy.mjs — logits error of the cpu backend's Q1_0 activation forms, and of llama.cpp, on
// one file, against exact maths (build/ref_forward: a double-precision forward pass).
//
// For each form (ONEBIT_CPU_Q1_ACT=int16 | int14 | int8 | int8x32) the cpu backend's logits of a fixed
// token list (tests/logits.test.mjs's list: a chat-looking start, then ids spread over the
// vocabulary) are compared with ref_forward's: relative RMS = ||a - b|| / ||b|| over all positions
// and the whole vocabulary, and the share of positions whose argmax agrees. llama.cpp's logits
// (node-llama-cpp's CPU build, tests/oracle/llama-logits.mjs) are compared the same way, and each
// form against llama.cpp. All tokens are one batch (the prompt path); the one-token path does the
// same arithmetic per token. Not a test: BENCHMARKS.md quotes it.
//
//   node bench/q1-accuracy.mjs [-m build/models/bonsai.gguf] [-n 16] [--seed 777] [--isa avx512]
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { llamaLogits } from "../tests/oracle/llama-logits.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const model = opt("-m", join(root, "build", "models", "bonsai.gguf"));
const n = Number(opt("-n", "16")), seed = Number(opt("--seed", "777")), isa = opt("--isa", "");
if (!Number.isInteger(n) || n < 1 || n > 512 || !Number.isInteger(seed)) {
  console.error("usage: node bench/q1-accuracy.mjs [-m FILE] [-n 1..512] [--seed N] [--isa NAME]");
  process.exit(2);
}

function tokenList(count, s) {
  const out = [151644, 872, 198];
  let x = s;
  while (out.length < count) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(Math.floor((x / 2147483648) * 151936));
  }
  return out.slice(0, count);
}
const tokens = tokenList(n, seed);
const tmp = mkdtempSync(join(tmpdir(), "onebit-q1acc-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

function run(cmd, argv, env = process.env) {
  execFileSync(cmd, argv, { cwd: root, env, stdio: ["ignore", "ignore", "pipe"], timeout: 900_000, killSignal: "SIGKILL" });
}
function readF32(path) {
  const b = readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}
function compare(a, b) {
  const nv = a.length / n;
  let d2 = 0, b2 = 0, agree = 0;
  for (let i = 0; i < a.length; i++) d2 += (a[i] - b[i]) ** 2, b2 += b[i] ** 2;
  for (let t = 0; t < n; t++) {
    let ia = 0, ib = 0;
    for (let v = 1; v < nv; v++) {
      if (a[t * nv + v] > a[t * nv + ia]) ia = v;
      if (b[t * nv + v] > b[t * nv + ib]) ib = v;
    }
    agree += ia === ib;
  }
  return `${(100 * Math.sqrt(d2 / b2)).toFixed(3)} % (argmax ${agree}/${n})`;
}

const ref = join(tmp, "ref.f32");
run(join(root, "build", "ref_forward"), ["-m", model, "--tokens", tokens.join(","), "--out", ref]);
const R = readF32(ref);
const L = (await llamaLogits(model, tokens)).logits;
console.log(`${model}, ${n} tokens (seed ${seed}), relative RMS of the logits:`);
console.log(`  llama.cpp (CPU) vs exact: ${compare(L, R)}`);
for (const form of ["int16", "int14", "int8", "int8x32"]) {
  const out = join(tmp, `${form}.f32`);
  const env = { ...process.env, ONEBIT_CPU_Q1_ACT: form };
  if (isa) env.ONEBIT_CPU_ISA = isa;
  run(join(root, "build", "onebit"), ["logits", "-m", model, "--tokens", tokens.join(","), "--out", out, "--backend", "cpu"], env);
  const A = readF32(out);
  console.log(`  onebit cpu ${form.padEnd(7)} vs exact: ${compare(A, R)};  vs llama.cpp: ${compare(A, L)}`);
}
