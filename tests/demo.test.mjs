// Golden tests of the bundled demo model (models/demo.gguf): exact greedy text on every native
// backend, and recognisable English from sampling. The expected strings come from the scalar
// reference backend; a fast backend that drifts changes a near-tie and fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";

const ONEBIT = "build/onebit";
const MODEL = "models/demo.gguf";

// Every command runs under a timeout; one that does not finish fails naming itself.
function timed(cmd, args, opts, ms) {
  try {
    return execFileSync(cmd, args, { ...opts, timeout: ms });
  } catch (e) {
    if (e.code === "ETIMEDOUT") throw new Error(`${cmd} ${args.join(" ")} did not finish within ${ms / 1000} s: killed`);
    throw e;
  }
}

function run(args) {
  return timed(ONEBIT, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], killSignal: "SIGKILL" }, 120_000);
}

const GOLDEN = [
  ["And God said", "And God said unto him, I will not go with thee, and I"],
];

for (const backend of ["scalar", "cpu"]) {
  test(`demo model: greedy text is exact on the ${backend} backend`, () => {
    for (const [prompt, expect] of GOLDEN) {
      const out = run(["run", "-m", MODEL, "--backend", backend, "--raw", "--greedy", "-n", "12", "-p", prompt]);
      assert.equal(out.trimEnd(), expect);
    }
  });
}

// The WebAssembly engine: its CPU path and WebGPU (Dawn on SwiftShader here) must agree too.
const SWIFTSHADER = "/usr/lib/chromium/vk_swiftshader_icd.json";
for (const [name, flag] of [["wasm CPU", "--cpu"], ["WebGPU", "--gpu"]]) {
  test(`demo model: greedy text is exact on the ${name} path of the wasm engine`, () => {
    for (const [prompt, expect] of GOLDEN) {
      // SIGTERM: web/cli.mjs passes it on to the child process it runs itself in.
      const out = timed("node", ["web/cli.mjs", "run", "-m", MODEL, flag, "--raw", "--temp", "0", "-n", "12", "-p", prompt], {
        encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER }, killSignal: "SIGTERM",
      }, 300_000);
      assert.equal(out.trimEnd(), expect); // --raw echoes the prompt, as `onebit run --raw` does
    }
  });
}

test("demo model: sampled continuation is English in the style of the corpus", () => {
  const out = run(["run", "-m", MODEL, "--raw", "--temp", "0.8", "--seed", "7", "-n", "40", "-p", "And it came to pass"]);
  const words = out.toLowerCase().match(/[a-z]+/g) ?? [];
  assert.ok(words.length >= 20, `too few words: ${out}`);
  const common = new Set(["the", "and", "of", "unto", "that", "he", "to", "in", "his", "lord", "shall", "i", "a", "they", "said", "for", "him", "them", "not", "is", "be", "god", "with", "thou", "all", "was", "it", "my", "thy", "which", "their", "ye", "me", "came", "pass", "when", "were", "her", "by", "from", "out", "this", "up", "as", "upon", "man", "king", "israel", "will", "there", "have", "are", "thee", "hath", "children", "so", "then", "people", "on", "land", "house", "son", "sons", "day", "went", "also", "let", "an", "before", "against", "had", "at", "but", "or", "no", "come", "go", "saith"]);
  const hits = words.filter((w) => common.has(w)).length;
  assert.ok(hits / words.length > 0.4, `does not read like the corpus (${hits}/${words.length}): ${out}`);
});

test("demo model: chat answers end at <|im_end|> within the limit", () => {
  const out = run(["run", "-m", MODEL, "--no-think", "--seed", "3", "-n", "60", "-p", "Continue: In the beginning God created"]);
  assert.ok(out.trim().length > 0);
  assert.ok(!out.includes("<|im_end|>") && !out.includes("<|im_start|>"), out);
});
