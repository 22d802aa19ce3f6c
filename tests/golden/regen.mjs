// regen.mjs — writes tests/golden/tiny.json: llama.cpp's logits for build/models/tiny.gguf.
//
// Run through tests/golden/regen.sh, which rebuilds the model first. Kept small (well under 1 MB):
// the logits of a fixed token list at a fixed subset of vocabulary ids (every 297th id, the
// special tokens and each position's argmax), rounded to 1e-4, plus the full-vocabulary argmax
// of every position and the SHA-256 of the model file they belong to. Consumed by
// tests/logits.test.mjs; not a test itself.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { llamaLogits } from "../oracle/llama-logits.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const model = `${root}build/models/tiny.gguf`;
const out = `${root}tests/golden/tiny.json`;

// <|im_start|>user\n, then ids from a fixed LCG (the same generator as logits.test.mjs).
const tokens = [151644, 872, 198];
for (let x = 4242; tokens.length < 32; ) {
  x = (x * 1103515245 + 12345) % 2147483648;
  tokens.push(Math.floor((x / 2147483648) * 151936));
}

const { logits, nVocab } = await llamaLogits(model, tokens);
const argmax = tokens.map((_, t) => {
  let best = 0;
  for (let v = 1; v < nVocab; v++) if (logits[t * nVocab + v] > logits[t * nVocab + best]) best = v;
  return best;
});
const ids = new Set(argmax);
for (let v = 0; v < nVocab; v += 297) ids.add(v);
for (let v = 151643; v <= 151668; v++) ids.add(v);
const vocabIds = [...ids].sort((a, b) => a - b);

const golden = {
  about: "llama.cpp (node-llama-cpp 3.22.1, CPU, F32 KV cache) logits of build/models/tiny.gguf " +
    "(mkmodel --preset tiny --seed 1) at vocab_ids for each position of tokens; argmax over the " +
    "full vocabulary. Regenerate with: bash tests/golden/regen.sh",
  sha256: createHash("sha256").update(readFileSync(model)).digest("hex"),
  n_vocab: nVocab,
  tokens,
  vocab_ids: vocabIds,
  argmax,
  logits: tokens.map((_, t) => vocabIds.map((v) => Math.round(logits[t * nVocab + v] * 1e4) / 1e4)),
};
writeFileSync(out, JSON.stringify(golden) + "\n");
console.log(`wrote ${out}: ${tokens.length} positions x ${vocabIds.length} ids`);
