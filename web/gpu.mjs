// gpu.mjs — the WebGPU half of the engine: opens a device and replays the command lists that the
// C core writes into wasm memory (src/backend_webgpu.c decides every buffer, pipeline and
// dispatch; this file only carries them out). One list = parameter writes, then every dispatch
// in ONE compute pass, then copies of what must be read back; one submit. Objects are created
// once, when a list says so, and named by the numbers C hands out. Errors (validation,
// out-of-memory) and device loss are caught here and reported at the next sync point, the
// promise a list's execution returns. This is not a WebGPU wrapper: it knows seven commands.

const OP = { BUFFER: 1, PIPELINE: 2, BINDGROUP: 3, WRITE: 4, DISPATCH: 5, READ: 6, FREE: 7 };
const U = { STORAGE: 1, UNIFORM: 2, COPY_SRC: 4 };

// Kernels that read Q1_0 weights get src/webgpu/kernels/q1.wgsl.
const Q1_KERNELS = new Set(['embed', 'matvec', 'gateup', 'matmul', 'mm_sg', 'mm_dp']);
// ... and the decode products also src/webgpu/kernels/qx.wgsl (the quantised input).
const QX_KERNELS = new Set(['matvec', 'gateup']);
// ... and the kernels that write a pre-quantised decode vector src/webgpu/kernels/qo.wgsl.
const QO_KERNELS = new Set(['matvec', 'gateup', 'embed']);
// ... and the kernels that write the quantised input of mm_sg.wgsl / mm_dp.wgsl src/webgpu/kernels/xq.wgsl.
const XQ_KERNELS = new Set(['quant', 'rmsnorm', 'swiglu', 'attention_q']);
// Kernels assembled from another's body and an ending of their own: attention.wgsl's output
// through attn_o.wgsl (f32) or attn_xq.wgsl (quantised for mm_sg / mm_dp).
// attn_one.wgsl's bindings: attn_io.wgsl (read-only cache) or attn_io_r.wgsl (RoPE and the cache write).
const BODY = { attention: ['attention', 'attn_o'], attention_q: ['attention', 'attn_xq'], attn_one: ['attn_one', 'attn_io'],
  attn_one_r: ['attn_one', 'attn_io_r'] };
// Kernels of the generic plan that read weights of any type get src/webgpu/kernels/dq.wgsl.
const DQ_KERNELS = new Set(['dq_mv', 'dq_mvb', 'dq_mm', 'dq_mmt', 'dq_mms', 'dq_embed']);
// ... and the prompt product on subgroup matrices needs WGSL's experimental extension.
const SGMAT_KERNELS = new Set(['mm_sg', 'dq_mms']);
// The one subgroup-matrix shape mm_sg.wgsl is written for.
const SGMAT_CONFIG = { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 16, K: 32 };

// Words of the command at w[i].
function opSize(w, i) {
  switch (w[i]) {
    case OP.BUFFER: case OP.WRITE: return 5;
    case OP.PIPELINE: return 5 + w[i + 4] * 3;
    case OP.BINDGROUP: return 4 + w[i + 3] * 4;
    case OP.DISPATCH: return 6;
    case OP.READ: return 4;
    case OP.FREE: return 3;
    default: throw new GpuError(`bad command ${w[i]} at word ${i}`);
  }
}

function hasPipelines(w) {
  for (let i = 0; i < w.length; i += opSize(w, i)) if (w[i] === OP.PIPELINE) return true;
  return false;
}

// A PIPELINE command: its id, kernel name and override constants.
function pipelineOp(w, i, str) {
  const [id, np, nl, nc] = [w[i + 1], w[i + 2], w[i + 3], w[i + 4]];
  const constants = {};
  for (let c = 0; c < nc; c++) {
    const b = i + 5 + c * 3;
    constants[str(w[b], w[b + 1])] = w[b + 2];
  }
  return { id, name: str(np, nl), constants };
}

export class GpuError extends Error {
  constructor(message, { lost = false } = {}) {
    super(message);
    this.name = 'GpuError';
    this.lost = lost;
  }
}

