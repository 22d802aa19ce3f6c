// arch-logits.test.mjs — onebit's logits against llama.cpp's on real GGUF files of other
// architectures and weight types.
//
// The files come from tools/make-arch-models.sh (BUILD/models/arch/manifest.json): random-weight
// `llama` (Llama 2 SentencePiece, Llama 3 BPE with and without rope_freqs.weight) and `qwen2` (q/k/v
// biases, tied and untied) models with real vocabularies, in F32/F16 and quantised by llama.cpp's own
// llama-quantize to F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K_M, Q5_K_M, Q6_K, and pure (every
// matrix) Q2_0, TQ1_0, TQ2_0, Q2_K, Q3_K_S; a Qwen3-shaped F32 file and its pure Q2_0. Next to each file
// the script caches the oracle: llama.cpp's logits (node-llama-cpp's CPU build) for a teacher-forced
// token list made with the file's own vocabulary (tests/oracle/arch-oracle.mjs). The existing Qwen3
// test model (build/models/tiny.gguf, Q1_0) is one more entry, its oracle computed here (and cached
// as BUILD/models/arch/tiny.*): it proves the harness on a model onebit already runs.
//
// Per file, for each backend (--backend scalar and --backend cpu; $ONEBIT_ARCH_BACKENDS=a,b to choose):
//   relative RMS error at every position t: rms(ours_t - llama_t) / rms(llama_t) <= 0.05
//   the same top-1 token at >= 90% of the positions
// The oracle side is checked on its own too (every file loads in llama.cpp with finite, sane logits;
// rope_freqs.weight changes them; every weight type is present), so that a failure of the engine
// tests means the engine. Every spawned process has a timeout. $ONEBIT_ARCH_FILTER=regex selects files.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const B = join(root, "build");
const ONEBIT = join(B, "onebit");
const D = join(B, "models", "arch");
const MANIFEST = join(D, "manifest.json");
const TINY = join(B, "models", "tiny.gguf");
const ORACLE = join(root, "tests", "oracle", "arch-oracle.mjs");
const BACKENDS = (process.env.ONEBIT_ARCH_BACKENDS || "scalar,cpu").split(",").filter(Boolean);
const FILTER = new RegExp(process.env.ONEBIT_ARCH_FILTER || ".");
const ONEBIT_TIMEOUT_MS = 120_000; // one `onebit logits` run (24 tokens; the scalar backend is slow)
const ORACLE_TIMEOUT_MS = 180_000; // one llama.cpp run through node-llama-cpp
const REL_TOL = 0.05;
const TOP1_MIN = 0.9;
const ALL_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K",
  "Q2_0", "TQ1_0", "TQ2_0", "Q2_K", "Q3_K"];
// Pure 2- and 3-bit files of random Gaussian weights (token_embd and output included) are far from
// their F32 base in llama.cpp itself (relative RMS 0.4-1.3: ternary codes of a Gaussian): for them
// the near-base check asks only that they differ; onebit is held to llama.cpp's logits all the same.
const FAR_FROM_BASE = new Set(["q2_0", "tq1_0", "tq2_0", "q2_k", "q3_k_s"]);

