// quantize.test.mjs — `onebit quantize` against llama.cpp's own llama-quantize.
//
// A small random-weight Llama model in F32 (tools/gen-arch-model.py: llama.cpp's gguf-py, a real
// SentencePiece vocabulary) is quantised by both tools: with --pure, llama-quantize's output must
// be the same file byte for byte for f16, bf16, q8_0, q4_0, q1_0 and q2_0 (ggml's reference
// quantisers are deterministic). Q4_K has onebit's own search: its relative RMS error against the
// F32 weights (decoded by gguf-py) must not exceed llama.cpp's by more than 2%. The quantised file
// must run. Then the options (--tensor-type, --output-type, fallbacks) and bad input: unknown
// types, unreadable and malformed input, OUT being IN, an existing OUT, quantised input, an
// unwritable folder: each a clear message, its exit code, and no file left behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const ONEBIT = join(root, "build", "onebit");
const LLAMA_BIN = process.env.ONEBIT_LLAMA_BIN || join(root, "build", "llama-bin");
const QUANTIZE = join(LLAMA_BIN, "llama-quantize");
const PY = "/usr/bin/python3";
const tmp = mkdtempSync(join(tmpdir(), "onebit-quantize-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

function run(cmd, args, { timeout = 180_000, env = {} } = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", timeout, env: { ...process.env, ...env } });
  assert.equal(r.error, undefined, `${cmd} ${args.join(" ")}: ${r.error} (timeout ${timeout / 1000} s)`);
  assert.equal(r.signal, null, `${cmd} died of ${r.signal}: ${r.stderr}`);
  return r;
}
const onebit = (...a) => run(ONEBIT, a);

let llamaSrc;
const F32 = join(tmp, "llama-f32.gguf");

test("set-up: an F32 model written by llama.cpp's gguf-py", () => {
  assert.ok(existsSync(QUANTIZE), `${QUANTIZE} is missing: tools/make-arch-models.sh builds it (tests/run.sh runs it)`);
  const src = run("bash", ["tools/llama-src.sh"]);
  assert.equal(src.status, 0, src.stderr);
  llamaSrc = src.stdout.trim();
  // n_ff 640: rows of ffn_down are a multiple of 128 (q1_0) but not of 256 (q4_K's block)
  const g = run(PY, ["tools/gen-arch-model.py", "--llama-src", llamaSrc, "--arch", "llama", "--vocab", "llama-spm",
    "--n-layer", "2", "--n-embd", "256", "--n-ff", "640", "--n-head", "4", "--n-head-kv", "2", "--untied",
    "--seed", "7", "-o", F32]);
  assert.equal(g.status, 0, g.stderr);
});

for (const type of ["F16", "BF16", "Q8_0", "Q4_0", "Q1_0", "Q2_0"]) {
  test(`${type}: the same bytes as llama-quantize --pure`, () => {
    const ours = join(tmp, `ob-${type}.gguf`), theirs = join(tmp, `ll-${type}.gguf`);
    const q = run(QUANTIZE, ["--pure", F32, theirs, type, "2"]);
    assert.equal(q.status, 0, q.stderr);
    const o = onebit("quantize", F32, ours, type, "-t", "2");
    assert.equal(o.status, 0, o.stderr);
    assert.match(o.stderr, /bits per weight overall/);
    const a = readFileSync(ours), b = readFileSync(theirs);
    assert.equal(a.length, b.length, "file sizes differ");
    const at = a.findIndex((v, i) => v !== b[i]);
    assert.equal(at, -1, `first difference at byte ${at}`);
  });
}

test("Q4_K: no more error than llama.cpp's Q4_K on the same weights", () => {
  const ours = join(tmp, "ob-Q4_K.gguf"), theirs = join(tmp, "ll-Q4_K.gguf");
  assert.equal(run(QUANTIZE, ["--pure", F32, theirs, "Q4_K", "2"]).status, 0);
  const o = onebit("quantize", F32, ours, "q4_K", "-t", "2");
  assert.equal(o.status, 0, o.stderr);
  // ffn_down's rows (640) are not a multiple of 256: said, and written as q8_0
  assert.match(o.stderr, /blk\.0\.ffn_down\.weight: rows of 640 are not a multiple of q4_K's block of 256: q8_0 instead/);
  const py = `
import sys, numpy as np
sys.path.insert(0, sys.argv[1] + '/gguf-py')
import gguf
from gguf.quants import dequantize
src = {t.name: np.array(t.data, dtype=np.float64).reshape(-1) for t in gguf.GGUFReader(sys.argv[2]).tensors}
for path in sys.argv[3:]:
    num = den = 0.0; n = 0
    for t in gguf.GGUFReader(path).tensors:
        if t.tensor_type != gguf.GGMLQuantizationType.Q4_K: continue
        y = dequantize(t.data, t.tensor_type).reshape(-1).astype(np.float64); x = src[t.name]
        num += float(((x - y) ** 2).sum()); den += float((x ** 2).sum()); n += 1
    print(n, (num / den) ** 0.5)
`;
  const r = run(PY, ["-c", py, llamaSrc, F32, theirs, ours]);
  assert.equal(r.status, 0, r.stderr);
  const [[nl, el], [no, eo]] = r.stdout.trim().split("\n").map((l) => l.split(" ").map(Number));
  assert.ok(no >= 10 && no === nl, `Q4_K tensors: llama.cpp ${nl}, onebit ${no}`);
  assert.ok(eo > 0.02 && eo < 0.2, `onebit's Q4_K error ${eo} is not that of 4-bit weights`);
  assert.ok(eo <= el * 1.02, `onebit's Q4_K relative RMS error ${eo.toFixed(5)} > llama.cpp's ${el.toFixed(5)} x 1.02`);
  // and the file runs
  const g = onebit("run", "-m", ours, "-p", "Hello", "--raw", "-n", "4", "--greedy");
  assert.equal(g.status, 0, g.stderr);
});

function types(path) {
  const r = onebit("info", "-m", path, "--verbose");
  assert.equal(r.status, 0, r.stderr);
  const out = {};
  for (const m of r.stdout.matchAll(/^\s+((?:blk\.\d+\.)?[a-z_]+\.(?:weight|bias))\s+(\w+)/gm)) out[m[1]] = m[2];
  return out;
}

test("--tensor-type, --output-type and --embd-type choose per tensor; norms stay F32", () => {
  const out = join(tmp, "mix.gguf");
  const r = onebit("quantize", F32, out, "q1_0", "--tensor-type", "attn_(q|k)=q8_0", "--tensor-type", "ffn_down=copy",
    "--output-type", "q4_0", "--embd-type", "f16", "-q");
  assert.equal(r.status, 0, r.stderr);
  const t = types(out);
  assert.equal(t["blk.0.attn_q.weight"], "q8_0");
  assert.equal(t["blk.1.attn_k.weight"], "q8_0");
  assert.equal(t["blk.0.attn_v.weight"], "q1_0");
  assert.equal(t["blk.0.ffn_down.weight"], "f32");
  assert.equal(t["output.weight"], "q4_0");
  assert.equal(t["token_embd.weight"], "f16");
  assert.equal(t["blk.0.attn_norm.weight"], "f32");
  assert.equal(r.stderr.split("\n").filter((l) => /^\[/.test(l)).length, 0, "-q prints no line per tensor");
});

test("bad input: clear messages, exit codes, nothing left behind", () => {
  const dir = join(tmp, "bad");
  rmSync(dir, { recursive: true, force: true });
  run("mkdir", ["-p", dir]);
  const out = join(dir, "out.gguf");
  let r = onebit("quantize", F32, out, "q3_xyz");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown type 'q3_xyz'/);
  r = onebit("quantize", join(dir, "missing.gguf"), out, "q8_0");
  assert.equal(r.status, 3);
  assert.match(r.stderr, /cannot open .*missing\.gguf.*No such file/);
  writeFileSync(join(dir, "junk.gguf"), "GGUF this is not a model");
  r = onebit("quantize", join(dir, "junk.gguf"), out, "q8_0");
  assert.equal(r.status, 4);
  r = onebit("quantize", F32, F32, "q8_0", "--force");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /is the input file/);
  writeFileSync(out, "precious");
  r = onebit("quantize", F32, out, "q8_0");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /exists \(--force replaces it\)/);
  assert.equal(readFileSync(out, "utf8"), "precious", "an existing OUT is left alone");
  r = onebit("quantize", join(tmp, "ob-Q4_0.gguf"), join(dir, "requant.gguf"), "q1_0");
  assert.equal(r.status, 4);
  assert.match(r.stderr, /already quantised \(q4_0\).*--allow-requantize/);
  r = onebit("quantize", join(tmp, "ob-Q8_0.gguf"), join(dir, "requant.gguf"), "q4_0", "--allow-requantize", "-q");
  assert.equal(r.status, 0, r.stderr);
  r = onebit("quantize", F32, out, "q8_0", "--tensor-type", "([=q8_0");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad regular expression/);
  r = onebit("quantize", F32, out);
  assert.equal(r.status, 2);
  if (process.getuid?.() !== 0) { // root writes anywhere
    const ro = join(dir, "ro");
    run("mkdir", ["-p", ro]);
    chmodSync(ro, 0o555);
    r = onebit("quantize", F32, join(ro, "x.gguf"), "q8_0");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot create/);
  }
  const leftovers = readdirSync(dir).filter((f) => f.includes(".tmp-"));
  assert.deepEqual(leftovers, [], "temporary files left behind");
});
