// bench.mjs — the in-browser half of bench/wllama-bench.mjs: measures onebit's wasm CPU fallback
// (web/engine.mjs, backend 'cpu') and wllama (@wllama/wllama, llama.cpp in wasm, CPU only) on the
// same GGUF file, like llama-bench: pp = one batch of N prompt tokens from an empty cache, tg = N
// tokens generated one at a time; medians over reps, after a warm-up.
//
// The same file is both the page's module (window.bench, called by the Node script through
// playwright) and the module Web Worker that runs onebit (wllama brings its own worker), so both
// engines compute off the page's thread, as an app would run them. Both engines get the same
// fixed pseudo-random prompt token ids (see wordIds). It is not a test: it reports figures and
// what each engine said it used (threads, backend); the Node script judges them.

const WLLAMA = '/node_modules/@wllama/wllama/esm/index.js';
const WLLAMA_WASM = '/node_modules/@wllama/wllama/esm/wasm/wllama.wasm';
const ENGINE = '/web/engine.mjs';

// Prompt ids both engines can be given: wllama 3.13 takes a prompt only as text (its completion
// task reads "prompt" as a string), so the ids are pseudo-random whole-word tokens (" word", a
// space and letters) drawn with Engine.bench's LCG; their concatenation tokenizes back to exactly
// these ids (checked here with onebit's tokenizer, and by wllama's prompt token count).
function wordIds(eng, n) {
  const V = eng.info.nVocab;
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % V;
  const ids = [], pieces = [];
  for (let tries = 0; ids.length < n; tries++) {
    if (tries > 10000 * n) throw new Error('cannot find enough whole-word tokens in this vocabulary');
    const id = rnd();
    const p = eng.detokenize([id]);
    if (!/^ [a-z]{3,}$/.test(p)) continue;
    const back = eng.tokenize(p, { special: false });
    if (back.length !== 1 || back[0] !== id) continue;
    ids.push(id);
    pieces.push(p);
  }
  const text = pieces.join('');
  const back = eng.tokenize(text, { special: false });
  if (back.length !== n || back.some((t, i) => t !== ids[i])) throw new Error('the prompt words do not tokenize back to their ids');
  return { ids, text, firstText: pieces[0] };
}

const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const errText = (e) => (e && e.stack ? `${e.name ?? 'Error'}: ${e.message}\n${e.stack}` : String(e));

// ---- onebit, in the worker ----------------------------------------------------------------------

// The thread count the engine says it runs with; an engine without a threads option is the
// single-threaded wasm build.
function onebitThreads(eng) {
  const note = eng.threadsNote || '';
  if (Number.isInteger(eng.threads) && eng.threads > 0) return { threads: eng.threads, reported: true, threadsNote: note };
  return { threads: 1, reported: false, threadsNote: 'the engine has no threads option: single-threaded wasm build' };
}

async function onebitTask(m) {
  const { Engine } = await import(ENGINE);
  const opts = { backend: 'cpu' };
  if (m.threads) opts.threads = m.threads; // ignored by an engine without the option
  const eng = await Engine.create(opts);
  try {
    const t0 = performance.now();
    const info = await eng.load(m.modelUrl, { nCtx: m.nCtx });
    const loadMs = performance.now() - t0;
    const base = { backend: eng.backend, coreBackend: info.backend, loadMs, nVocab: info.nVocab, nLayer: info.nLayer,
      nCtx: info.nCtx, fileSize: info.fileSize, ...onebitThreads(eng) };
    if (m.type === 'greedy') {
      // The prompt's ids (m.text tokenized), the greedy tokens after them, each one's text.
      const ids = eng.tokenize(m.text, { special: false });
      const r = await eng.generate(ids, { maxTokens: m.n, sampling: { temperature: 0, repeatPenalty: 1 } });
      // Log-probabilities of the generated tokens, from the logits of the whole sequence.
      const seq = ids.concat(r.tokens), V = info.nVocab;
      const all = await eng.logits(seq);
      const logprobs = r.tokens.map((t, i) => {
        const row = all.subarray((ids.length - 1 + i) * V, (ids.length + i) * V);
        let mx = -Infinity, sum = 0;
        for (const x of row) mx = Math.max(mx, x);
        for (const x of row) sum += Math.exp(x - mx);
        return row[t] - mx - Math.log(sum);
      });
      return { ...base, promptIds: ids, tokens: r.tokens, logprobs, text: r.text, finish: r.finish };
    }
    const words = wordIds(eng, m.pp);
    if (m.type === 'prep') return { ...base, words };
    eng.threadStats?.({ reset: true });
    const r = await onebitBench(eng, words.ids, m);
    // The most threads that ran parts of one job during the runs (the engine's own count).
    const peak = eng.threadStats ? eng.threadStats().peak : null;
    return { ...base, words, ...r, threadsPeak: peak };
  } finally {
    eng.close();
  }
}

