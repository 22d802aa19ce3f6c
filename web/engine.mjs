// engine.mjs — the onebit engine for JavaScript (browsers and Node): loads the C core
// (build/wasm/onebit-core.mjs + onebit.wasm), streams a model into the GPU and generates text.
//
//   const eng = await Engine.create();            // WebGPU when there is an adapter, else CPU
//   await eng.load('model.gguf');                 // URL, File/Blob, ArrayBuffer, or a Node path
//   const r = await eng.generate('Hello', { maxTokens: 32, onText: (t) => out(t) });
//
// With WebGPU the C core decides every GPU buffer and dispatch (src/webgpu/backend_webgpu.c) and
// this file carries its command lists out through web/gpu.mjs; weights go from the file straight
// into GPU buffers in chunks, never through the wasm heap. Without WebGPU the whole file is read
// into wasm memory and the core's CPU backend runs it synchronously. Either way generation is the
// core's one loop (src/core/gen.c, ob_gen_*): this file only drives it — runs the GPU work it
// begins, waits where it says, hands results back and passes the text on — and decides none of
// its rules (defaults, stop strings, end tokens, limits). Decoding keeps one step in flight: the
// GPU samples the token, embeds it for the next step, and only the token id comes back. See
// docs/WEBGPU.md for the API. Not a server and not a chat UI.
//
// Two builds of the core: onebit-core.mjs + onebit.wasm (single-threaded, unshared memory) and
// onebit-mt-core.mjs + onebit-mt.wasm (+ onebit-mt-core.worker.js; pthreads on Web Workers,
// shared memory). The threaded one runs the CPU path where it can: a cross-origin isolated Web
// Worker (SharedArrayBuffer available). Everything else uses the single-threaded one: WebGPU
// (gpu.mjs decodes and copies out of wasm memory, which a shared memory would break), Node, and a
// page's main thread, where waiting is not allowed and the pool's caller would spin the UI.

import { GpuBridge, GpuError, openDevice } from './gpu.mjs';

const isNode = typeof process === 'object' && !!process.versions?.node;
// The wasm builds and kernels, each as a literal `new URL(file, import.meta.url)` so that bundlers
// (Vite, Rollup, webpack) find and emit them; tools/pack-npm.mjs rewrites '../build/wasm/' to the
// package's './wasm/'.
const FILES = {
  core: () => new URL('../build/wasm/onebit-core.mjs', import.meta.url),
  wasm: () => new URL('../build/wasm/onebit.wasm', import.meta.url),
  mtCore: () => new URL('../build/wasm/onebit-mt-core.mjs', import.meta.url),
  mtWasm: () => new URL('../build/wasm/onebit-mt.wasm', import.meta.url),
  kernels: () => new URL('../build/wasm/kernels.mjs', import.meta.url),
  kernelsGeneric: () => new URL('../build/wasm/kernels-generic.mjs', import.meta.url),
};

export const Status = Object.freeze({
  OK: 0, ERR_ARG: 1, ERR_IO: 2, ERR_FORMAT: 3, ERR_UNSUPPORTED: 4, ERR_NOMEM: 5, ERR_CONTEXT: 6,
  ERR_BACKEND: 7, ERR_CANCELLED: 8,
});

export class OnebitError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'OnebitError';
    this.status = status;
  }
}

// OB_STEP_* and ob_gen_event of include/onebit.h.
const STEP = { FEED: 1, LOGITS: 2, ALL: 4, SAMPLE: 8 };
const GEN = { TOKEN: 1, DONE: 2, SUBMIT: 3, AWAIT: 4 };
const FINISH = ['stop', 'length', 'context', 'callback'];
// ob_sampling's fields in the order ob_js_gen_begin takes them (src/wasm/wasm_api.c).
const SAMPLING_KEYS = ['temperature', 'topK', 'topP', 'minP', 'repeatPenalty', 'repeatLastN', 'presencePenalty',
  'frequencyPenalty', 'seed'];

