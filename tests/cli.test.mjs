// cli.test.mjs — the `onebit` command on bad input: exit codes and messages.
//
// Writes malformed model files to a temporary directory and checks that build/onebit refuses each
// with exit code 4 (invalid or unsupported model) and a one-line reason on stderr; that a missing
// or unreadable file gives 3 and usage errors (unknown option, missing -m, missing value) give 2;
// and that --help succeeds. The GGUF bytes are written by hand here, independently of the C
// writer. Not a test of generation (see logits.test.mjs and chat.test.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readSync, closeSync, rmSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const ONEBIT = join(root, "build", "onebit");
const TINY = join(root, "build", "models", "tiny.gguf");
const tmp = mkdtempSync(join(tmpdir(), "onebit-cli-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

function onebit(...args) {
  assert.ok(existsSync(ONEBIT), `${ONEBIT} is missing: run make first`);
  const r = spawnSync(ONEBIT, args, { encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] });
  assert.equal(r.error, undefined, `could not run onebit: ${r.error}`);
  assert.equal(r.signal, null, `onebit died of ${r.signal}; stderr: ${r.stderr}`);
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// ---- hand-written GGUF bytes (little-endian) ----------------------------------------------------

const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
const str = (s) => { const b = Buffer.from(s, "utf8"); return Buffer.concat([u64(b.length), b]); };
const GGUF_STRING = 8, GGUF_UINT32 = 4, GGML_F32 = 0;

function gguf({ version = 3, kv = [], tensors = [], data = Buffer.alloc(0) } = {}) {
  const parts = [Buffer.from("GGUF"), u32(version), u64(tensors.length), u64(kv.length)];
  for (const [key, type, value] of kv) {
    parts.push(str(key), u32(type), type === GGUF_STRING ? str(value) : u32(value));
  }
  for (const t of tensors) {
    parts.push(str(t.name), u32(t.ne.length), ...t.ne.map(u64), u32(t.type), u64(t.offset));
  }
  let head = Buffer.concat(parts);
  if (tensors.length) head = Buffer.concat([head, Buffer.alloc((32 - (head.length % 32)) % 32)]);
  return Buffer.concat([head, data]);
}

function file(name, bytes) {
  const p = join(tmp, name);
  writeFileSync(p, bytes);
  return p;
}

const arch = (a) => ["general.architecture", GGUF_STRING, a];

// Each: name, bytes, a pattern the message must match.
const malformed = [
  ["empty.gguf", Buffer.alloc(0), /too small|truncated/i],
  ["text.gguf", Buffer.from("this is not a model file, just some text\n"), /magic/i],
  ["version1.gguf", gguf({ version: 1, kv: [arch("qwen3")] }), /version/i],
  ["bigendian.gguf", Buffer.concat([Buffer.from("GGUF"), Buffer.from([0, 0, 0, 3]), u64(0), u64(0)]), /endian/i],
  ["no-arch.gguf", gguf({ kv: [["general.name", GGUF_STRING, "x"]] }), /general\.architecture/],
  ["mamba.gguf", gguf({ kv: [arch("mamba")] }), /mamba.*not supported/i],
  ["llama.gguf", gguf({ kv: [arch("llama")] }), /llama\.embedding_length/i],
  ["no-hparams.gguf", gguf({ kv: [arch("qwen3")] }), /qwen3\.embedding_length/],
  ["huge-count.gguf", Buffer.concat([Buffer.from("GGUF"), u32(3), u64(2n ** 62n), u64(0)]), /tensor count/i],
  ["bad-alignment.gguf", gguf({ kv: [arch("qwen3"), ["general.alignment", GGUF_UINT32, 48]] }), /alignment/i],
  [
    "no-data.gguf",
    gguf({ kv: [arch("qwen3")], tensors: [{ name: "token_embd.weight", ne: [128, 4], type: GGML_F32, offset: 0 }] }),
    /past the end|truncated/i,
  ],
  [
    "bad-shape.gguf",
    gguf({
      kv: [arch("qwen3")],
      tensors: [{ name: "t", ne: [2 ** 40, 2 ** 40], type: GGML_F32, offset: 0 }],
      data: Buffer.alloc(64),
    }),
    /shape/i,
  ],
];

function expectInvalid(code, err, re) {
  assert.equal(code, 4, `exit code ${code}, stderr: ${err}`);
  assert.match(err, /^onebit: /, err);
  assert.match(err, re);
  assert.ok(err.trim().split("\n").length <= 2, `expected a short message, got: ${err}`);
}

for (const [name, bytes, re] of malformed) {
  test(`invalid model ${name}: run and info exit 4 with a reason`, () => {
    const p = file(name, bytes);
    let r = onebit("run", "-m", p, "-p", "hello", "-n", "2");
    expectInvalid(r.code, r.err, re);
    assert.ok(r.err.includes(p), `the message should name the file: ${r.err}`);
    // info inspects what it can: a readable container is listed on stdout with the reason it
    // cannot run; an unreadable one is refused on stderr. Either way the exit code is 4.
    r = onebit("info", "-m", p);
    assert.equal(r.code, 4, `info: exit ${r.code}, stderr: ${r.err}`);
    assert.match(r.out + r.err, re);
  });
}

test("a truncated copy of the tiny test model exits 4", (t) => {
  if (!existsSync(TINY)) return t.skip("build/models/tiny.gguf not generated (tools/make-models.sh)");
  const size = statSync(TINY).size;
  const fd = openSync(TINY, "r");
  const head = Buffer.alloc(Math.min(size, 1 << 20));
  readSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  const p = file("tiny-truncated.gguf", head.subarray(0, Math.floor(head.length / 2)));
  const r = onebit("run", "-m", p, "-p", "hello", "-n", "2");
  expectInvalid(r.code, r.err, /past the end|truncated/i);
});

test("a missing model file exits 3", () => {
  const p = join(tmp, "does-not-exist.gguf");
  for (const cmd of ["run", "info"]) {
    const r = onebit(cmd, "-m", p, "-p", "hi");
    assert.equal(r.code, 3, `${cmd}: exit ${r.code}, stderr: ${r.err}`);
    assert.match(r.err, /does-not-exist\.gguf/);
    assert.match(r.err, /no such file/i);
  }
});

test("a directory given as the model exits 3", () => {
  const r = onebit("info", "-m", tmp);
  assert.equal(r.code, 3, r.err);
  assert.match(r.err, /not a regular file/);
});

test("usage errors exit 2 with a message", () => {
  const cases = [
    [["run", "-p", "hi"], /no model/i],
    [["info"], /no model/i],
    [["run", "-m", join(tmp, "x.gguf"), "-p", "hi", "--no-such-option"], /unknown option '--no-such-option'/],
    [["run", "--bogus"], /unknown option/],
    [["run", "-m"], /needs a value/],
    [["run", "-m", join(tmp, "x.gguf"), "-p", "hi", "-n", "many"], /-n expects an integer/],
    [["frobnicate"], /./],
    [[], /usage/i],
  ];
  for (const [args, re] of cases) {
    const r = onebit(...args);
    assert.equal(r.code, 2, `onebit ${args.join(" ")}: exit ${r.code}, stderr: ${r.err}`);
    assert.match(r.err, re, `onebit ${args.join(" ")}`);
  }
});

test("--help exits 0 and prints usage", () => {
  let r = onebit("--help");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /usage: onebit COMMAND/);
  r = onebit("run", "--help");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /usage: onebit run/);
  assert.match(r.out, /--model/);
  r = onebit("info", "--help");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /usage: onebit info/);
});