// Asks for an adapter and a device with the adapter's largest buffer limits. Returns null when
// there is no adapter. Subgroups are used only when the device promises one subgroup size for
// every pipeline and a probe shows subgroups laid out contiguously (red_sg.wgsl relies on it).
// Subgroup matrices (the experimental 'chromium-experimental-subgroup-matrix' feature: Chrome
// behind a flag, Dawn with allow_unsafe_apis) are used when the adapter offers int8 16 x 16 x 32
// products on 32-wide subgroups; `sgMat` says whether the device has them.
// limits: { maxStorageBufferBindingSize, maxBufferSize } to ask for instead of the adapter's
// largest (no more than the adapter has).
export async function openDevice(gpu, { subgroups = true, subgroupMatrix = true, powerPreference = 'high-performance',
  timestamps = false, limits = {} } = {}) {
  if (!gpu) return null;
  const adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) return null;
  const L = adapter.limits;
  const requiredLimits = {
    maxStorageBufferBindingSize: Math.min(L.maxStorageBufferBindingSize, limits.maxStorageBufferBindingSize ?? Infinity),
    maxBufferSize: Math.min(L.maxBufferSize, limits.maxBufferSize ?? Infinity),
    maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
    maxStorageBuffersPerShaderStage: Math.min(L.maxStorageBuffersPerShaderStage, 10),
  };
  const info = adapter.info ?? {};
  const canSg = subgroups && adapter.features.has('subgroups') && info.subgroupMinSize > 0 &&
    info.subgroupMinSize === info.subgroupMaxSize;
  const requiredFeatures = canSg ? ['subgroups'] : [];
  const canMat = canSg && subgroupMatrix && info.subgroupMinSize === 32 &&
    adapter.features.has('chromium-experimental-subgroup-matrix') &&
    [...(info.subgroupMatrixConfigs ?? [])].some((c) => Object.entries(SGMAT_CONFIG).every(([k, v]) => c[k] === v));
  if (canMat) requiredFeatures.push('chromium-experimental-subgroup-matrix');
  if (timestamps && adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  let sgSize = 0;
  if (canSg) {
    try {
      sgSize = await probeSubgroups(device, info.subgroupMinSize);
    } catch {
      sgSize = 0;
    }
  }
  // A CPU implementation of WebGPU (SwiftShader, Chrome's fallback adapter): the engine shapes
  // some dispatches for it (fewer, larger workgroups).
  const cpu = !!(adapter.isFallbackAdapter || info.isFallbackAdapter ||
    /swiftshader|llvmpipe|lavapipe/i.test(`${info.vendor ?? ''} ${info.architecture ?? ''} ${info.description ?? ''}`));
  return { adapter, device, sgSize, sgMat: canMat && sgSize === 32, info, cpu };
}

async function probeSubgroups(device, expect) {
  const code = `enable subgroups;
@group(0) @binding(0) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) i: u32, @builtin(subgroup_size) s: u32,
        @builtin(subgroup_invocation_id) l: u32) { o[i] = s | (l << 16u); }`;
  const pipe = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
  const buf = device.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const rd = device.createBuffer({ size: 1024, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipe);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] }));
  pass.dispatchWorkgroups(1);
  pass.end();
  enc.copyBufferToBuffer(buf, 0, rd, 0, 1024);
  device.queue.submit([enc.finish()]);
  await rd.mapAsync(GPUMapMode.READ);
  const v = new Uint32Array(rd.getMappedRange().slice(0));
  rd.unmap();
  buf.destroy();
  rd.destroy();
  const s = v[0] & 0xffff;
  if (s !== expect || s < 4 || s > 128 || (s & (s - 1)) !== 0) return 0;
  for (let i = 0; i < 256; i++) if ((v[i] & 0xffff) !== s || v[i] >>> 16 !== i % s) return 0;
  return s;
}

export class GpuBridge {
  // kernels: { name: WGSL source } (build/wasm/kernels.mjs); sgSize: from openDevice. loadMore
  // (set by the engine): a function resolving to the kernels not given here (the generic plan's,
  // build/wasm/kernels-generic.mjs), called once, when a command list first names one of them.
  constructor(device, kernels, sgSize = 0) {
    this.device = device;
    this.kernels = { ...kernels };
    this.loadMore = null;
    this.moreP = null;
    this.sgSize = sgSize;
    this.objects = new Map(); // id -> GPUBuffer | { pipeline, layout } | GPUBindGroup
    this.modules = new Map();
    this.staging = new Map(); // size -> [GPUBuffer] free MAP_READ buffers
    this.lost = null;
    this.uncaptured = null;
    this.dispatches = 0;      // dispatches in the last list (for reporting)
    // Lists that create pipelines compile them asynchronously and in parallel (execDeferred).
    this.asyncPipelines = true;
    this.pending = null;      // the deferred list in flight: later lists run after it
    this.compileMs = 0;       // the last deferred list's compile time (first request to last pipeline)
    // Tests: a function rewriting a subgroup-matrix kernel's source for a device without subgroup
    // matrices (tests/sgmat-emu.mjs emulates the builtins), or null.
    this.sgMatSource = null;
    device.lost.then((info) => {
      this.lost = `GPU device lost${info?.message ? ': ' + info.message : ''}`;
    });
    device.onuncapturederror = (ev) => {
      this.uncaptured ??= ev.error?.message ?? String(ev.error);
    };
  }

