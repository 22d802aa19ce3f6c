// arch-oracle.mjs — llama.cpp's logits for the generated architecture/weight-type test models.
//
// For each GGUF file FILE.gguf: a teacher-forced token list made with the file's own vocabulary
// (BOS when the vocabulary has one, an English sentence tokenized by llama.cpp, then fixed ids spread
// over the whole vocabulary by an LCG up to 24 tokens, so that every region of the embedding and
// output matrices is read), and llama.cpp's logits for it (tests/oracle/llama-logits.mjs). Writes
//   FILE.tokens.json   {"tokens": [...], "n_vocab": N, "text": "..."}
//   FILE.llama.f32     float32 little-endian logits [n_tokens][n_vocab]
// Fails when llama.cpp cannot load a file or returns a non-finite logit. Used by
// tools/make-arch-models.sh (the outputs are cached next to the models) and tests/arch-logits.test.mjs.
// Usage: node tests/oracle/arch-oracle.mjs [--out-dir DIR] FILE.gguf...   (default: next to each file)
import { writeFileSync, renameSync } from "node:fs";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { llamaLogits } from "./llama-logits.mjs";

export const N_TOKENS = 24;
export const TEXT = "The quick brown fox jumps over the lazy dog while the old cat sleeps in the warm sun.";

/** The token list for a loaded model: [bos] + tokenize(TEXT), filled with spread ids up to N_TOKENS. */
export function arch_tokens(model) {
    const nVocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
    const out = [];
    if (model.tokens.bos !== null && model.tokens.bos !== undefined) out.push(model.tokens.bos);
    out.push(...Array.from(model.tokenize(TEXT)).slice(0, 16));
    let x = 4242;
    while (out.length < N_TOKENS) {
        x = (x * 1103515245 + 12345) % 2147483648;
        out.push(Math.floor((x / 2147483648) * nVocab));
    }
    return { tokens: out, nVocab };
}

async function main(argv) {
    let outDir = null;
    if (argv[0] === "--out-dir") { outDir = argv[1]; argv = argv.slice(2); }
    const files = argv;
    if (files.length === 0) throw new Error("usage: arch-oracle.mjs [--out-dir DIR] FILE.gguf...");
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    for (const f of files) {
        const t0 = Date.now();
        const base = (outDir ? join(outDir, basename(f)) : f).replace(/\.gguf$/, "");
        const model = await llama.loadModel({ modelPath: f, gpuLayers: 0 });
        let tokens, nVocab, logits, n;
        try {
            ({ tokens, nVocab } = arch_tokens(model));
            ({ logits, nVocab: n } = await llamaLogits(f, tokens, { model }));
        } finally {
            await model.dispose();
        }
        if (n !== nVocab) throw new Error(`${f}: ${n} logits per position, the vocabulary has ${nVocab}`);
        let s2 = 0;
        for (let i = 0; i < logits.length; i++) {
            if (!Number.isFinite(logits[i])) throw new Error(`${f}: non-finite logit at position ${Math.floor(i / n)}`);
            s2 += logits[i] * logits[i];
        }
        const tmp = `.tmp.${process.pid}`;
        writeFileSync(base + ".tokens.json" + tmp, JSON.stringify({ tokens, n_vocab: nVocab, text: TEXT }) + "\n");
        writeFileSync(base + ".llama.f32" + tmp, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
        renameSync(base + ".tokens.json" + tmp, base + ".tokens.json");
        renameSync(base + ".llama.f32" + tmp, base + ".llama.f32");
        const rms = Math.sqrt(s2 / logits.length);
        console.log(`arch-oracle: ${f}: ${tokens.length} tokens x ${n} logits, rms ${rms.toFixed(3)}, ${Date.now() - t0} ms`);
    }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
    try {
        await main(process.argv.slice(2));
        process.exit(0);
    } catch (e) {
        console.error(`arch-oracle: ${e.message}`);
        process.exit(1);
    }
}