async function readUrlBytes(url) {
  if (isNode && url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return new Uint8Array(await readFile(url));
  }
  const r = await fetch(url);
  if (!r.ok) throw new OnebitError(Status.ERR_IO, `cannot fetch ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

// ---- model sources: random-access readers over a file, a Blob, a buffer or a URL ----------

async function openSource(src) {
  if (src instanceof ArrayBuffer) src = new Uint8Array(src);
  if (ArrayBuffer.isView(src)) {
    const u8 = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    return { size: u8.length, name: 'buffer', read: async (o, n) => u8.subarray(o, o + n), close() {} };
  }
  if (typeof Blob !== 'undefined' && src instanceof Blob) {
    return {
      size: src.size, name: src.name ?? 'blob',
      read: async (o, n) => new Uint8Array(await src.slice(o, o + n).arrayBuffer()), close() {},
    };
  }
  let url = null;
  if (src instanceof URL) url = src;
  else if (typeof src === 'string' && /^(https?|file|blob|data):/i.test(src)) url = new URL(src);
  else if (typeof src === 'string' && !isNode) url = new URL(src, globalThis.location?.href);
  if (isNode && (url === null || url.protocol === 'file:')) {
    const { open } = await import('node:fs/promises');
    const fh = await open(url ?? src, 'r');
    const st = await fh.stat();
    return {
      size: st.size, name: String(url ?? src),
      async read(o, n) {
        const b = new Uint8Array(n);
        let got = 0;
        while (got < n) {
          const { bytesRead } = await fh.read(b, got, n - got, o + got);
          if (bytesRead === 0) throw new OnebitError(Status.ERR_IO, 'unexpected end of file');
          got += bytesRead;
        }
        return b;
      },
      close: () => fh.close(),
    };
  }
  // HTTP: ranges when the server serves them, else the whole body once.
  const probe = await fetch(url, { headers: { Range: 'bytes=0-0' } });
  if (!probe.ok) throw new OnebitError(Status.ERR_IO, `cannot fetch ${url}: HTTP ${probe.status}`);
  const cr = probe.headers.get('content-range');
  if (probe.status === 206 && cr && /\/(\d+)$/.test(cr)) {
    await probe.arrayBuffer();
    const size = Number(cr.match(/\/(\d+)$/)[1]);
    return {
      size, name: String(url), remote: true,
      async read(o, n) {
        const r = await fetch(url, { headers: { Range: `bytes=${o}-${o + n - 1}` } });
        const b = new Uint8Array(await r.arrayBuffer());
        if (r.status !== 206 || b.length !== n) throw new OnebitError(Status.ERR_IO, `range read of ${url} failed`);
        return b;
      },
      close() {},
    };
  }
  const all = new Uint8Array(await probe.arrayBuffer());
  return { size: all.length, name: String(url), read: async (o, n) => all.subarray(o, o + n), close() {} };
}

function fmtBytes(n) {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}

// The wasm32 core's memory: at most 4 GiB (-sMAXIMUM_MEMORY=4GB), which on the CPU path holds the
// whole file plus the context (KV cache, scratch) and the runtime.
export const WASM_HEAP_MAX = 4 * 1024 ** 3;
const CPU_RESERVE = 384 << 20;

// Where a GGUF file's tensor data starts (its header's size, aligned), from a prefix of the file;
// 0 when the prefix ends inside the header or is not GGUF (the core's parser then says why). A
// walk over the lengths only: the core parses the header for real.
function ggufHeaderBytes(u8) {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  let p = 0, align = 32;
  const need = (n) => { if (p + n > u8.length) throw 0; };
  const u32 = () => { need(4); p += 4; return dv.getUint32(p - 4, true); };
  const u64 = () => { need(8); p += 8; return Number(dv.getBigUint64(p - 8, true)); };
  const str = () => { const n = u64(); need(n); p += n; return n; };
  const SIZE = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8]; // by GGUF value type (8: string, 9: array)
  const skip = (t) => {
    if (t === 8) return str();
    if (t === 9) {
      const et = u32(), n = u64();
      if (et === 8) for (let i = 0; i < n; i++) str();
      else if (et === 9 || !SIZE[et]) throw 0;
      else { need(n * SIZE[et]); p += n * SIZE[et]; }
      return;
    }
    if (!SIZE[t]) throw 0;
    need(SIZE[t]);
    p += SIZE[t];
  };
  try {
    if (u32() !== 0x46554747) return 0; // "GGUF"
    if (u32() < 2) return 0;
    const nt = u64(), nkv = u64();
    for (let i = 0; i < nkv; i++) {
      const ks = p + 8, kn = str(), t = u32();
      const key = new TextDecoder().decode(u8.subarray(ks, ks + kn));
      if (key === 'general.alignment' && t === 4) { need(4); align = dv.getUint32(p, true) || 32; }
      skip(t);
    }
    for (let i = 0; i < nt; i++) {
      str();
      const nd = u32();
      need(nd * 8 + 12);
      p += nd * 8 + 12; // dims, type, offset
    }
    return Math.ceil(p / align) * align;
  } catch {
    return 0;
  }
}

// ---- the two cores --------------------------------------------------------------------------

// How many CPU threads to run with: {n, note}; note says why there is only one.
function threadPlan(requested) {
  if (requested === 1) return { n: 1, note: '' };
  if (isNode) return { n: 1, note: 'Node runs the single-threaded core' };
  if (!globalThis.crossOriginIsolated || typeof SharedArrayBuffer !== 'function')
    return { n: 1, note: 'not cross-origin isolated (the page needs COOP/COEP headers)' };
  // Atomics.wait throws on a page's main thread: the core would spin there and freeze the page.
  if (typeof WorkerGlobalScope === 'undefined') return { n: 1, note: 'threads need the engine in a Web Worker' };
  const cores = Math.max(1, Math.floor(globalThis.navigator?.hardwareConcurrency ?? 1));
  const n = requested > 0 ? Math.min(requested, 64) : Math.min(cores, 8);
  return { n, note: n > 1 ? '' : 'one CPU core' };
}

// The threaded core with n - 1 pthread workers, started with it (Module.obWorkers is its
// PTHREAD_POOL_SIZE): ob_eval runs synchronously, so a worker could not be started later. Rejects
// rather than hangs when a worker fails to load (the runtime says so through printErr) or the
// pool does not come up in time.
async function startThreaded(options, n) {
  const coreUrl = options.mtCoreUrl ?? FILES.mtCore();
  const [{ default: createCore }, wasmBinary] = await Promise.all([
    import(/* @vite-ignore */ String(coreUrl)), readUrlBytes(options.mtWasmUrl ?? FILES.mtWasm())]);
  let fail = null, timer = 0;
  const failed = new Promise((_, reject) => {
    fail = reject;
    timer = setTimeout(() => reject(new Error('its workers did not start within 30 s')), 30000);
  });
  const printErr = (s) => {
    if (/worker sent an error|uncaught exception/i.test(String(s))) fail(new Error(String(s)));
  };
  try {
    return await Promise.race([createCore({ wasmBinary, obWorkers: n - 1, print() {}, printErr }), failed]);
  } finally {
    clearTimeout(timer);
  }
}

// Emscripten refreshes Module.HEAP* only when the calling thread grows the memory; a pthread that
// grows it (its stack or TLS) would leave them short. These views follow the memory instead.
function liveViews(M) {
  const mem = M.wasmMemory;
  if (!mem) return;
  for (const [name, T] of [['HEAP8', Int8Array], ['HEAPU8', Uint8Array], ['HEAP32', Int32Array], ['HEAPU32', Uint32Array],
    ['HEAPF32', Float32Array]]) {
    let view = null;
    Object.defineProperty(M, name, {
      configurable: true,
      get() {
        const b = mem.buffer;
        if (!view || view.buffer !== b) view = new T(b);
        return view;
      },
      set() {}, // the runtime's own refresh: the getter already follows the memory
    });
  }
}

// ---- the engine ---------------------------------------------------------------------------

export class Engine {
  // options: backend 'auto' | 'webgpu' | 'cpu'; gpu: a navigator.gpu-like object (default
  // globalThis.navigator.gpu); subgroups: allow subgroup kernels (default true); subgroupMatrix:
  // allow the prompt products on experimental subgroup matrices where offered (default true); cpuBackend: the
  // core's CPU backend ('cpu', the SIMD one, by default; 'scalar' is the reference); wasm /
  // wasmUrl / coreUrl / kernelsUrl / kernelsGenericUrl: where the core lives (default ../build/wasm/
  // next to this file; the generic plan's kernels default to kernels-generic.mjs beside kernelsUrl).
  // limits: { maxStorageBufferBindingSize, maxBufferSize } to request instead of the adapter's
  // largest (e.g. the WebGPU defaults, 128 MiB / 256 MiB, as a small device has).
  // threads: CPU threads, caller included (0 = min(navigator.hardwareConcurrency, 8)); 1 where the
  // threaded core cannot run (see above; threadsNote says why). mtCoreUrl / mtWasmUrl: where the
  // threaded core lives.
  static async create(options = {}) {
    const { backend = 'auto', subgroups = true, subgroupMatrix = true } = options;
    const req = options.threads ?? 0;
    if (!Number.isSafeInteger(req) || req < 0)
      throw new OnebitError(Status.ERR_ARG, 'threads must be a non-negative integer (0 = default)');
    // The device first: it decides which core to load.
    let gpu = null, dev = null;
    if (backend !== 'cpu') {
      gpu = options.gpu ?? globalThis.navigator?.gpu;
      try {
        dev = await openDevice(gpu, { subgroups, subgroupMatrix, timestamps: !!options.timestamps, limits: options.limits });
      } catch (e) {
        if (backend === 'webgpu') throw new OnebitError(Status.ERR_BACKEND, `WebGPU: ${e.message ?? e}`);
      }
      if (!dev && backend === 'webgpu') throw new OnebitError(Status.ERR_UNSUPPORTED, 'no WebGPU adapter');
    }
    const cpuBackend = options.cpuBackend ?? 'cpu';
    const plan = dev ? { n: 1, note: 'WebGPU' }
      : cpuBackend !== 'cpu' ? { n: 1, note: `the ${cpuBackend} backend runs on one thread` } : threadPlan(req);
    let M = null;
    if (plan.n > 1) {
      try {
        M = await startThreaded(options, plan.n);
      } catch (e) {
        plan.n = 1;
        plan.note = `the threaded core did not start (${e?.message ?? e})`;
      }
    }
    if (!M) {
      try {
        const coreUrl = options.coreUrl ?? FILES.core();
        const { default: createCore } = await import(/* @vite-ignore */ String(coreUrl));
        const wasmBinary = options.wasm ?? (await readUrlBytes(options.wasmUrl ?? FILES.wasm()));
        M = await createCore({ wasmBinary, print() {}, printErr() {} });
      } catch (e) {
        try {
          dev?.device.destroy();
        } catch {}
        throw e;
      }
    }
    const eng = new Engine(M);
    eng.cpuBackend = cpuBackend;
    eng.threads = plan.n;
    eng.threadsNote = plan.note;
    if (backend !== 'cpu') {
      if (dev) {
        eng.gpu = gpu; // Dawn for Node crashes if the GPU object is collected while in use
        const { KERNELS } = await import(/* @vite-ignore */ String(options.kernelsUrl ?? FILES.kernels()));
        eng.dev = dev;
        eng.bridge = new GpuBridge(dev.device, KERNELS, dev.sgSize);
        // the generic plan's kernels (other families and weight types): imported when first needed
        const more = options.kernelsGenericUrl ??
          (options.kernelsUrl ? new URL('kernels-generic.mjs', new URL(String(options.kernelsUrl), FILES.kernels())) : FILES.kernelsGeneric());
        eng.bridge.loadMore = async () => (await import(/* @vite-ignore */ String(more))).KERNELS;
        // asyncPipelines: compile a list's pipelines with createComputePipelineAsync, all at once,
        // overlapping the weight upload (default), or each when its command comes (false). Measured
        // on SwiftShader (BENCHMARKS.md): 1.5x faster to the first token in Chromium, whose GPU
        // process compiles on its own threads, but 1.8x slower in Node's Dawn, where the compiles
        // share the process's cores: Node on a CPU adapter defaults to false.
        eng.bridge.asyncPipelines = options.asyncPipelines ?? !(isNode && dev.cpu);
        const L = dev.device.limits;
        // maxBindingSize (tests): plan as if bindings were smaller, e.g. to split matrices.
        // integerProductsOnCpu (tests): prompt products on mm_dp even on a CPU adapter (SwiftShader).
        // subgroupMatrixEmulation (tests, a CPU adapter): a function rewriting the subgroup-matrix
        // kernels' sources (tests/sgmat-emu.mjs); the generic plan's prompt products then run dq_mms.
        const bind = Math.min(L.maxStorageBufferBindingSize, options.maxBindingSize ?? Infinity);
        const emu = dev.cpu && typeof options.subgroupMatrixEmulation === 'function';
        if (emu) eng.bridge.sgMatSource = options.subgroupMatrixEmulation;
        M._ob_wgpu_attach(bind, L.maxBufferSize, L.maxComputeWorkgroupsPerDimension, dev.sgSize, L.maxComputeWorkgroupStorageSize,
          dev.sgMat ? 1 : 0, dev.cpu ? (emu ? 3 : options.integerProductsOnCpu ? 2 : 1) : 0);
        // maxLayerBuffer (tests): split each layer's weights into buffers of at most this many bytes.
        M._ob_wgpu_cap_weights(options.maxLayerBuffer ?? 0);
      }
    }
    return eng;
  }

  constructor(M) {
    this.M = M;
    this.dev = null;
    this.bridge = null;
    this.model = 0;
    this.ctx = 0;
    this.info = null;
    this.scratch = new Map(); // name -> { ptr, size } reusable wasm allocations
    this.imageBuf = 0;      // CPU path: the whole file in wasm memory
    this.threads = 1;       // CPU threads, caller included: planned, then (after load) what the core got
    this.threadsNote = '';  // why there is only one, when that is not what was asked for
    this.shared = typeof SharedArrayBuffer === 'function' && M.HEAPU8.buffer instanceof SharedArrayBuffer;
    if (this.shared) liveViews(M);
  }

  // {threads, peak}: threads the loaded model's CPU backend got, and the most of them that have
  // run parts of one job since the load or the last reset (tests: threads really used).
  threadStats({ reset = false } = {}) {
    if (this.bridge || !this.model) return { threads: 1, peak: 0 };
    const M = this.M;
    const p = this.buf('tstats', 8);
    M._ob_js_thread_stats(reset ? 1 : 0, p);
    return { threads: M.HEAP32[p >>> 2], peak: M.HEAP32[(p >>> 2) + 1] };
  }

  // 'webgpu' or 'cpu' (what load() will use / used).
  get backend() {
    return this.bridge ? 'webgpu' : 'cpu';
  }

  // ---- wasm helpers ----
  err(status) {
    const M = this.M;
    return new OnebitError(status, M.UTF8ToString(M._ob_last_error()) || `onebit error ${status}`);
  }
  buf(name, bytes) {
    const s = this.scratch.get(name);
    if (s && s.size >= bytes) return s.ptr;
    if (s) this.M._free(s.ptr);
    const size = Math.max(bytes, 64);
    const ptr = this.M._malloc(size) >>> 0;
    if (!ptr) throw new OnebitError(Status.ERR_NOMEM, 'out of wasm memory');
    this.scratch.set(name, { ptr, size });
    return ptr;
  }
  i32(ptr) { return this.M.HEAP32[ptr >>> 2]; }
  cstr(s, name = 'str') {
    const M = this.M;
    const n = M.lengthBytesUTF8(s) + 1;
    const p = this.buf(name, n);
    M.stringToUTF8(s, p, n);
    return p;
  }
  async run(ret, what) {
    if (ret) throw this.err(ret);
    return this.exec(what);
  }
  // Runs the command list of the last C call; returns the promise of its reads.
  exec() {
    const M = this.M;
    try {
      return this.bridge.exec(M, M._ob_wgpu_cmds(), M._ob_wgpu_cmds_len());
    } catch (e) {
      throw this.gpuErr(e);
    }
  }
  gpuErr(e) {
    if (e instanceof OnebitError) return e;
    if (e instanceof GpuError) return new OnebitError(Status.ERR_BACKEND, e.message);
    return e;
  }
  async wait(p) {
    try {
      return await p;
    } catch (e) {
      throw this.gpuErr(e);
    }
  }

  // ---- loading ----

  // source: URL string/URL, File/Blob, ArrayBuffer/Uint8Array, or (Node) a file path.
  // options: nCtx (0 = min(training context, 4096)), kvF16 (GPU cache in f16), batch (GPU: at
  // most this many prompt tokens a chunk; 0 = as many as fit, up to 512), onProgress(f).
  // loadTimes (ms from the call): headerMs (header read and planned), setupMs (GPU buffers),
  // uploadMs (weights streamed), pipelinesMs (GPU: the longest pipeline compile, overlapping the
  // upload), loadMs (all done); gpuBytes: GPU buffer bytes of the weights. Generation adds
  // firstTokenMs (the first generate's first token, from this load's start).
  async load(source, options = {}) {
    if (this.model) this.unload();
    this.loadTimes = { t0: performance.now() };
    const src = await openSource(source);
    try {
      if (this.bridge) await this.loadGpu(src, options);
      else await this.loadCpu(src, options);
    } finally {
      await src.close();
    }
    const M = this.M;
    const ip = this.buf('info', 64);
    M._ob_js_model_info(this.model, ip);
    const v = Array.from(M.HEAP32.subarray(ip >>> 2, (ip >>> 2) + 12));
    this.info = {
      arch: M.UTF8ToString(M._ob_js_model_str(this.model, 0)), name: M.UTF8ToString(M._ob_js_model_str(this.model, 1)),
      backend: M.UTF8ToString(M._ob_js_model_str(this.model, 2)),
      nVocab: v[0], nEmbd: v[1], nLayer: v[2], nHead: v[3], nHeadKv: v[4], headDim: v[5], nFf: v[6], nCtxTrain: v[7],
      tied: !!v[8], bos: v[9], eos: v[10], eot: v[11],
      nCtx: M._ob_context_n_ctx(this.ctx),
      fileSize: src.size,
    };
    return this.info;
  }

  // Whether a model would load here, found without downloading or uploading its weights: on
  // WebGPU its header is read (a few MB; ranges over HTTP) and planned against this device's
  // limits, which refuses, with what it needs and what the device allows, a model that cannot
  // fit; on the CPU path its size is set against wasm32 memory. Returns { ok, backend, size,
  // gpuBytes (WebGPU: bytes of weight buffers), message (why not, when !ok) }. WebGPU does not
  // tell how much memory a GPU has: running out of it shows at load, before the upload.
  async checkFit(source) {
    const src = await openSource(source);
    const M = this.M;
    try {
      if (!this.bridge) {
        const ok = src.size + CPU_RESERVE <= WASM_HEAP_MAX;
        return { ok, backend: 'cpu', size: src.size, message: ok ? '' : `the model (${fmtBytes(src.size)}) is too big for the ` +
          `WebAssembly CPU path, which holds the whole file in wasm32 memory (${fmtBytes(WASM_HEAP_MAX)} at most)` };
      }
      const outp = this.buf('out', 8);
      let avail = Math.min(src.size, 8 << 20);
      for (;;) {
        const head = await src.read(0, avail);
        const p = M._malloc(Math.max(avail, 1)) >>> 0;
        if (!p) throw new OnebitError(Status.ERR_NOMEM, 'out of wasm memory for the model header');
        M.HEAPU8.set(head, p);
        const st = M._ob_wgpu_model_open(p, avail, src.size, outp);
        if (st === 0) break;
        const e = this.err(st);
        if (/^truncated/.test(e.message) && avail < src.size) {
          avail = Math.min(src.size, avail * 4);
          continue;
        }
        // Unsupported here (limits, types, shapes) or too big: no. Anything else (not a model
        // file, a damaged one): cannot tell; loading it reports that.
        const no = st === Status.ERR_UNSUPPORTED || st === Status.ERR_NOMEM;
        return { ok: no ? false : null, backend: 'webgpu', size: src.size, message: e.message };
      }
      const m = this.i32(outp) >>> 0;
      const gpuBytes = M._ob_wgpu_model_bytes(m);
      M._ob_model_free(m); // nothing on the GPU yet: its list is empty
      return { ok: true, backend: 'webgpu', size: src.size, gpuBytes, message: '' };
    } finally {
      await src.close();
    }
  }

  async loadGpu(src, { nCtx = 0, kvF16 = false, batch = 0, onProgress } = {}) {
    const M = this.M;
    const outp = this.buf('out', 8);
    let avail = Math.min(src.size, 8 << 20);
    let head = null;
    for (let exact = false; ;) {
      head = exact ? head.subarray(0, avail) : await src.read(0, avail);
      // Only the header goes into wasm memory: no tensor bytes stay there.
      const hb = exact ? 0 : ggufHeaderBytes(head);
      if (hb > 0 && hb < avail) {
        head = head.subarray(0, hb);
        avail = hb;
        exact = true;
      }
      const p = M._malloc(Math.max(avail, 1)) >>> 0;
      if (!p) throw new OnebitError(Status.ERR_NOMEM, 'out of wasm memory for the model header');
      M.HEAPU8.set(head, p);
      const st = M._ob_wgpu_model_open(p, avail, src.size, outp); // takes p over
      if (st === 0) {
        // The prefix read may reach into the tensor data: open again with the header alone, so
        // that no weight stays in wasm memory (the tensors all stream through the upload plan).
        const hdr = M._ob_wgpu_header_bytes(this.i32(outp) >>> 0);
        if (exact || hdr >= avail) break;
        M._ob_model_free(this.i32(outp) >>> 0);
        avail = hdr;
        exact = true;
        continue;
      }
      const e = this.err(st);
      if (!exact && /^truncated/.test(e.message) && avail < src.size) {
        avail = Math.min(src.size, avail * 4);
        continue;
      }
      throw e;
    }
    this.model = this.i32(outp) >>> 0;
    const T = this.loadTimes;
    T.headerMs = performance.now() - T.t0;
    // The GPU buffers the plan asks for: their creation is checked (out of memory) before any
    // weight is read or uploaded.
    const need = M._ob_wgpu_model_bytes(this.model);
    try {
      await this.wait(this.run(M._ob_wgpu_model_setup(this.model)));
    } catch (e) {
      if (/out of memory/i.test(e.message))
        throw new OnebitError(Status.ERR_NOMEM, `the model needs ${fmtBytes(need)} of GPU buffers for its weights (plus its ` +
          `context's cache); this GPU could not allocate them (${e.message})`);
      throw e;
    }
    T.gpuBytes = need;
    T.setupMs = performance.now() - T.t0 - T.headerMs;
    // The upload plan: {kind, off_lo, off_hi, len, dst, dst_off} per range, streamed in file order.
    const np = this.buf('n', 4);
    const pp = M._ob_wgpu_uploads(this.model, np) >>> 0;
    const n = this.i32(np);
    let plan = [];
    for (let i = 0; i < n; i++) {
      const e = M.HEAPU32.subarray((pp >>> 2) + i * 6, (pp >>> 2) + i * 6 + 6);
      plan.push({ kind: e[0], off: e[2] * 4294967296 + e[1], len: e[3], dst: e[4], dstOff: e[5] });
    }
    plan.sort((a, b) => a.off - b.off);
    // A local source (file, Blob, buffer): the small vectors the core converts (kind 1) are read
    // first, so that the context (pipelines, bind groups) can be made before the weights arrive and
    // its pipelines compile while the weights upload. Over HTTP everything comes in one pass.
    let ctxDone = null;
    if (!src.remote) {
      for (const e of plan.filter((x) => x.kind === 1)) {
        if (e.off + e.len > src.size) throw new OnebitError(Status.ERR_FORMAT, 'tensor data runs past the end of the file');
        M.HEAPU8.set(await src.read(e.off, e.len), e.dst >>> 0);
      }
      plan = plan.filter((x) => x.kind === 0);
      ctxDone = this.gpuContext({ nCtx, kvF16, batch });
      ctxDone.catch(() => {});
    }
    const total = plan.reduce((s, e) => s + e.len, 0);
    const WIN = 16 << 20, PIECE = 4 << 20;
    let win = null, winOff = 0, done = 0, synced = 0;
    const bytes = async (o, l) => {
      if (!win || o < winOff || o + l > winOff + win.length) {
        win = await src.read(o, Math.max(l, Math.min(WIN, src.size - o)));
        winOff = o;
      }
      return win.subarray(o - winOff, o - winOff + l);
    };
    for (const e of plan) {
      if (e.off + e.len > src.size) throw new OnebitError(Status.ERR_FORMAT, 'tensor data runs past the end of the file');
      for (let d = 0; d < e.len; d += PIECE) {
        const l = Math.min(PIECE, e.len - d);
        let b = await bytes(e.off + d, l);
        if (e.kind === 0) {
          if (l % 4) {
            const padded = new Uint8Array((l + 3) & ~3);
            padded.set(b);
            b = padded;
          }
          try {
            this.bridge.write(e.dst, e.dstOff + d, b);
          } catch (err) {
            throw this.gpuErr(err);
          }
        } else {
          M.HEAPU8.set(b, (e.dst >>> 0) + d);
        }
        done += l;
        if (done - synced > (64 << 20)) {
          synced = done;
          await this.wait(this.bridge.idle()); // bounds the staging memory of queued writes
        }
        onProgress?.(done / total);
      }
    }
    T.uploadMs = performance.now() - T.t0 - T.headerMs - T.setupMs;
    await (ctxDone ?? this.gpuContext({ nCtx, kvF16, batch }));
    await this.wait(this.bridge.idle());
    T.loadMs = performance.now() - T.t0;
    T.pipelinesMs = this.bridge.compileMs;
  }

  // The model's last vectors (ob_wgpu_model_ready), then the context: its command list creates the
  // pipelines (compiled asynchronously, see GpuBridge.execDeferred) and bind groups.
  async gpuContext({ nCtx, kvF16, batch }) {
    const M = this.M;
    await this.wait(this.run(M._ob_wgpu_model_ready(this.model)));
    const cp = this.buf('out', 8);
    const st = M._ob_js_context_new(this.model, nCtx, kvF16 ? 1 : 0, batch, cp);
    if (st) throw this.err(st);
    this.ctx = this.i32(cp) >>> 0;
    await this.wait(this.exec());
  }

  async loadCpu(src, { nCtx = 0, onProgress } = {}) {
    const M = this.M;
    if (src.size + CPU_RESERVE > WASM_HEAP_MAX)
      throw new OnebitError(Status.ERR_NOMEM, `the model (${fmtBytes(src.size)}) is too big for the WebAssembly CPU path: ` +
        `it holds the whole file in wasm32 memory, ${fmtBytes(WASM_HEAP_MAX)} at most with about ${fmtBytes(CPU_RESERVE)} ` +
        'of that needed for the context; use WebGPU or the native onebit CLI');
    const p = M._malloc(src.size) >>> 0;
    if (!p) throw new OnebitError(Status.ERR_NOMEM, `out of wasm memory for a ${fmtBytes(src.size)} model: the WebAssembly CPU ` +
      `path holds the whole file in wasm32 memory (${fmtBytes(WASM_HEAP_MAX)} at most, less where the browser allows less)`);
    const CH = 16 << 20;
    for (let o = 0; o < src.size; o += CH) {
      const l = Math.min(CH, src.size - o);
      M.HEAPU8.set(await src.read(o, l), p + o);
      onProgress?.((o + l) / src.size);
    }
    const outp = this.buf('out', 8);
    let st = M._ob_js_load_memory(p, src.size, this.cstr(this.cpuBackend, 'backend'), this.threads, outp);
    if (st === Status.ERR_UNSUPPORTED && this.cpuBackend === 'cpu')
      st = M._ob_js_load_memory(p, src.size, this.cstr('scalar', 'backend'), 1, outp);
    if (st) {
      M._free(p);
      throw this.err(st);
    }
    this.imageBuf = p;
    this.model = this.i32(outp) >>> 0;
    // What the core got: fewer threads than planned when workers could not be had.
    const got = this.threadStats().threads;
    if (got < this.threads && !this.threadsNote) this.threadsNote = `${this.threads} threads asked for, ${got} started`;
    this.threads = got;
    st = M._ob_js_context_new(this.model, nCtx, 0, 0, outp);
    if (st) throw this.err(st);
    this.ctx = this.i32(outp) >>> 0;
  }

  unload() {
    const M = this.M;
    if (this.bridge) {
      const lost = !!this.bridge.lost;
      if (this.ctx) {
        M._ob_context_free(this.ctx);
        if (!lost) this.exec();
      }
      if (this.model) {
        M._ob_model_free(this.model);
        if (!lost) this.exec();
      }
    } else {
      if (this.ctx) M._ob_context_free(this.ctx);
      if (this.model) M._ob_model_free(this.model);
      if (this.imageBuf) M._free(this.imageBuf);
    }
    this.ctx = this.model = this.imageBuf = 0;
    this.info = null;
  }

  // Frees the model and, with WebGPU, the device. A new engine can be created afterwards (also
  // after a lost device).
  close() {
    try {
      this.unload();
    } catch {}
    if (this.bridge) {
      this.bridge.destroy();
      try {
        this.dev.device.destroy();
      } catch {}
      this.M._ob_wgpu_detach();
    }
    this.bridge = null;
    this.dev = null;
    // The threaded core's workers keep its memory (and the model in it) alive: end them too.
    if (this.shared) this.M.PThread?.terminateAllThreads();
  }

  // Kernel statistics of the device: subgroup size in use (0: none), whether the prompt products
  // run on subgroup matrices.
  get gpuInfo() {
    return this.dev ? { subgroupSize: this.dev.sgSize, subgroupMatrix: !!this.dev.sgMat, adapter: this.dev.info } : null;
  }

  // ---- tokens and text ----

  // prompt: a text that starts a context, so with the BOS/EOS the file asks for (ob_tokenize_prompt).
  // The GBNF text a JSON Schema (object or JSON text) compiles to (ob_json_schema_to_grammar);
  // throws with the core's message for a malformed or unsupported schema.
  jsonSchemaToGrammar(schema) {
    const M = this.M;
    const s = typeof schema === 'string' ? schema : JSON.stringify(schema);
    const n = M.lengthBytesUTF8(s) + 1;
    const sp = M._malloc(n) >>> 0;
    M.stringToUTF8(s, sp, n);
    const outp = this.buf('gbnf', 4);
    try {
      const st = M._ob_json_schema_to_grammar(sp, outp);
      if (st) throw this.err(st);
      const gp = M.HEAPU32[outp >>> 2];
      const text = M.UTF8ToString(gp);
      M._free(gp);
      return text;
    } finally {
      M._free(sp);
    }
  }

  tokenize(text, { special = true, prompt = false } = {}) {
    const M = this.M;
    const n = M.lengthBytesUTF8(text);
    const tp = this.buf('text', n + 1);
    M.stringToUTF8(text, tp, n + 1);
    const np = this.buf('n', 8);
    let cap = n + 16;
    for (;;) {
      const op = this.buf('toks', cap * 4);
      const st = (prompt ? M._ob_tokenize_prompt : M._ob_tokenize)(this.model, tp, n, special ? 1 : 0, op, cap, np);
      if (st) throw this.err(st);
      const got = M.HEAPU32[np >>> 2];
      if (got <= cap) return Array.from(M.HEAP32.subarray(op >>> 2, (op >>> 2) + got));
      cap = got;
    }
  }

  // Text of a token list (whole characters; bytes that never form one become U+FFFD).
  detokenize(tokens) {
    const d = this.detokenizer();
    return tokens.map((t) => d.push(t)).join('') + d.flush();
  }

  detokenizer() {
    const M = this.M, eng = this;
    const dp = M._malloc(8) >>> 0;
    M._ob_detok_init(dp);
    const cap = 1 << 18;
    const dec = new TextDecoder();
    // TextDecoder refuses views of shared memory (the threaded core): it decodes a copy there.
    const text = (op, n) => (n > 0 ? dec.decode(eng.shared ? M.HEAPU8.slice(op, op + n) : M.HEAPU8.subarray(op, op + n)) : '');
    return {
      push(tok) {
        const op = eng.buf('piece', cap);
        return text(op, M._ob_detok_push(eng.model, dp, tok, op, cap));
      },
      flush() {
        const op = eng.buf('piece', cap);
        const n = M._ob_detok_flush(dp, op, cap);
        M._free(dp);
        return text(op, n);
      },
    };
  }

  isEog(tok) {
    return this.M._ob_token_is_eog(this.model, tok) !== 0;
  }

  // The model's chat template applied to [{role, content}] (Qwen3 ChatML).
  chat(messages, { addGenerationPrompt = true, enableThinking = false } = {}) {
    const M = this.M;
    const ptrs = [];
    const mp = M._malloc(messages.length * 8 + 8) >>> 0;
    try {
      messages.forEach((m, i) => {
        for (const [k, s] of [[0, m.role], [1, m.content]]) {
          const n = M.lengthBytesUTF8(s) + 1;
          const p = M._malloc(n) >>> 0;
          M.stringToUTF8(s, p, n);
          ptrs.push(p);
          M.HEAPU32[(mp >>> 2) + i * 2 + k] = p;
        }
      });
      const op = this.buf('out', 8);
      const st = M._ob_chat_render(this.model, mp, messages.length, addGenerationPrompt ? 1 : 0, enableThinking ? 1 : 0, op);
      if (st) throw this.err(st);
      const sp = M.HEAPU32[op >>> 2];
      const s = M.UTF8ToString(sp);
      M._free(sp);
      return s;
    } finally {
      ptrs.forEach((p) => M._free(p));
      M._free(mp);
    }
  }

  // The chat template applied to messages and tools given as JSON text (messages may carry
  // tool_calls, tool_call_id, reasoning_content: whatever the template reads). enableThinking:
  // true/false sets the template's variable, null leaves it undefined.
  chatJson(messagesJson, toolsJson = null, { addGenerationPrompt = true, enableThinking = false } = {}) {
    const M = this.M;
    const put = (s) => {
      const n = M.lengthBytesUTF8(s) + 1;
      const p = M._malloc(n) >>> 0;
      M.stringToUTF8(s, p, n);
      return p;
    };
    const mp = put(messagesJson), tp = toolsJson === null ? 0 : put(toolsJson);
    try {
      const op = this.buf('out', 8);
      const think = enableThinking === null ? -1 : enableThinking ? 1 : 0;
      const st = M._ob_chat_render_json(this.model, mp, tp, addGenerationPrompt ? 1 : 0, think, op);
      if (st) throw this.err(st);
      const sp = M.HEAPU32[op >>> 2];
      const s = M.UTF8ToString(sp);
      M._free(sp);
      return s;
    } finally {
      M._free(mp);
      if (tp) M._free(tp);
    }
  }

  // The model's chat template source (tokenizer.chat_template), or '' when it has none.
  chatTemplate() {
    const p = this.M._ob_model_chat_template(this.model) >>> 0;
    return p ? this.M.UTF8ToString(p) : '';
  }

  // ---- evaluation ----

  get nPast() {
    return this.M._ob_context_n_past(this.ctx);
  }

  truncate(n) {
    const st = this.M._ob_context_truncate(this.ctx, n);
    if (st) throw this.err(st);
  }

  // Clears the KV cache.
  reset() {
    if (this.ctx) this.truncate(0);
  }

  // GPU: the reads of a finished step copied into wasm memory: [ptr, bytes] (ob_step_end's layout).
  putReads(reads) {
    const total = reads.reduce((s, r) => s + r.byteLength, 0);
    const p = this.buf('reads', total);
    let o = p;
    for (const r of reads) {
      this.M.HEAPU8.set(new Uint8Array(r), o);
      o += r.byteLength;
    }
    return [p, total];
  }

  // GPU: waits for a step's work (the promise exec returned) and hands its result to the core.
  async endStep(p) {
    const [ptr, len] = this.putReads(await this.wait(p));
    const st = this.M._ob_step_end(this.ctx, ptr, len, 0);
    if (st) throw this.err(st);
  }

  // GPU: begins steps over tokens (ob_step_begin, chunk by chunk); returns the promises of their
  // work and how many tokens each took.
  gpuBegin(tokens, flags) {
    const M = this.M;
    const n = tokens.length;
    const tp = this.buf('evaltok', n * 4);
    M.HEAP32.set(tokens, tp >>> 2);
    const kp = this.buf('taken', 4);
    const steps = [];
    for (let done = 0; done < n;) {
      const st = M._ob_step_begin(this.ctx, tp + done * 4, n - done, flags, kp);
      if (st) throw this.err(st);
      const p = this.exec();
      p.catch(() => {});
      steps.push({ p, k: this.i32(kp) });
      done += this.i32(kp);
    }
    return steps;
  }

  // Logits of every position of tokens, evaluated from an empty cache: Float32Array(n * nVocab).
  async logits(tokens) {
    const V = this.info.nVocab;
    const M = this.M;
    this.reset();
    const out = new Float32Array(tokens.length * V);
    const copy = (rows, at) => {
      for (let i = 0; i < rows; i++) {
        const lp = M._ob_logits(this.ctx, i) >>> 0;
        out.set(M.HEAPF32.subarray(lp >>> 2, (lp >>> 2) + V), (at + i) * V);
      }
    };
    if (this.bridge) {
      let at = 0;
      for (const { p, k } of this.gpuBegin(tokens, STEP.LOGITS | STEP.ALL)) {
        await this.endStep(p);
        copy(k, at);
        at += k;
      }
      return out;
    }
    const tp = this.buf('evaltok', tokens.length * 4);
    M.HEAP32.set(tokens, tp >>> 2);
    const st = M._ob_eval(this.ctx, tp, tokens.length, 1);
    if (st) throw this.err(st);
    copy(tokens.length, 0);
    return out;
  }

  // ---- generation ----

  // prompt: text (tokenized with special tokens) or token ids. options: maxTokens (default 256;
  // <= 0: until the context is full), sampling {temperature, topK, topP, minP, repeatPenalty,
  // repeatLastN, presencePenalty, frequencyPenalty, seed} (what is left out is ob_sampling_default's),
  // stop: strings, grammar: GBNF text or jsonSchema: a JSON Schema (object or JSON text) that the
  // output must match (ob_generate_params.grammar / json_schema; a malformed one throws with the
  // core's message and where it is), onText(text) -> true to stop, onToken(id), shouldStop() -> true to stop (checked
  // after every token), yieldEvery (CPU path: let the event loop run every that many tokens, so
  // that shouldStop can see an AbortSignal or a Worker message).
  // Returns {text, tokens, nPrompt, nReused, nGenerated, finish, tPromptMs, tGenMs}; finish is
  // 'stop' | 'length' | 'context' | 'callback' as ob_generate's 0..3. The cache keeps the
  // conversation, so a longer prompt that starts the same reuses it. The rules are the core's
  // (ob_gen_*, src/core/gen.c); this loop runs GPU work, waits and passes text on.
  async generate(prompt, options = {}) {
    const M = this.M;
    const toks = typeof prompt === 'string' ? this.tokenize(prompt, { prompt: true }) : Array.from(prompt);
    const tp = this.buf('gentok', Math.max(1, toks.length) * 4);
    M.HEAP32.set(toks, tp >>> 2);
    const sp = this.buf('sampling', 8 * SAMPLING_KEYS.length);
    const vals = new Float64Array(M.HEAPU8.buffer, sp, SAMPLING_KEYS.length);
    let given = 0;
    SAMPLING_KEYS.forEach((k, i) => {
      const v = options.sampling?.[k];
      if (v === undefined || v === null) return;
      vals[i] = Number(v);
      given |= 1 << i;
    });
    const stops = options.stop ?? [];
    const sptrs = stops.map((s) => {
      const n = M.lengthBytesUTF8(String(s)) + 1;
      const p = M._malloc(n) >>> 0;
      M.stringToUTF8(String(s), p, n);
      return p;
    });
    const arr = this.buf('stops', Math.max(1, sptrs.length) * 4);
    M.HEAPU32.set(sptrs, arr >>> 2);
    const cstr = (s) => {
      if (s === undefined || s === null) return 0;
      const n = M.lengthBytesUTF8(s) + 1;
      const p = M._malloc(n) >>> 0;
      M.stringToUTF8(s, p, n);
      return p;
    };
    const schema = options.jsonSchema;
    const gp = cstr(options.grammar ?? null);
    const jp = cstr(schema === undefined || schema === null ? null : typeof schema === 'string' ? schema : JSON.stringify(schema));
    const outp = this.buf('gen', 8);
    let st;
    try {
      st = M._ob_js_gen_begin(this.ctx, tp, toks.length, options.maxTokens ?? 256, arr, sptrs.length, sp, given, gp, jp, outp);
    } finally {
      sptrs.forEach((p) => M._free(p));
      if (gp) M._free(gp);
      if (jp) M._free(jp);
    }
    if (st) throw this.err(st);
    const g = this.i32(outp) >>> 0;
    const res = { text: '', tokens: [], nPrompt: 0, nReused: 0, nGenerated: 0, finish: 'length', tPromptMs: 0, tGenMs: 0 };
    const inflight = []; // promises of the GPU work begun, oldest first
    const evp = this.buf('genev', 8);
    const dec = new TextDecoder();
    const text = () => {
      const p = M._ob_gen_text(g, evp + 4) >>> 0, n = M.HEAPU32[(evp + 4) >>> 2];
      return n > 0 ? dec.decode(this.shared ? M.HEAPU8.slice(p, p + n) : M.HEAPU8.subarray(p, p + n)) : '';
    };
    const yieldEvery = this.bridge ? 0 : options.yieldEvery ?? 0;
    try {
      for (;;) {
        st = M._ob_gen_next(g, evp);
        if (st) throw this.err(st);
        const ev = this.i32(evp);
        if (ev === GEN.SUBMIT) {
          const p = this.exec();
          p.catch(() => {});
          inflight.push(p);
        } else if (ev === GEN.AWAIT) {
          const [ptr, len] = this.putReads(await this.wait(inflight.shift()));
          st = M._ob_gen_complete(g, ptr, len);
          if (st) throw this.err(st);
        } else if (ev === GEN.TOKEN) {
          const tok = M._ob_gen_token(g);
          if (this.loadTimes && this.loadTimes.firstTokenMs === undefined) this.loadTimes.firstTokenMs = performance.now() - this.loadTimes.t0;
          res.tokens.push(tok);
          options.onToken?.(tok);
          const t = text();
          if (t) {
            res.text += t;
            if (options.onText?.(t)) M._ob_gen_cancel(g);
          }
          if (yieldEvery > 0 && res.tokens.length % yieldEvery === 0) await new Promise((r) => setTimeout(r, 0));
          if (options.shouldStop?.()) M._ob_gen_cancel(g);
        } else {
          const t = text(); // what was held back, when generation ran out
          if (t) {
            res.text += t;
            options.onText?.(t);
          }
          break;
        }
      }
      const rp = this.buf('genres', 48);
      M._ob_js_gen_result(g, rp);
      const r = new Float64Array(M.HEAPU8.buffer, rp, 6);
      Object.assign(res, { nPrompt: r[0], nReused: r[1], nGenerated: r[2], finish: FINISH[r[3]], tPromptMs: r[4], tGenMs: r[5] });
    } finally {
      M._ob_gen_free(g);
    }
    return res;
  }

  // ---- benchmark ----

  // Like llama-bench: pp = one batch of `pp` prompt tokens from an empty cache, tg = `tg`
  // tokens generated one at a time (greedy, sampled on the GPU, one step in flight). Returns
  // tokens/s medians over `reps` runs and, for WebGPU, dispatches per generated token.
  async bench({ pp = 512, tg = 128, reps = 3, warmup = true } = {}) {
    const V = this.info.nVocab;
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % V;
    const prompt = Array.from({ length: pp }, rnd);
    const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
    const res = { backend: this.backend, pp, tg, ppTps: 0, tgTps: 0, dispatchesPerToken: 0 };
    const M = this.M;
    if (this.bridge) { // greedy on the device
      const sp = this.buf('sampling', 72), dp = this.buf('taken', 4);
      new Float64Array(M.HEAPU8.buffer, sp, 1)[0] = 0;
      const st = M._ob_js_set_sampling(this.ctx, sp, 1, dp);
      if (st) throw this.err(st);
    }
    const runPP = async () => {
      this.reset();
      const t0 = performance.now();
      if (this.bridge) {
        for (const { p } of this.gpuBegin(prompt, 0)) await this.endStep(p);
        await this.wait(this.bridge.idle());
      } else {
        const tp = this.buf('evaltok', pp * 4);
        M.HEAP32.set(prompt, tp >>> 2);
        const st = M._ob_eval(this.ctx, tp, pp, 0);
        if (st) throw this.err(st);
      }
      return performance.now() - t0;
    };
    const runTG = async () => {
      this.reset();
      const t0 = performance.now();
      if (this.bridge) {
        // Up to four steps in flight, each fed with the token the one before sampled.
        const inflight = this.gpuBegin([prompt[0]], STEP.SAMPLE).map((s) => s.p);
        const kp = this.buf('taken', 4);
        for (let i = 1; i < tg; i++) {
          const st = M._ob_step_begin(this.ctx, 0, 1, STEP.FEED | STEP.SAMPLE, kp);
          if (st) throw this.err(st);
          const p = this.exec();
          p.catch(() => {});
          inflight.push(p);
          if (i === 1) res.dispatchesPerToken = this.bridge.dispatches;
          if (inflight.length > 3) await this.endStep(inflight.shift());
        }
        while (inflight.length) await this.endStep(inflight.shift());
      } else {
        const tp = this.buf('evaltok', 4);
        for (let i = 0; i < tg; i++) {
          M.HEAP32[tp >>> 2] = prompt[i % pp];
          const st = M._ob_eval(this.ctx, tp, 1, 0);
          if (st) throw this.err(st);
        }
      }
      return performance.now() - t0;
    };
    if (warmup) {
      if (pp > 0) await runPP();
      if (tg > 0) await runTG();
    }
    const tpp = [], ttg = [];
    for (let r = 0; r < reps; r++) {
      if (pp > 0) tpp.push(await runPP());
      if (tg > 0) ttg.push(await runTG());
    }
    if (pp > 0) res.ppTps = pp / (median(tpp) / 1000);
    if (tg > 0) res.tgTps = tg / (median(ttg) / 1000);
    this.reset();
    return res;
  }
}