// ---- a newcomer's first minutes: each rough edge of the CLI, by exit code and message ----------

const DEMO = join(root, "models", "demo.gguf");
const needModel = (t, p) => (existsSync(p) ? false : (t.skip(`${p} is missing`), true));

test("sampling and context values out of range exit 2 naming the range (the library's one check)", (t) => {
  if (needModel(t, TINY)) return;
  const cases = [
    [["--temp", "-1"], /--temp: temperature must be a number between 0 and 2, got -1/],
    [["--temp", "9"], /temperature must be a number between 0 and 2/],
    [["--top-p", "5"], /--top-p: top_p must be a number between 0 and 1, got 5/],
    [["--min-p", "-0.5"], /min_p must be a number between 0 and 1/],
    [["--top-k", "-2"], /top_k must be an integer between -1 and/],
    [["--repeat-penalty", "0"], /repeat_penalty must be a number between 0.01 and 100/],
    [["--presence-penalty", "3"], /presence_penalty must be a number between -2 and 2/],
    [["--frequency-penalty", "-3"], /frequency_penalty must be a number between -2 and 2/],
    [["--repeat-last-n", "-2"], /repeat_last_n must be an integer between -1 and/],
    [["-n", "-3"], /-n: max_tokens must be an integer between 0 and \d+ \(0: until the context is full\)/],
    [["-c", "-1"], /-c: n_ctx must be an integer between 0 and 4194304/],
    [["-c", "99999999"], /n_ctx must be an integer between 0 and 4194304/],
  ];
  for (const [flags, re] of cases) {
    const r = onebit("run", "-m", TINY, "-p", "hi", ...flags);
    assert.equal(r.code, 2, `${flags.join(" ")}: exit ${r.code}, stderr: ${r.err}`);
    assert.match(r.err, re, flags.join(" "));
    assert.equal(r.out, "", "nothing on stdout");
  }
});