const tmp = mkdtempSync(join(tmpdir(), "onebit-arch-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

// ---- the entries -------------------------------------------------------------------------------

const manifest = existsSync(MANIFEST) ? JSON.parse(readFileSync(MANIFEST, "utf8")).files : null;
const entries = [
  // The harness check: a model onebit runs today (its oracle is computed below, not cached).
  { name: "qwen3-tiny", path: TINY, arch: "qwen3", vocab: "qwen3", variant: "q1_0", types: ["F32", "Q1_0"], harness: true },
  ...(manifest || []).map((e) => ({ ...e, path: join(D, e.file) })),
].filter((e) => FILTER.test(e.name));
const byName = new Map(entries.map((e) => [e.name, e]));
// Entries without llama.cpp logits (`ref_only` in the manifest: e.g. BitNet with its ReLU² default,
// which the oracle's llama.cpp does not run) are compared with the float64 reference only.
const withOracle = entries.filter((e) => !e.ref_only);

/** The tokens an entry is run on: the oracle's, or for ref_only files fixed ids over the vocabulary. */
function tokensOf(e) {
  if (!e.ref_only) return oracle(e).tokens;
  return Array.from({ length: 24 }, (_, i) => (1 + i * 7919) % e.n_vocab);
}

function readF32(path) {
  const buf = readFileSync(path);
  return new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
}

/** Runs a command with a timeout; throws with its stderr unless it exits 0 (or allowFail). */
function run(cmd, args, timeout, allowFail = false) {
  const r = spawnSync(cmd, args, { cwd: root, timeout, encoding: "utf8", maxBuffer: 1 << 24, killSignal: "SIGKILL" });
  if (r.error) throw new Error(`${cmd} ${args[0]}: ${r.error.code === "ETIMEDOUT" ? `timed out after ${timeout / 1000} s` : r.error.message}`);
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(" ").slice(0, 200)} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return r;
}

const oracleMemo = new Map();
/** llama.cpp's side of an entry: {tokens, logits, nVocab}. */
function oracle(e) {
  if (!oracleMemo.has(e.name)) {
    let base;
    if (e.harness) { // cached next to the arch models while newer than tiny.gguf
      const dir = existsSync(D) ? D : tmp;
      base = join(dir, "tiny");
      const fresh = existsSync(base + ".llama.f32") && existsSync(base + ".tokens.json") &&
        statSync(base + ".llama.f32").mtimeMs >= Math.max(statSync(e.path).mtimeMs, statSync(ORACLE).mtimeMs);
      if (!fresh) run(process.execPath, [ORACLE, "--out-dir", dir, e.path], ORACLE_TIMEOUT_MS);
    } else {
      assert.ok(e.oracle && e.tokens, `${e.name}: the manifest has no oracle logits: run tools/make-arch-models.sh`);
      base = join(D, e.name);
      assert.ok(statSync(base + ".llama.f32").mtimeMs >= statSync(e.path).mtimeMs,
        `${e.name}: cached oracle logits older than the model: run tools/make-arch-models.sh`);
    }
    const { tokens, n_vocab: nVocab } = JSON.parse(readFileSync(base + ".tokens.json", "utf8"));
    const logits = readF32(base + ".llama.f32");
    assert.equal(logits.length, tokens.length * nVocab, `${e.name}: oracle logits have the wrong size`);
    oracleMemo.set(e.name, { tokens, logits, nVocab });
  }
  return oracleMemo.get(e.name);
}

function argmax(a, off, n) {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + best]) best = i;
  return best;
}

/** Per-position relative RMS of a against b, and the positions whose top-1 agrees. */
function compare(a, b, nTokens, nVocab) {
  const rel = [];
  let agree = 0;
  for (let t = 0; t < nTokens; t++) {
    let d2 = 0, b2 = 0;
    for (let v = t * nVocab; v < (t + 1) * nVocab; v++) {
      if (!Number.isFinite(a[v])) return { nonFinite: t };
      d2 += (a[v] - b[v]) ** 2;
      b2 += b[v] ** 2;
    }
    rel.push(Math.sqrt(d2 / b2));
    agree += argmax(a, t * nVocab, nVocab) === argmax(b, t * nVocab, nVocab);
  }
  const worst = rel.reduce((w, r, t) => (r > rel[w] ? t : w), 0);
  return { rel, worst, maxRel: rel[worst], meanRel: rel.reduce((s, r) => s + r, 0) / nTokens, agree: agree / nTokens };
}

const describe = (e) => `${e.name} (${e.arch}, ${e.vocab} vocabulary, ${e.variant}: ${e.types.join(" ")})`;

before(() => {
  // tests/run.sh has made them already; this makes the file runnable on its own after `make`.
  if (existsSync(join(B, "mkmodel")) && !existsSync(TINY)) run("bash", ["tools/make-models.sh", B], 300_000);
});

// ---- the oracle side (independent of the engine) -----------------------------------------------

test("the architecture test models exist (tools/make-arch-models.sh)", () => {
  assert.ok(manifest, `${MANIFEST} missing: run bash tools/make-arch-models.sh`);
  assert.ok(manifest.length >= 32, `only ${manifest.length} files in the manifest`);
});