  // The WGSL of a kernel: the reductions for this device, the shared declarations, the Q1_0 or
  // any-type weight readers where needed, and the kernel itself.
  source(name) {
    const k = this.kernels;
    const [body, tail] = BODY[name] ?? [name, null];
    if (!k[body] || (tail && !k[tail])) throw new GpuError(`unknown kernel '${name}'`);
    // Subgroup-matrix kernels place a subgroup's matrices by its index in the workgroup, which
    // WGSL's uniformity analysis cannot see is uniform across the subgroup: that diagnostic goes
    // off (after every enable: directives come first).
    const sgm = SGMAT_KERNELS.has(name);
    const en = (sgm ? 'enable chromium_experimental_subgroup_matrix;\n' : '') + (this.sgSize ? 'enable subgroups;\n' : '') +
      (sgm ? 'diagnostic(off, chromium.subgroup_matrix_uniformity);\n' : '');
    const head = en + (this.sgSize ? k.red_sg : k.red_wg);
    const src = head + '\n' + k.common + '\n' + (Q1_KERNELS.has(name) ? k.q1 + '\n' : '') + (DQ_KERNELS.has(name) ? k.dq + '\n' : '') +
      (QX_KERNELS.has(name) ? k.qx + '\n' : '') + (QO_KERNELS.has(name) ? k.qo + '\n' : '') +
      (XQ_KERNELS.has(name) ? k.xq + '\n' : '') + k[body] + (tail ? '\n' + k[tail] : '');
    return sgm && this.sgMatSource ? this.sgMatSource(src, name) : src;
  }

  module(name) {
    let m = this.modules.get(name);
    if (!m) {
      m = this.device.createShaderModule({ code: this.source(name), label: name });
      this.modules.set(name, m);
    }
    return m;
  }

  check() {
    if (this.lost) throw new GpuError(this.lost, { lost: true });
    if (this.uncaptured) {
      const e = this.uncaptured;
      this.uncaptured = null;
      throw new GpuError(`GPU error: ${e}`);
    }
  }

  // Runs the command list of `len` words at `ptr` in the wasm memory of module M. Returns a
  // promise of the read-back data (one ArrayBuffer per READ, in order) that also carries every
  // error of this list. The promise may be awaited later (the next list can be issued first).
  exec(M, ptr, len) {
    this.check();
    const w = new Uint32Array(M.HEAPU8.buffer, ptr >>> 0, len).slice();
    const lacking = hasPipelines(w) && this.lacks(M.HEAPU8, w);
    if (this.pending || lacking || (this.asyncPipelines && hasPipelines(w))) {
      return this.execDeferred(M, w, this.asyncPipelines, lacking);
    }
    return this.execNow(M.HEAPU8, w, null);
  }

  // Whether a list's pipelines name kernels this bridge does not have yet (the generic plan's,
  // kernels-generic.mjs, imported on first use through loadMore).
  lacks(heap, w) {
    const str = (p, n) => new TextDecoder().decode(heap.subarray(p >>> 0, (p >>> 0) + n));
    for (let i = 0; i < w.length; i += opSize(w, i)) {
      if (w[i] !== OP.PIPELINE) continue;
      const { name } = pipelineOp(w, i, str);
      if ((BODY[name] ?? [name]).some((part) => !this.kernels[part])) return true;
    }
    return false;
  }

  // The kernels the constructor did not get, once: loadMore() resolves to { name: source }.
  more() {
    if (!this.loadMore) return Promise.resolve();
    this.moreP ??= this.loadMore().then((k) => {
      for (const [name, src] of Object.entries(k)) if (!(name in this.kernels)) this.kernels[name] = src;
    }, (e) => {
      this.moreP = null;
      throw new GpuError(`the generic plan's kernels could not be loaded: ${e.message ?? e}`);
    });
    return this.moreP;
  }