test("--help says what -n 0, -c 0 and -t 0 mean and gives the sampling ranges", () => {
  const r = onebit("run", "--help");
  assert.equal(r.code, 0);
  assert.match(r.out, /0 \(the default\) = no limit/);
  assert.match(r.out, /default or 0: physical cores/);
  assert.match(r.out, /--temp T \(0\.\.2/);
  assert.match(r.out, /--top-p P \(0\.\.1\)/);
});

test("an empty prompt is refused in chat and --raw mode alike", (t) => {
  if (needModel(t, TINY)) return;
  for (const extra of [[], ["--raw"]]) {
    const r = onebit("run", "-m", TINY, "-p", "", ...extra);
    assert.equal(r.code, 2, `${extra}: exit ${r.code}, ${r.err}`);
    assert.match(r.err, /the prompt is empty/);
  }
});

test("--raw with a prompt longer than the context fails before echoing anything (exit 5)", (t) => {
  if (needModel(t, TINY)) return;
  const r = onebit("run", "-m", TINY, "--raw", "-c", "16", "-p", "word ".repeat(60));
  assert.equal(r.code, 5, r.err);
  assert.equal(r.out, "", "the prompt must not be echoed");
  assert.match(r.err, /the prompt is \d+ tokens but the context holds 16: use a larger -c/);
});

test("the empty think block is not printed; a full context is said on stderr", (t) => {
  if (needModel(t, DEMO)) return;
  let r = onebit("run", "-m", DEMO, "-p", "Who are you?", "--greedy", "-n", "12");
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.trim().length > 0, "some answer");
  assert.doesNotMatch(r.out, /<think>|<\/think>/);
  r = onebit("run", "-m", DEMO, "-p", "hi", "-c", "24", "--greedy");
  assert.equal(r.code, 0, r.err);
  assert.doesNotMatch(r.out, /<think>/);
  assert.match(r.err, /stopped: the context of 24 tokens is full/);
  // -c 10: the prompt leaves no room for any answer: said, and exit 5 (no empty think block)
  r = onebit("run", "-m", DEMO, "-p", "hi", "-c", "10");
  assert.equal(r.code, 5, r.err);
  assert.doesNotMatch(r.out, /think/);
  assert.match(r.err, /context of 10 tokens is full/);
  assert.match(r.err, /left no room for an answer/);
});