test("every common GGUF weight type appears in some tensor of some file", { skip: !manifest }, () => {
  const seen = new Set(manifest.flatMap((e) => e.types));
  assert.deepEqual(ALL_TYPES.filter((t) => !seen.has(t)), [], "types missing from the test files");
  for (const [arch, vocab] of [["llama", "llama-bpe"], ["llama", "llama-spm"], ["qwen2", "qwen2"], ["qwen3", "llama-spm"]])
    assert.ok(manifest.some((e) => e.arch === arch && e.vocab === vocab), `no ${arch} file with the ${vocab} vocabulary`);
  assert.ok(manifest.some((e) => e.rope_freqs) && manifest.some((e) => e.arch === "llama" && !e.rope_freqs));
  assert.ok(manifest.some((e) => e.arch === "qwen2" && e.tied) && manifest.some((e) => e.arch === "qwen2" && !e.tied));
  assert.ok(manifest.some((e) => e.arch === "llama" && !e.tied));
  for (const [arch, vocab] of [["gemma", "llama-spm"], ["phi2", "gpt-2"], ["bitnet", "llama-bpe"]])
    assert.ok(manifest.some((e) => e.arch === arch && e.vocab === vocab && !e.ref_only), `no ${arch} file compared with llama.cpp`);
  // llama.cpp's bitnet always runs SiLU: only files that declare silu can be compared with it.
  for (const e of manifest.filter((x) => x.arch === "bitnet"))
    assert.equal(!e.ref_only, e.keys["bitnet.hidden_activation"] === "silu", `${e.name}: ref_only must match the activation`);
});

for (const e of withOracle) {
  test(`llama.cpp loads ${describe(e)}: finite logits of a sane size`, { timeout: ORACLE_TIMEOUT_MS + 10_000 }, (t) => {
    assert.ok(existsSync(e.path), `${e.path} missing`);
    const { tokens, logits, nVocab } = oracle(e);
    let s2 = 0, peaked = 0;
    for (let i = 0; i < logits.length; i++) {
      assert.ok(Number.isFinite(logits[i]), `non-finite logit at position ${Math.floor(i / nVocab)}`);
      s2 += logits[i] ** 2;
    }
    for (let p = 0; p < tokens.length; p++) { // softmax's largest probability, per position
      const row = logits.subarray(p * nVocab, (p + 1) * nVocab);
      const m = row[argmax(row, 0, nVocab)];
      let z = 0;
      for (const v of row) z += Math.exp(v - m);
      peaked += 1 / z > 0.9999;
    }
    const rms = Math.sqrt(s2 / logits.length);
    if (e.harness) return;
    assert.ok(rms > 1 && rms < 10, `logits' RMS ${rms.toFixed(3)}: the weights are badly scaled`);
    assert.ok(peaked < tokens.length / 2, `softmax saturated at ${peaked}/${tokens.length} positions`);
    t.diagnostic(`${tokens.length} tokens x ${nVocab}, logits RMS ${rms.toFixed(2)}`);
  });
}

test("llama.cpp's logits depend on rope_freqs.weight (llama3-rf-f16 vs llama3-f16: same other weights)",
  { skip: !(byName.has("llama3-rf-f16") && byName.has("llama3-f16")) }, (t) => {
    const a = oracle(byName.get("llama3-rf-f16")), b = oracle(byName.get("llama3-f16"));
    assert.deepEqual(a.tokens, b.tokens);
    const c = compare(a.logits, b.logits, a.tokens.length, a.nVocab);
    assert.ok(c.meanRel > 0.1, `rope_freqs.weight changes the logits by only ${c.meanRel.toFixed(3)}`);
    t.diagnostic(`relative RMS: mean ${c.meanRel.toFixed(3)}, max ${c.maxRel.toFixed(3)}`);
  });

test("llama.cpp: each quantised file stays near its F32/F16 base, and is not identical to it", { skip: !manifest }, (t) => {
  const notes = [];
  for (const e of withOracle.filter((x) => !x.harness && x.base !== x.file && byName.has(x.base.replace(/\.gguf$/, "")))) {
    const a = oracle(e), b = oracle(byName.get(e.base.replace(/\.gguf$/, "")));
    const c = compare(a.logits, b.logits, a.tokens.length, a.nVocab);
    assert.ok(c.meanRel > 1e-4 && (FAR_FROM_BASE.has(e.variant) || c.meanRel < 0.4),
      `${e.name} vs ${e.base}: relative RMS ${c.meanRel.toFixed(4)}`);
    notes.push(`${e.variant} ${c.meanRel.toFixed(3)}`);
  }
  t.diagnostic(`relative RMS against the base: ${notes.join(", ")}`);
});

// ---- the engine ---------------------------------------------------------------------------------