// Engine.bench's CPU loop with the given ids (Engine.bench draws its own): pp = one ob_eval of
// all ids from an empty cache; tg = one token at a time from ids[0], each next token the argmax of
// the last logits (greedy, as wllama's). Warm-up: one pp run and 8 generated tokens (see
// wllamaTask); then medians of m.reps.
async function onebitBench(eng, ids, m) {
  const M = eng.M, V = eng.info.nVocab;
  const evalIds = (toks) => {
    const tp = eng.buf('evaltok', toks.length * 4);
    M.HEAP32.set(toks, tp >>> 2);
    const st = M._ob_eval(eng.ctx, tp, toks.length, 0);
    if (st) throw eng.err(st);
  };
  const argmax = () => {
    const lp = (M._ob_logits(eng.ctx, -1) >>> 0) >>> 2;
    const L = M.HEAPF32; // after the eval: memory may have grown
    let best = 0;
    for (let i = 1; i < V; i++) if (L[lp + i] > L[lp + best]) best = i;
    return best;
  };
  const runPP = () => {
    eng.reset();
    const t0 = performance.now();
    evalIds(ids);
    return performance.now() - t0;
  };
  const runTG = (n) => {
    eng.reset();
    let tok = ids[0];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      evalIds([tok]);
      tok = argmax();
    }
    return performance.now() - t0;
  };
  runPP();
  runTG(Math.min(8, m.tg));
  const pp = [], tg = [];
  for (let i = 0; i < m.reps; i++) {
    pp.push(runPP());
    tg.push(runTG(m.tg));
  }
  eng.reset();
  return { ppMs: pp, tgMs: tg, ppTps: m.pp / (median(pp) / 1000), tgTps: m.tg / (median(tg) / 1000) };
}

// ---- wllama, on the page (it runs llama.cpp in a worker of its own) --------------------------------