test("chat greets, answers without the think block, and ends its output with a newline", (t) => {
  if (needModel(t, DEMO)) return;
  const r = spawnSync(ONEBIT, ["chat", "-m", DEMO, "--greedy", "-n", "8"], { input: "Hello\n", encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^onebit chat: .*Type a message.*\/exit or Ctrl-D quits/m);
  assert.doesNotMatch(r.stdout, /<think>/);
  assert.ok(r.stdout.endsWith("\n"), JSON.stringify(r.stdout));
});

test("bench: threads shown as used, -t 0 accepted, --pp capped at the context, runs reported", (t) => {
  if (needModel(t, TINY)) return;
  let r = onebit("bench", "-m", TINY, "--pp", "100000");
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /--pp 100000 .* need 100001 context positions but the model's training context holds \d+/);
  r = onebit("bench", "-m", TINY, "--pp", "8", "--tg", "2", "-r", "1", "-t", "0", "--json");
  assert.equal(r.code, 0, r.err);
  assert.ok(JSON.parse(r.out).threads >= 1, r.out);
  assert.match(r.err, /pp8 run 1\/1: [\d.]+ tok\/s/);
  r = onebit("bench", "-m", TINY, "--pp", "8", "--tg", "2", "-r", "1", "-t", "1");
  assert.match(r.out, /\| 1 \| pp8 \|/);
});

test("a truncated file says 'truncated'", (t) => {
  if (needModel(t, TINY)) return;
  const fd = openSync(TINY, "r");
  for (const cut of [64, 4096, 1 << 16]) {
    const head = Buffer.alloc(cut);
    readSync(fd, head, 0, cut, 0);
    const r = onebit("info", "-m", file(`cut-${cut}.gguf`, head));
    assert.equal(r.code, 4, r.err);
    assert.match(r.out + r.err, /truncated/i, `cut at ${cut}`);
  }
  closeSync(fd);
});

// ---- the Node CLI (web/cli.mjs) agrees with the native one -------------------------------------

const WASM_READY = existsSync(join(root, "build", "wasm", "onebit.wasm"));
function nodeCli(args, env = {}) {
  const r = spawnSync(process.execPath, [join(root, "web", "cli.mjs"), ...args], {
    encoding: "utf8", timeout: 120_000, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  assert.equal(r.error, undefined, `could not run web/cli.mjs: ${r.error}`);
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("node web/cli.mjs: --help exits 0, usage errors exit 2 like the native CLI", () => {
  for (const args of [["--help"], ["run", "--help"]]) {
    const r = nodeCli(args);
    assert.equal(r.code, 0, `${args}: ${r.err}`);
    assert.match(r.out, /usage: node web\/cli\.mjs/);
    assert.match(r.out, /0 = no limit/);
  }
  for (const [args, re] of [[[], /usage/], [["run", "-p", "hi"], /no model given/], [["run", "--bogus"], /unknown option '--bogus'/],
    [["run", "-m", "x.gguf", "-p", "hi", "-n", "many"], /-n expects an integer/], [["run", "-m", "x.gguf", "-p", ""], /the prompt is empty/],
    [["run", "-m", "x.gguf", "-p", "hi", "-n", "-3"], /max_tokens must be an integer between 0 and/]]) {
    const r = nodeCli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code}, ${r.err}`);
    assert.match(r.err, re);
  }
});

test("node web/cli.mjs: the same answer, defaults and range messages as build/onebit; no Dawn warnings", { skip: !WASM_READY && "make wasm first" }, (t) => {
  if (needModel(t, DEMO)) return;
  // chat mode by default, empty think block dropped: the same greedy answer as the native CLI
  const native = onebit("run", "-m", DEMO, "-p", "Who are you?", "--greedy", "-n", "8");
  const web = nodeCli(["run", "-m", DEMO, "-p", "Who are you?", "--greedy", "-n", "8", "--cpu"]);
  assert.equal(web.code, 0, web.err);
  assert.equal(web.out, native.out);
  // out-of-range sampling: the library's message, exit 2, as natively
  const bad = nodeCli(["run", "-m", DEMO, "-p", "hi", "--top-p", "5", "--cpu"]);
  assert.equal(bad.code, 2, bad.err);
  assert.match(bad.err, /top_p must be a number between 0 and 1, got 5/);
  // no GPU adapter (no Vulkan driver): the default falls back to the CPU and says so, without
  // Dawn's driver warnings; --gpu is an error (exit 4) that says what to do
  const noVk = { VK_ICD_FILENAMES: "/nonexistent.json", VK_DRIVER_FILES: "/nonexistent.json" };
  const auto = nodeCli(["run", "-m", DEMO, "-p", "Who are you?", "--greedy", "-n", "8"], noVk);
  assert.equal(auto.code, 0, auto.err);
  assert.equal(auto.out, native.out);
  assert.match(auto.err, /no WebGPU adapter: running on the CPU/);
  assert.doesNotMatch(auto.err, /vkCreateInstance|VK_ERROR|Warning:/);
  const gpu = nodeCli(["run", "-m", DEMO, "-p", "hi", "--gpu"], noVk);
  assert.equal(gpu.code, 4, gpu.err);
  assert.match(gpu.err, /--gpu: no WebGPU adapter: leave out --gpu to run on the CPU/);
  assert.doesNotMatch(gpu.err, /vkCreateInstance|Warning:/);
});