let outId = 0;
for (const e of withOracle) {
  for (const backend of BACKENDS) {
    test(`onebit --backend ${backend} vs llama.cpp: ${describe(e)}`, { timeout: ONEBIT_TIMEOUT_MS + ORACLE_TIMEOUT_MS }, (t) => {
      assert.ok(existsSync(ONEBIT), `${ONEBIT} missing: run make`);
      const { tokens, logits: theirs, nVocab } = oracle(e);
      const out = join(tmp, `onebit-${outId++}.f32`);
      const r = run(ONEBIT, ["logits", "-m", e.path, "--tokens", tokens.join(","), "--out", out, "--backend", backend],
        ONEBIT_TIMEOUT_MS, true);
      if (r.status !== 0)
        assert.fail(`${e.name} [${backend}]: onebit exited ${r.status}: ${r.stderr.trim().split("\n").slice(-2).join(" | ")}`);
      const ours = readF32(out);
      assert.equal(ours.length, theirs.length, `${e.name} [${backend}]: ${ours.length} logits, llama.cpp has ${theirs.length}`);
      const c = compare(ours, theirs, tokens.length, nVocab);
      assert.ok(c.nonFinite === undefined, `${e.name} [${backend}]: non-finite logit at position ${c.nonFinite}`);
      const bad = c.rel.filter((x) => x > REL_TOL).length;
      const summary = `relative RMS mean ${c.meanRel.toFixed(4)}, worst ${c.maxRel.toFixed(4)} at position ${c.worst}; ` +
        `top-1 agrees at ${(100 * c.agree).toFixed(1)}%`;
      t.diagnostic(summary);
      assert.ok(bad === 0, `${e.name} [${backend}]: ${bad}/${tokens.length} positions over ${REL_TOL} (${summary})`);
      assert.ok(c.agree >= TOP1_MIN, `${e.name} [${backend}]: top-1 agreement below ${100 * TOP1_MIN}% (${summary})`);
    });
  }
}

// ---- the scalar path against the float64 reference ---------------------------------------------
// tests/ref_forward.c decodes every type and applies every family's flags on its own, in double:
// the scalar backend (the specification of the arithmetic) must agree within 1e-4 relative RMS at
// every position, on every file, whatever llama.cpp's own rounding.
const REF = join(B, "ref_forward");
for (const e of entries) {
  test(`onebit --backend scalar vs the float64 reference: ${describe(e)}`, { timeout: 2 * ONEBIT_TIMEOUT_MS }, (t) => {
    assert.ok(existsSync(REF), `${REF} missing: run make`);
    const tokens = tokensOf(e);
    const ours = join(tmp, `onebit-${outId++}.f32`), ref = join(tmp, `ref-${outId++}.f32`);
    let r = run(ONEBIT, ["logits", "-m", e.path, "--tokens", tokens.join(","), "--out", ours, "--backend", "scalar"], ONEBIT_TIMEOUT_MS, true);
    assert.equal(r.status, 0, `${e.name}: onebit: ${r.stderr}`);
    r = run(REF, ["-m", e.path, "--tokens", tokens.join(","), "--out", ref], ONEBIT_TIMEOUT_MS, true);
    assert.equal(r.status, 0, `${e.name}: ref_forward: ${r.stderr}`);
    const a = readF32(ours), b = readF32(ref);
    const nVocab = a.length / tokens.length;
    const c = compare(a, b, tokens.length, nVocab);
    t.diagnostic(`relative RMS mean ${c.meanRel.toExponential(2)}, worst ${c.maxRel.toExponential(2)}`);
    assert.ok(c.maxRel <= 1e-4, `${e.name}: relative RMS ${c.maxRel} at position ${c.worst}`);
  });
}

const bitnetFiles = entries.filter((e) => e.arch === "bitnet");
test("onebit info names BitNet's activation: SiLU where the file says silu, ReLU² where it has no key",
  { skip: bitnetFiles.length === 0 }, () => {
  for (const e of bitnetFiles) {
    const r = run(ONEBIT, ["info", "-m", e.path], ONEBIT_TIMEOUT_MS);
    const want = e.keys["bitnet.hidden_activation"] === "silu" ? "gated SiLU" : "gated ReLU\u00b2";
    assert.match(r.stdout, new RegExp(`family:.*BitNet.*${want}`), `${e.name}: ${r.stdout}`);
  }
});