  // A list with pipelines: they are compiled with createComputePipelineAsync, all at once (Dawn
  // and browsers compile them on worker threads, in parallel), and the list runs when the last
  // one is ready. What the list reads from wasm memory (names, written bytes) is copied now, as the
  // caller may reuse that memory before then. Lists issued meanwhile wait their turn.
  // compile false: the list waits its turn (or for kernels still to be imported) and its
  // pipelines are then compiled one by one as execNow meets them. lacking: it names kernels still
  // to be imported (lacks).
  execDeferred(M, w, compile = true, lacking = false) {
    const heap = M.HEAPU8, dev = this.device;
    const str = (p, n) => new TextDecoder().decode(heap.subarray(p >>> 0, (p >>> 0) + n));
    const snap = { writes: new Map(), made: new Set() };
    const ops = [];
    for (let i = 0; i < w.length; i += opSize(w, i)) {
      if (w[i] === OP.WRITE) snap.writes.set(i, heap.slice(w[i + 3] >>> 0, (w[i + 3] >>> 0) + w[i + 4]));
      if (w[i] !== OP.PIPELINE || !compile) continue;
      ops.push(pipelineOp(w, i, str));
      snap.made.add(i);
    }
    const start = () => Promise.all(ops.map(({ id, name, constants }) => {
      const t0 = performance.now();
      return dev.createComputePipelineAsync({ layout: 'auto', label: name, compute: { module: this.module(name), entryPoint: 'main', constants } })
        .then((pipeline) => {
          this.objects.set(id, { pipeline, layout: pipeline.getBindGroupLayout(0), name });
          this.compileMs = Math.max(this.compileMs, performance.now() - t0);
        }, (e) => { throw new GpuError(`GPU pipeline '${name}' failed: ${e.message ?? e}`); });
    }));
    this.compileMs = 0;
    const compiles = lacking ? this.more().then(start) : start();
    compiles.catch(() => {});
    const prev = this.pending ?? Promise.resolve();
    const run = (async () => {
      await prev.catch(() => {});
      await compiles;
      return this.execNow(heap, w, snap);
    })();
    const tail = run.then(() => {}, () => {});
    this.pending = tail;
    tail.then(() => { if (this.pending === tail) this.pending = null; });
    run.catch(() => {});
    return run;
  }