async function wllamaTask(m) {
  const { Wllama, LogLevel } = await import(WLLAMA);
  const logs = [];
  const keep = (lvl) => (...a) => logs.push(`${lvl}: ${a.map((x) => (typeof x === 'string' ? x : errText(x))).join(' ')}`.trimEnd());
  const w = new Wllama({ default: new URL(WLLAMA_WASM, location.href).href },
    { logger: { debug: keep('debug'), log: keep('log'), warn: keep('warn'), error: keep('error') } });
  const out = { logs, version: Wllama.getLibllamaVersion?.() ?? null };
  try {
    const blob = await (await fetch(m.modelUrl)).blob();
    const batch = Math.max(512, m.pp ?? 0);
    const t0 = performance.now();
    await w.loadModel([blob], {
      n_ctx: m.nCtx, n_batch: batch, n_ubatch: batch, n_threads: m.threads, n_gpu_layers: 0, n_parallel: 1,
      seed: 1, log_level: LogLevel.INFO,
    });
    out.loadMs = performance.now() - t0;
    out.multithread = w.isMultithread();
    out.threads = w.getNumThreads();
    const ci = w.getLoadedContextInfo();
    out.nVocab = ci.n_vocab;
    out.nCtx = ci.n_ctx;
    out.nBatch = ci.n_batch;
    out.nUbatch = ci.n_ubatch;
    out.nLayer = ci.n_layer;
    out.fileSize = blob.size;
    // Greedy, no prompt cache (each request starts from an empty KV cache), no end-of-text stop.
    // A random-weight model's greedy tokens may be stray UTF-8 bytes, on which wllama's JSON
    // answer fails ("invalid UTF-8 byte"): in the bench, a bias makes the greedy pick a whole word
    // (the argmax still runs over the whole vocabulary; the decode cost does not depend on the id).
    const bias = m.words ? { logit_bias: { [m.words.ids[0]]: 1000 } } : {};
    const complete = async (prompt, n, extra = {}) => {
      const t = performance.now();
      const r = await w.createCompletion({ prompt, max_tokens: n, temperature: 0, top_k: 1, top_p: 1, min_p: 0,
        cache_prompt: false, ignore_eos: true, ...bias, ...extra });
      const wallMs = performance.now() - t;
      if (!r.timings) throw new Error('wllama returned no timings');
      if (r.timings.cache_n !== 0) throw new Error(`wllama reused ${r.timings.cache_n} cached prompt tokens`);
      return { r, wallMs, t: r.timings };
    };
    if (m.type === 'greedy') {
      const { r, t } = await complete(m.text, m.n, { ignore_eos: false, logprobs: 1 });
      const c = r.choices[0];
      out.promptN = t.prompt_n;
      out.text = c.text;
      // logprobs.content: per generated token its id and log-probability (of the raw distribution).
      const lp = c.logprobs?.content;
      if (!Array.isArray(lp)) throw new Error('wllama returned no logprobs.content');
      out.tokens = lp.map((x) => x.id);
      out.logprobs = lp.map((x) => x.logprob);
      out.finish = c.finish_reason;
      return out;
    }
    // The prompt: the words of m.words (see wordIds), which must be exactly pp tokens here too.
    // pp: one request of the pp prompt tokens that stops at the first sampled token (not decoded).
    const runPP = async () => {
      const { t, wallMs } = await complete(m.words.text, 1);
      if (t.prompt_n !== m.pp) throw new Error(`wllama read the ${m.pp}-word prompt as ${t.prompt_n} tokens`);
      return { ms: t.prompt_ms, wallMs };
    };
    // tg: a one-token prompt, then tg + 1 tokens: the first comes from the prompt's logits, each
    // of the other tg is one decode of one token plus its (greedy) sampling. The wall-clock cross-
    // check subtracts a one-token request that generates one token (load, prompt, no decode).
    const runTG = async (n) => {
      const { t, wallMs } = await complete(m.words.firstText, n + 1);
      if (t.prompt_n !== 1) throw new Error(`wllama read the one-word prompt as ${t.prompt_n} tokens`);
      if (t.predicted_n !== n + 1) throw new Error(`wllama generated ${t.predicted_n} tokens, not ${n + 1}`);
      const base = await complete(m.words.firstText, 1);
      return { ms: t.predicted_ms, wallMs: wallMs - base.wallMs, predictedN: t.predicted_n };
    };
    // Warm-up: one pp run and 8 generated tokens, then the reps. Chromium first runs wasm from a
    // baseline compiler and swaps in optimized code while it runs (on a 2-core machine the first
    // tokens of a fresh engine came ~2x slower); llama-bench's single warm-up token is not enough
    // for that. wllama on a big Q1_0 file is slow: the page says where it is ("bench:" lines).
    console.info('bench: wllama warm-up');
    await runPP();
    await runTG(Math.min(8, m.tg));
    const pp = [], tg = [];
    for (let i = 0; i < m.reps; i++) {
      console.info(`bench: wllama rep ${i + 1} of ${m.reps}`);
      pp.push(await runPP());
      tg.push(await runTG(m.tg));
    }
    out.pp = pp;
    out.tg = tg;
    out.ppTps = m.pp / (median(pp.map((x) => x.ms)) / 1000);
    out.tgTps = m.tg / (median(tg.map((x) => x.ms)) / 1000);
    out.ppTpsWall = m.pp / (median(pp.map((x) => x.wallMs)) / 1000);
    out.tgTpsWall = m.tg / (median(tg.map((x) => x.wallMs)) / 1000);
    return out;
  } catch (e) {
    e.wllamaLogs = logs;
    throw e;
  } finally {
    await w.exit().catch(() => {});
  }
}

// ---- wiring ---------------------------------------------------------------------------------------

if (typeof window === 'undefined') {
  onmessage = async ({ data: m }) => {
    try {
      postMessage({ ok: true, result: await onebitTask(m) });
    } catch (e) {
      postMessage({ ok: false, error: errText(e) });
    }
  };
} else {
  const onebit = (m) => new Promise((resolve, reject) => {
    const wk = new Worker(new URL(import.meta.url), { type: 'module' });
    wk.onmessage = ({ data }) => {
      wk.terminate();
      if (data.ok) resolve(data.result);
      else reject(new Error(`onebit: ${data.error}`));
    };
    wk.onerror = (e) => {
      wk.terminate();
      reject(new Error(`onebit worker: ${e.message ?? e}`));
    };
    wk.postMessage(m);
  });
  const wllama = async (m) => {
    try {
      return await wllamaTask(m);
    } catch (e) {
      // The caller gets wllama's own log with the error: it says why a model did not load.
      const err = new Error(`wllama: ${errText(e)}\n--- wllama log ---\n${(e.wllamaLogs ?? []).join('\n')}`);
      throw err;
    }
  };
  const env = async () => {
    let adapter = null;
    try {
      adapter = navigator.gpu ? !!(await navigator.gpu.requestAdapter()) : null;
    } catch {
      adapter = false;
    }
    return { crossOriginIsolated: globalThis.crossOriginIsolated === true, hardwareConcurrency: navigator.hardwareConcurrency,
      userAgent: navigator.userAgent, webgpu: !!navigator.gpu, webgpuAdapter: adapter,
      sharedArrayBuffer: typeof SharedArrayBuffer === 'function' };
  };
  window.bench = { onebit, wllama, env, ready: true };
}
