// llama-bench.mjs — llama.cpp's CPU speed on a GGUF file, measured the way llama-bench does, for
// comparison with `onebit bench`.
//
// Uses node-llama-cpp's prebuilt CPU build of llama.cpp (no GPU). Like llama-bench:
//   pp N: N pseudo-random tokens evaluated as one batch from an empty context (batch size N);
//   tg N: N tokens generated one at a time from an empty context, each a decode of one token
//         (here through the sequence's generator, so a greedy sampling step is included per token).
// Each test is repeated -r times after one warm-up token; the median tokens/s and the standard
// deviation are reported. The token ids follow the same generator as `onebit bench` (xorshift,
// ids below min(n_vocab, 100000)). Not part of the engine; a measuring stick.
//
// usage: node bench/llama-bench.mjs -m FILE [-t THREADS] [--pp 512] [--tg 128] [-r 3] [--json]

import { availableParallelism } from "node:os";

function usage(msg) {
    if (msg) console.error(`llama-bench: ${msg}`);
    console.error("usage: node bench/llama-bench.mjs -m FILE [-t THREADS] [--pp N] [--tg N] [-r REPS] [--json]");
    process.exit(2);
}

function parseArgs(argv) {
    const o = { model: null, threads: 0, pp: 512, tg: 128, reps: 3, json: false };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i], v = argv[i + 1];
        const num = () => {
            const n = Number(v);
            if (!Number.isInteger(n) || n < 0) usage(`${a} needs a non-negative integer`);
            i++;
            return n;
        };
        if (a === "-m" || a === "--model") { if (!v) usage("-m needs a file"); o.model = v; i++; }
        else if (a === "-t" || a === "--threads") o.threads = num();
        else if (a === "--pp") o.pp = num();
        else if (a === "--tg") o.tg = num();
        else if (a === "-r" || a === "--reps") o.reps = Math.max(1, num());
        else if (a === "--json") o.json = true;
        else usage(`unknown option ${a}`);
    }
    if (!o.model) usage("-m FILE is required");
    // onebit's default: physical cores; node only knows logical CPUs, so ask for -t to be sure.
    if (o.threads === 0) o.threads = availableParallelism();
    return o;
}

/* The token ids of `onebit bench` (cli/tools.c): xorshift64 from the same seed. */
function benchTokens(n, nVocab) {
    const ids = new Array(n + 1);
    let x = 0x9E3779B97F4A7C15n;
    const mask = (1n << 64n) - 1n, lim = BigInt(Math.min(nVocab, 100000));
    for (let i = 0; i <= n; i++) {
        x ^= (x << 13n) & mask;
        x ^= x >> 7n;
        x ^= (x << 17n) & mask;
        ids[i] = Number(x % lim);
    }
    return ids;
}

function summarise(v) {
    const s = [...v].sort((a, b) => a - b), n = s.length;
    const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    const mean = v.reduce((a, b) => a + b, 0) / n;
    const sd = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
    return { median, sd };
}

const o = parseArgs(process.argv.slice(2));
const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: o.threads });
const model = await llama.loadModel({ modelPath: o.model, gpuLayers: 0 });
const context = await model.createContext({
    contextSize: o.pp + o.tg + 16,
    batchSize: Math.max(1, o.pp),
    sequences: 1,
    threads: o.threads,
    flashAttention: false,
});
const seq = context.getSequence();
const nVocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 0;
if (!nVocab) throw new Error("cannot read the vocabulary size from the model's metadata");
const toks = benchTokens(Math.max(o.pp, o.tg), nVocab);
const pp = [], tg = [];

// One warm-up token so page faults and lazy allocations are not measured.
await seq.evaluateWithoutGeneratingNewTokens([toks[0]]);
await seq.clearHistory();
for (let rep = 0; rep < o.reps; rep++) {
    if (o.pp > 0) {
        const t0 = performance.now();
        await seq.evaluateWithoutGeneratingNewTokens(toks.slice(0, o.pp));
        pp.push(o.pp / ((performance.now() - t0) / 1000));
        await seq.clearHistory();
    }
    if (o.tg > 0) {
        const t0 = performance.now();
        let n = 0;
        for await (const _ of seq.evaluate([toks[0]], { temperature: 0 })) if (++n >= o.tg) break;
        tg.push(o.tg / ((performance.now() - t0) / 1000));
        await seq.clearHistory();
    }
}
const p = pp.length ? summarise(pp) : { median: 0, sd: 0 }, g = tg.length ? summarise(tg) : { median: 0, sd: 0 };
const info = { engine: "llama.cpp", via: "node-llama-cpp", threads: context.currentThreads ?? o.threads, reps: o.reps,
    pp: o.pp, pp_tps: +p.median.toFixed(3), pp_sd: +p.sd.toFixed(3), tg: o.tg, tg_tps: +g.median.toFixed(3),
    tg_sd: +g.sd.toFixed(3) };
if (o.json) console.log(JSON.stringify(info));
else {
    console.log("| engine | threads | test | t/s |\n|---|---|---|---|");
    if (o.pp > 0) console.log(`| llama.cpp | ${info.threads} | pp${o.pp} | ${p.median.toFixed(2)} ± ${p.sd.toFixed(2)} |`);
    if (o.tg > 0) console.log(`| llama.cpp | ${info.threads} | tg${o.tg} | ${g.median.toFixed(2)} ± ${g.sd.toFixed(2)} |`);
}
await context.dispose();
await model.dispose();
await llama.dispose();