  // snap (deferred lists): the bytes of each WRITE, and the PIPELINE ops already carried out.
  execNow(heap, w, snap) {
    const dev = this.device;
    const str = (p, n) => new TextDecoder().decode(heap.subarray(p >>> 0, (p >>> 0) + n));
    const get = (id) => {
      const o = this.objects.get(id);
      if (!o) throw new GpuError(`command list names unknown object ${id}`);
      return o;
    };
    dev.pushErrorScope('out-of-memory');
    dev.pushErrorScope('validation');
    let enc = null, pass = null, curPipe = -1, nd = 0;
    const reads = [];
    let thrown = null;
    try {
      for (let i = 0; i < w.length;) {
        const op = w[i];
        switch (op) {
          case OP.BUFFER: {
            const [id, lo, hi, use] = [w[i + 1], w[i + 2], w[i + 3], w[i + 4]];
            let usage = GPUBufferUsage.COPY_DST;
            if (use & U.STORAGE) usage |= GPUBufferUsage.STORAGE;
            if (use & U.UNIFORM) usage |= GPUBufferUsage.UNIFORM;
            if (use & U.COPY_SRC) usage |= GPUBufferUsage.COPY_SRC;
            this.objects.set(id, dev.createBuffer({ size: hi * 4294967296 + lo, usage }));
            i += 5;
            break;
          }
          case OP.PIPELINE: {
            if (!snap?.made.has(i)) {
              const { id, name, constants } = pipelineOp(w, i, str);
              const pipeline = dev.createComputePipeline({
                layout: 'auto', label: name, compute: { module: this.module(name), entryPoint: 'main', constants },
              });
              this.objects.set(id, { pipeline, layout: pipeline.getBindGroupLayout(0), name });
            }
            i += opSize(w, i);
            break;
          }
          case OP.BINDGROUP: {
            const [id, pid, n] = [w[i + 1], w[i + 2], w[i + 3]];
            const p = get(pid);
            const entries = [];
            for (let e = 0; e < n; e++) {
              const b = i + 4 + e * 4;
              const resource = { buffer: get(w[b + 1]), offset: w[b + 2] };
              if (w[b + 3]) resource.size = w[b + 3];
              entries.push({ binding: w[b], resource });
            }
            this.objects.set(id, dev.createBindGroup({ layout: p.layout, entries, label: p.name }));
            i += 4 + n * 4;
            break;
          }
          case OP.WRITE: {
            if (pass) throw new GpuError('command list writes after a dispatch');
            const data = snap?.writes.get(i);
            if (data) dev.queue.writeBuffer(get(w[i + 1]), w[i + 2], data, 0, w[i + 4]);
            else dev.queue.writeBuffer(get(w[i + 1]), w[i + 2], heap, w[i + 3] >>> 0, w[i + 4]);
            i += 5;
            break;
          }
          case OP.DISPATCH: {
            if (!pass) {
              enc = dev.createCommandEncoder();
              pass = enc.beginComputePass();
            }
            if (w[i + 1] !== curPipe) {
              pass.setPipeline(get(w[i + 1]).pipeline);
              curPipe = w[i + 1];
            }
            pass.setBindGroup(0, get(w[i + 2]));
            pass.dispatchWorkgroups(w[i + 3], w[i + 4], w[i + 5]);
            nd++;
            i += 6;
            break;
          }
          case OP.READ: {
            reads.push({ buf: get(w[i + 1]), off: w[i + 2], size: w[i + 3] });
            i += 4;
            break;
          }
          case OP.FREE: {
            for (let id = w[i + 1], end = w[i + 1] + w[i + 2]; id < end; id++) {
              const o = this.objects.get(id);
              if (o && typeof o.destroy === 'function') o.destroy();
              this.objects.delete(id);
            }
            i += 3;
            break;
          }
          default:
            throw new GpuError(`bad command ${op} at word ${i}`);
        }
      }
      if (pass) pass.end();
      const stag = [];
      if (reads.length) {
        enc ??= dev.createCommandEncoder();
        for (const r of reads) {
          const s = this.takeStaging(r.size);
          enc.copyBufferToBuffer(r.buf, r.off, s, 0, r.size);
          stag.push(s);
        }
      }
      if (enc) dev.queue.submit([enc.finish()]);
      this.dispatches = nd;
      var staged = stag;
    } catch (e) {
      thrown = e;
    }
    const scopes = Promise.all([dev.popErrorScope(), dev.popErrorScope()]);
    const done = (async () => {
      let errs;
      try {
        errs = await scopes;
      } catch (e) {
        errs = [];
        if (!this.lost) throw new GpuError(`GPU error: ${e.message ?? e}`);
      }
      if (thrown) throw thrown instanceof GpuError ? thrown : new GpuError(String(thrown.message ?? thrown));
      this.check();
      const err = errs.find((e) => e);
      if (err) {
        const oom = err.constructor?.name === 'GPUOutOfMemoryError' || /out of memory/i.test(err.message);
        throw new GpuError(`${oom ? 'GPU out of memory' : 'GPU validation error'}: ${err.message}`);
      }
      const out = [];
      for (let k = 0; k < staged.length; k++) {
        const s = staged[k];
        try {
          await s.mapAsync(GPUMapMode.READ, 0, reads[k].size);
        } catch (e) {
          this.check();
          throw new GpuError(`GPU readback failed: ${e.message ?? e}`, { lost: !!this.lost });
        }
        out.push(s.getMappedRange(0, reads[k].size).slice(0));
        s.unmap();
        this.giveStaging(s);
      }
      return out;
    })();
    done.catch(() => {}); // handled by whoever awaits it; never an unhandled rejection
    return done;
  }

