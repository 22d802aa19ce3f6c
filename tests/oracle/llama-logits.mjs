// llama-logits.mjs — the llama.cpp oracle: raw logits for every position of a token list.
//
// Runs llama.cpp (through node-llama-cpp, CPU build) on a GGUF file and writes float32
// little-endian logits [n_tokens][n_vocab], position-major: the same format as
// `onebit logits` and build/ref_forward. It is an independent implementation to compare
// against, not part of the engine. The KV cache is kept in F32 so that the oracle's own
// rounding stays small; llama.cpp still quantises activations to 8 bits for the 1-bit dot
// products, which is why comparisons against it use loose tolerances.
//
// CLI:    node tests/oracle/llama-logits.mjs -m FILE --tokens 1,2,3 --out FILE [--threads N]
// Module: import { llamaLogits } from "./llama-logits.mjs";
//         const { logits, nVocab } = await llamaLogits(modelPath, [1, 2, 3]);

import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

let llamaPromise = null;

async function getLlamaOnce() {
    if (!llamaPromise) {
        const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
        llamaPromise = getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    }
    return llamaPromise;
}

/**
 * Logits for every position of `tokens` (the prompt is evaluated from an empty context).
 * @returns {{logits: Float32Array, nVocab: number, nTokens: number}} logits[t * nVocab + v]
 */
export async function llamaLogits(modelPath, tokens, { threads = 0, model: loaded = null } = {}) {
    const llama = await getLlamaOnce();
    // `model`: a LlamaModel the caller loaded already (and disposes of), to save a second load
    const model = loaded ?? await llama.loadModel({ modelPath, gpuLayers: 0 });
    try {
        const n = tokens.length;
        const context = await model.createContext({
            contextSize: Math.max(64, n),
            batchSize: Math.max(1, n),
            sequences: 1,
            flashAttention: false,
            threads,
            experimentalKvCacheKeyType: "F32",
            experimentalKvCacheValueType: "F32",
        });
        try {
            const seq = context.getSequence();
            const input = tokens.map((t) => [t, { generateNext: { logits: true, options: { temperature: 0 } } }]);
            const out = await seq.controlledEvaluate(input);
            let nVocab = 0;
            let logits = null;
            for (let t = 0; t < n; t++) {
                const map = out[t]?.next?.logits;
                if (!map) throw new Error(`llama.cpp returned no logits for position ${t}`);
                if (logits === null) {
                    nVocab = map.size;
                    logits = new Float32Array(n * nVocab).fill(NaN);
                }
                if (map.size !== nVocab) throw new Error(`position ${t}: ${map.size} logits, expected ${nVocab}`);
                const row = logits.subarray(t * nVocab, (t + 1) * nVocab);
                for (const [tok, v] of map) {
                    if (tok < 0 || tok >= nVocab) throw new Error(`token id ${tok} out of range`);
                    row[tok] = v;
                }
            }
            for (let i = 0; i < logits.length; i++)
                if (Number.isNaN(logits[i])) throw new Error("llama.cpp left a logit unset");
            return { logits, nVocab, nTokens: n };
        } finally {
            await context.dispose();
        }
    } finally {
        if (!loaded) await model.dispose();
    }
}

function parseArgs(argv) {
    const args = { threads: 0 };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[i + 1];
        if (a === "-m" && v !== undefined) { args.model = v; i++; }
        else if (a === "--tokens" && v !== undefined) { args.tokens = v.split(",").map((s) => Number.parseInt(s, 10)); i++; }
        else if (a === "--out" && v !== undefined) { args.out = v; i++; }
        else if (a === "--threads" && v !== undefined) { args.threads = Number.parseInt(v, 10); i++; }
        else throw new Error(`unknown argument ${a}`);
    }
    if (!args.model || !args.tokens || !args.out || args.tokens.some((t) => !Number.isInteger(t) || t < 0))
        throw new Error("usage: llama-logits.mjs -m FILE --tokens 1,2,3 --out FILE [--threads N]");
    return args;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
    try {
        const args = parseArgs(process.argv.slice(2));
        const { logits, nVocab, nTokens } = await llamaLogits(args.model, args.tokens, { threads: args.threads });
        writeFileSync(args.out, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
        console.log(`${nTokens} ${nVocab}`);
        process.exit(0);
    } catch (e) {
        console.error(`llama-logits: ${e.message}`);
        process.exit(1);
    }
}