  // Profiling: runs a step's command list with every dispatch in a compute pass of its own,
  // bracketed by timestamp queries, so the GPU time of each kernel can be attributed. Needs a
  // device opened with { timestamps: true } on an adapter with 'timestamp-query'. Also replays
  // the list's dispatches `reps` times in ONE pass (as exec records them) and times that with
  // the wall clock. Returns { reads, times: Map('kernel@gridXxgridY' -> {ms, count}), gpuMs, passMs, hostMs }:
  // gpuMs = the sum of the per-kernel times, passMs = wall time per replay of the whole list in
  // one pass (includes inter-dispatch barriers), hostMs = the time to record it.
  async execTimed(M, ptr, len, reps = 20) {
    this.check();
    const dev = this.device;
    if (!dev.features.has('timestamp-query')) throw new GpuError('execTimed needs the timestamp-query feature');
    const w = new Uint32Array(M.HEAPU8.buffer, ptr >>> 0, len).slice();
    const disp = [];
    const rest = [];
    for (let i = 0; i < w.length;) {
      const op = w[i];
      const size = op === OP.WRITE ? 5 : op === OP.DISPATCH ? 6 : op === OP.READ ? 4 : 0;
      if (!size) throw new GpuError('execTimed runs step lists only (writes, dispatches, reads)');
      if (op === OP.DISPATCH) disp.push(w.slice(i + 1, i + 6));
      else if (op === OP.WRITE) dev.queue.writeBuffer(this.objects.get(w[i + 1]), w[i + 2], M.HEAPU8, w[i + 3] >>> 0, w[i + 4]);
      else rest.push(...w.subarray(i, i + size));
      i += size;
    }
    const n = disp.length;
    const qs = dev.createQuerySet({ type: 'timestamp', count: 2 * n });
    const res = dev.createBuffer({ size: 16 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const rd = dev.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dev.createCommandEncoder();
    disp.forEach((d, k) => {
      const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 } });
      pass.setPipeline(this.objects.get(d[0]).pipeline);
      pass.setBindGroup(0, this.objects.get(d[1]));
      pass.dispatchWorkgroups(d[2], d[3], d[4]);
      pass.end();
    });
    enc.resolveQuerySet(qs, 0, 2 * n, res, 0);
    enc.copyBufferToBuffer(res, 0, rd, 0, 16 * n);
    dev.queue.submit([enc.finish()]);
    await rd.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(rd.getMappedRange().slice(0));
    rd.unmap();
    const times = new Map();
    let gpuMs = 0;
    disp.forEach((d, k) => {
      const ms = Number(t[2 * k + 1] - t[2 * k]) / 1e6;
      const name = `${this.objects.get(d[0]).name}@${d[2]}x${d[3]}`;
      const e = times.get(name) ?? { ms: 0, count: 0 };
      e.ms += ms;
      e.count++;
      times.set(name, e);
      gpuMs += ms;
    });
    qs.destroy();
    res.destroy();
    rd.destroy();
    // The whole list in one pass, reps times.
    await dev.queue.onSubmittedWorkDone();
    const h0 = performance.now();
    const enc2 = dev.createCommandEncoder();
    const pass = enc2.beginComputePass();
    for (let r = 0; r < reps; r++)
      for (const d of disp) {
        pass.setPipeline(this.objects.get(d[0]).pipeline);
        pass.setBindGroup(0, this.objects.get(d[1]));
        pass.dispatchWorkgroups(d[2], d[3], d[4]);
      }
    pass.end();
    const cb = enc2.finish();
    const hostMs = (performance.now() - h0) / reps;
    const p0 = performance.now();
    dev.queue.submit([cb]);
    await dev.queue.onSubmittedWorkDone();
    const passMs = (performance.now() - p0) / reps;
    const ptr2 = M._malloc(rest.length * 4 + 4) >>> 0;
    M.HEAPU32.set(rest, ptr2 >>> 2);
    const reads = await this.exec(M, ptr2, rest.length);
    M._free(ptr2);
    return { reads, times, gpuMs, passMs, hostMs };
  }

  takeStaging(size) {
    const sz = Math.max(4, Math.ceil(size / 4) * 4);
    const free = this.staging.get(sz);
    if (free && free.length) return free.pop();
    const b = this.device.createBuffer({ size: sz, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    b._obSize = sz;
    return b;
  }

  giveStaging(b) {
    const list = this.staging.get(b._obSize) ?? [];
    if (list.length < 4) {
      list.push(b);
      this.staging.set(b._obSize, list);
    } else {
      b.destroy();
    }
  }

  // Writes bytes straight into a buffer C created (the weight upload path).
  write(id, offset, bytes) {
    this.check();
    const b = this.objects.get(id);
    if (!b) throw new GpuError(`upload to unknown buffer ${id}`);
    this.device.queue.writeBuffer(b, offset, bytes, 0, bytes.length);
  }

  async idle() {
    this.check();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  destroy() {
    for (const o of this.objects.values()) if (o && typeof o.destroy === 'function') o.destroy();
    for (const l of this.staging.values()) for (const b of l) b.destroy();
    this.objects.clear();
    this.staging.clear();
  }
}
