// app.js — the chat page (web/index.html): model download and storage, the engine worker
// (web/worker.js), the conversation and its rendering. Plain DOM, no framework.
//
// Storage: models live in the Origin Private File System (folder "models"), or in the Cache API
// where OPFS is missing; their names, sizes, source URLs and SHA-256 digests live in
// localStorage ("onebit.models"), and every load from storage checks the digest first, so a
// damaged file is reported instead of loaded. Downloads commit every few MiB and resume with an
// HTTP Range request after an interruption. The conversation and settings live in localStorage
// ("onebit.chat"). When the page comes from `onebit serve` (GET v1/models answers), the model that
// server runs is offered first and, unless another model was chosen last time, used right away:
// the conversation then goes through the server's own API (ServedModel below), with no download;
// "Run it in this browser" fetches that same file from the server. Model output is untrusted: every piece of it is HTML-escaped before the small
// Markdown renderer below adds its own tags. Not here: the engine (web/onebit.js, web/engine.mjs).

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const BACKEND = ['cpu', 'webgpu', 'auto'].includes(params.get('backend')) ? params.get('backend') : 'auto';
const DEMO_URL = new URL('models/demo.gguf', location.href).href;
const COMMIT_EVERY = 8 << 20; // bytes between commits of a download to storage (resume points)
const SERVED = '@served'; // onebit.last when the served model was the last one used

// The real files the model field suggests (PrismML's Hugging Face repositories), with their sizes:
// from the model cards (Bonsai: "deployed size"; Ternary-Bonsai 8B: the _g64 file as listed), or
// estimated from the shape (parameters x bits per weight: Q1_0 1.125, Q2_0 2.25), marked est.
// The Ternary files are the Q2_0_g64 ones: 64 weights in 18 bytes, the upstream llama.cpp Q2_0
// (GGML type 42) that onebit reads; PrismML's older Ternary-Bonsai-*-Q2_0.gguf store 128-weight
// blocks under the same type number and load only in PrismML's fork.
const HF = 'https://huggingface.co/prism-ml';
export const SUGGESTED = [
  { name: 'Bonsai 1.7B', type: 'Q1_0', bytes: 0.24e9, url: `${HF}/Bonsai-1.7B-gguf/resolve/main/Bonsai-1.7B-Q1_0.gguf` },
  { name: 'Bonsai 4B', type: 'Q1_0', bytes: 0.57e9, url: `${HF}/Bonsai-4B-gguf/resolve/main/Bonsai-4B-Q1_0.gguf` },
  { name: 'Bonsai 8B', type: 'Q1_0', bytes: 1.15e9, url: `${HF}/Bonsai-8B-gguf/resolve/main/Bonsai-8B-Q1_0.gguf` },
  { name: 'Ternary-Bonsai 1.7B', type: 'Q2_0', bytes: 1.72e9 * 2.25 / 8, est: true,
    url: `${HF}/Ternary-Bonsai-1.7B-gguf/resolve/main/Ternary-Bonsai-1.7B-Q2_0_g64.gguf` },
  { name: 'Ternary-Bonsai 4B', type: 'Q2_0', bytes: 4.02e9 * 2.25 / 8, est: true,
    url: `${HF}/Ternary-Bonsai-4B-gguf/resolve/main/Ternary-Bonsai-4B-Q2_0_g64.gguf` },
  { name: 'Ternary-Bonsai 8B', type: 'Q2_0', bytes: 2.31e9, url: `${HF}/Ternary-Bonsai-8B-gguf/resolve/main/Ternary-Bonsai-8B-Q2_0_g64.gguf` },
];

// ---- persistent state ---------------------------------------------------------------------

const load = (k, d) => { try { return JSON.parse(localStorage.getItem(k)) ?? d; } catch { return d; } };
const save = (k, v) => { try { localStorage.setItem(k, JSON.stringify(v)); } catch { /* full: keep going */ } };
const chat = Object.assign({ messages: [], system: '', thinking: false, temperature: 0.7, topP: 0.8, maxTokens: 512, seed: '' },
  load('onebit.chat', {}));
const saveChat = () => save('onebit.chat', chat);
let models = load('onebit.models', []); // [{name, size, sha256, url, partial, done}]
const saveModels = () => save('onebit.models', models);

// ---- formatting ---------------------------------------------------------------------------

function bytes(n) {
  if (!Number.isFinite(n)) return '?';
  const u = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i && n < 100 ? 1 : 0)} ${u[i]}`;
}
const secs = (s) => (s < 90 ? `${Math.ceil(s)} s` : `${Math.floor(s / 60)} min ${Math.ceil(s % 60)} s`);
const esc = (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// Markdown subset (code fences, inline code, bold, italic, headings, lists, http(s) links) over
// text that is escaped first: no tag or attribute of the model's making survives.
function inline(s) {
  return s
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>')
    .replace(/\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2" rel="noopener noreferrer nofollow" target="_blank">$1</a>');
}
export function markdown(src) {
  const out = [];
  const parts = esc(src).split(/^```[^\n]*\n?/m);
  parts.forEach((part, i) => {
    if (i % 2) { out.push(`<pre><code>${part.replace(/\n$/, '')}</code></pre>`); return; }
    let list = null, para = [];
    const flush = () => {
      if (para.length) out.push(`<p>${inline(para.join('<br>'))}</p>`);
      para = [];
      if (list) { out.push(`</${list}>`); list = null; }
    };
    for (const line of part.split('\n')) {
      let m;
      if (!line.trim()) flush();
      else if ((m = /^(#{1,4})\s+(.*)$/.exec(line))) { flush(); out.push(`<h${m[1].length + 2}>${inline(m[2])}</h${m[1].length + 2}>`); }
      else if ((m = /^\s*(?:[-*]|(\d+)\.)\s+(.*)$/.exec(line))) {
        const kind = m[1] ? 'ol' : 'ul';
        if (para.length) { out.push(`<p>${inline(para.join('<br>'))}</p>`); para = []; }
        if (list !== kind) { if (list) out.push(`</${list}>`); out.push(`<${kind}>`); list = kind; }
        out.push(`<li>${inline(m[2])}</li>`);
      } else {
        if (list) { out.push(`</${list}>`); list = null; }
        para.push(line);
      }
    }
    flush();
  });
  return out.join('');
}

// An answer: Qwen3's <think>…</think> block folded, then the reply.
function renderAnswer(text) {
  const m = /^\s*<think>([\s\S]*?)(<\/think>|$)/.exec(text);
  if (!m) return markdown(text);
  const think = m[1].trim();
  const rest = text.slice(m[0].length);
  return (think ? `<details class="think"><summary>Thinking${m[2] ? '' : '…'}</summary>${markdown(think)}</details>` : '') + markdown(rest);
}

// ---- UI helpers ---------------------------------------------------------------------------

const setStatus = (s) => { $('status').textContent = s; };
let readyText = ''; // the status line while a model is loaded and idle
function banner(text, { recover = false } = {}) {
  $('banner-text').textContent = text;
  $('recover').hidden = !recover;
  $('banner').hidden = false;
}
const clearBanner = () => { $('banner').hidden = true; };

function figures(f) {
  for (const [k, v] of Object.entries(f)) $(`f-${k}`).textContent = v;
}

// ---- storage: OPFS, or the Cache API ------------------------------------------------------

let opfs = null;
async function storageDir() {
  if (opfs === null) {
    try {
      opfs = await (await navigator.storage.getDirectory()).getDirectoryHandle('models', { create: true });
    } catch {
      opfs = false;
    }
  }
  return opfs || null;
}
const CACHE = 'onebit-models';
const cacheKey = (name) => new URL(`onebit-stored-model/${encodeURIComponent(name)}`, location.href).href;

async function storedFile(name) {
  const dir = await storageDir();
  if (dir) return (await dir.getFileHandle(name)).getFile();
  const r = await (await caches.open(CACHE)).match(cacheKey(name));
  if (!r) throw new Error('not in storage');
  return r.blob();
}
async function storedSize(name) {
  try {
    return (await storedFile(name)).size;
  } catch {
    return 0;
  }
}
async function removeStored(name) {
  const dir = await storageDir();
  try {
    if (dir) await dir.removeEntry(name);
    else await (await caches.open(CACHE)).delete(cacheKey(name));
  } catch { /* already gone */ }
}

// A writer that appends to a stored model and commits every COMMIT_EVERY bytes, so that an
// interrupted download keeps what it had (OPFS); the Cache API keeps the parts in memory and
// stores them once at the end.
async function openWriter(name, offset) {
  const dir = await storageDir();
  if (!dir) {
    const parts = offset ? [await storedFile(name)] : [];
    return {
      write: async (b) => { parts.push(b); },
      commit: async () => {},
      close: async () => { await (await caches.open(CACHE)).put(cacheKey(name), new Response(new Blob(parts))); },
    };
  }
  const fh = await dir.getFileHandle(name, { create: true });
  let w = null, pos = offset, since = 0;
  const open = async () => {
    w = await fh.createWritable({ keepExistingData: pos > 0 });
    if (pos > 0) await w.seek(pos);
    if (pos === 0) await w.truncate(0);
  };
  await open();
  return {
    async write(b) {
      await w.write(b);
      pos += b.length;
      since += b.length;
      if (since >= COMMIT_EVERY) { since = 0; await w.close(); await open(); }
    },
    async commit() { await w.close(); w = null; },
    async close() { if (w) await w.close(); w = null; },
  };
}

async function sha256(blob) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  return Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('');
}

function quotaError(e) {
  return e?.name === 'QuotaExceededError' || /quota/i.test(String(e?.message));
}

async function checkQuota(need) {
  const est = await navigator.storage?.estimate?.();
  if (est && est.quota && need > est.quota - est.usage)
    throw Object.assign(new Error(`Not enough storage for this model: it needs ${bytes(need)}, this site may use ${bytes(est.quota - est.usage)} more. ` +
      'Delete stored models or free disk space.'), { quota: true });
}

async function refreshStored() {
  const ul = $('stored');
  ul.textContent = '';
  if (!models.length) ul.innerHTML = '<li class="small">None yet.</li>';
  for (const m of models) {
    const li = document.createElement('li');
    const span = document.createElement('span');
    span.textContent = `${m.name} — ${bytes(m.partial ? m.have : m.size)}${m.partial ? ` of ${bytes(m.size)} (interrupted)` : ''}`;
    li.append(span);
    const act = document.createElement('button');
    act.type = 'button';
    act.textContent = m.partial ? 'Resume' : 'Load';
    act.setAttribute('aria-label', `${act.textContent} ${m.name}`);
    act.onclick = () => (m.partial ? downloadAndLoad(m.url, m.name) : loadStored(m.name));
    const del = document.createElement('button');
    del.type = 'button';
    del.textContent = 'Delete';
    del.setAttribute('aria-label', `Delete ${m.name}`);
    del.onclick = async () => {
      await removeStored(m.name);
      models = models.filter((x) => x.name !== m.name);
      saveModels();
      refreshStored();
    };
    li.append(act, del);
    ul.append(li);
  }
  const est = await navigator.storage?.estimate?.().catch(() => null);
  $('storage-info').textContent = (est ? `Storage used ${bytes(est.usage)} of ${bytes(est.quota)}` : '') +
    ((await storageDir()) ? ' (private file system)' : ' (Cache API)');
}

// ---- downloads ----------------------------------------------------------------------------

let downloading = null; // AbortController of the running download

function progress(show, fraction, text) {
  $('progress').hidden = !show;
  if (fraction !== undefined) $('progress-bar').value = fraction;
  if (text !== undefined) $('progress-text').textContent = text;
}

// Downloads url into storage as `name` (resuming a partial file) and returns its entry.
// opts.heapCheck: the CPU fallback will run it: refuse (until asked again) a file too big for it,
// as soon as the response says its size, before its body is read.
async function download(url, name, opts = {}) {
  let entry = models.find((m) => m.name === name);
  let offset = entry?.partial && entry.url === url ? await storedSize(name) : 0;
  const ac = new AbortController();
  downloading = ac;
  $('cancel-download').hidden = false;
  progress(true, 0, `Connecting to ${new URL(url).host}…`);
  let r;
  try {
    r = await fetch(url, { signal: ac.signal, headers: offset ? { Range: `bytes=${offset}-` } : {} });
  } catch (e) {
    downloading = null;
    if (e.name === 'AbortError') throw new Error('Download cancelled.');
    throw new Error(`Could not download ${name} from ${new URL(url).host}: ` +
      (navigator.onLine === false ? 'this computer is offline. ' : 'the connection failed (offline, blocked by a firewall or proxy, or the site is down). ') +
      (served ? `The model this server runs (${served.id}) works without the internet: “Chat with the served model”.`
        : 'Check the connection and try again, or open a .gguf file from this computer.'));
  }
  if (!r.ok) {
    downloading = null;
    throw new Error(`Could not download ${name}: ${new URL(url).host} answered HTTP ${r.status}${r.status === 404 ? ' (no such file)' : ''}. Check the URL.`);
  }
  if (offset && r.status !== 206) offset = 0; // no ranges here: start again
  const len = Number(r.headers.get('content-length')) || NaN;
  if (opts.heapCheck && offset + len > CPU_MODEL_MAX) {
    ac.abort();
    downloading = null;
    checkedOk = url;
    throw new Error(`${name} (${bytes(offset + len)}) is too big for this browser's CPU fallback (WebAssembly), which holds the ` +
      `whole file in at most 4 GiB of memory; this browser has no usable WebGPU. Press “Download & load” again to download it anyway.`);
  }
  const total = offset + len;
  await checkQuota(Number.isFinite(len) ? len : 0);
  entry = { name, url, size: total, have: offset, partial: true };
  models = models.filter((m) => m.name !== name).concat(entry);
  saveModels();
  const w = await openWriter(name, offset);
  const t0 = performance.now();
  let got = 0, shown = 0;
  try {
    const reader = r.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await w.write(value);
      got += value.length;
      entry.have = offset + got;
      const now = performance.now();
      if (now - shown > 200) {
        shown = now;
        saveModels();
        const speed = got / ((now - t0) / 1000);
        progress(true, total ? entry.have / total : 0, `${bytes(entry.have)} of ${bytes(total)} · ${bytes(speed)}/s` +
          (Number.isFinite(total) && speed > 0 ? ` · ${secs((total - entry.have) / speed)} left` : ''));
      }
    }
    await w.close();
  } catch (e) {
    await w.close().catch(() => {});
    saveModels();
    refreshStored();
    if (quotaError(e)) throw new Error('Storage is full: the browser refused to store more of this model. Delete stored models or free disk space.');
    if (e.name === 'AbortError') throw new Error(`Download cancelled at ${bytes(entry.have)}; “Resume” in the stored list continues it.`);
    throw new Error(`Download interrupted at ${bytes(entry.have)} of ${bytes(total)} (${e.message}); “Resume” in the stored list continues it.`);
  } finally {
    downloading = null;
  }
  if (Number.isFinite(total) && entry.have !== total) throw new Error(`Download incomplete: ${bytes(entry.have)} of ${bytes(total)}`);
  progress(true, 1, 'Verifying (SHA-256)…');
  const file = await storedFile(name);
  Object.assign(entry, { size: file.size, have: file.size, partial: false, sha256: await sha256(file), stored: Date.now() });
  saveModels();
  refreshStored();
  return entry;
}

async function storeFile(file) {
  const name = file.name.replace(/[^\w.\-]+/g, '_') || 'model.gguf';
  await checkQuota(file.size);
  progress(true, 0, `Storing ${name}…`);
  const w = await openWriter(name, 0);
  try {
    for (let o = 0; o < file.size; o += COMMIT_EVERY) {
      await w.write(new Uint8Array(await file.slice(o, o + COMMIT_EVERY).arrayBuffer()));
      progress(true, Math.min(1, (o + COMMIT_EVERY) / file.size), `Storing ${name}: ${bytes(Math.min(file.size, o + COMMIT_EVERY))} of ${bytes(file.size)}`);
    }
    await w.close();
  } catch (e) {
    await w.close().catch(() => {});
    await removeStored(name);
    throw quotaError(e) ? new Error('Storage is full: delete stored models or free disk space.') : e;
  }
  const entry = { name, url: null, size: file.size, have: file.size, partial: false, sha256: await sha256(file), stored: Date.now() };
  models = models.filter((m) => m.name !== name).concat(entry);
  saveModels();
  refreshStored();
  return entry;
}

// ---- the engine worker --------------------------------------------------------------------

let worker = null, current = null, busy = false, loaded = false, pending = null, nextId = 1;

function startWorker() {
  worker?.terminate();
  worker = new Worker('worker.js', { type: 'module' });
  worker.onmessage = ({ data: m }) => onWorker(m);
  worker.onerror = (e) => {
    e.preventDefault?.();
    failLoad(`The engine failed to start: ${e.message || 'worker error'}`);
  };
  loaded = false;
}

function failLoad(msg) {
  progress(false);
  setStatus('No model loaded');
  banner(msg);
  if (pending?.reject) pending.reject(new Error(msg));
  pending = null;
  updateButtons();
}

function explain(code, message) {
  if (code === 'device_lost') return 'The GPU device was lost (driver reset or the GPU was needed elsewhere). Recover reloads the model; the conversation is kept.';
  if (code === 'out_of_memory') return `Out of memory: ${message}. Try a smaller model, a shorter context, or close other tabs.`;
  if (code === 'invalid_model') return `This file is not a model onebit can run: ${message}`;
  if (code === 'unsupported') return `This model uses a format onebit does not run yet: ${message}`;
  if (code === 'backend') return `GPU error: ${message}. Recover reloads the model; the conversation is kept.`;
  return message;
}

function onWorker(m) {
  if (m.type === 'checked') {
    checks.get(m.id)?.(m);
    checks.delete(m.id);
    return;
  }
  if (m.type === 'ready') {
    if (!m.webgpu && BACKEND !== 'cpu') $('f-backend').textContent = 'no WebGPU: CPU (WebAssembly)';
  } else if (m.type === 'progress') {
    progress(true, m.fraction, `Loading the model into the engine: ${Math.round(m.fraction * 100)}%`);
  } else if (m.type === 'loaded') {
    loaded = true;
    progress(false);
    const gpuNote = m.backend === 'cpu' && BACKEND === 'auto'
      ? (m.webgpu ? ' (no usable WebGPU adapter: CPU fallback)' : ' (this browser has no WebGPU: CPU fallback)') : '';
    // e.g. "CPU (WebAssembly SIMD, 2 threads)"; threadsNote says why there is one (no isolation).
    const threads = m.threads ?? 1;
    const where = m.backend === 'webgpu' ? 'WebGPU'
      : `CPU (WebAssembly${m.simd ? ' SIMD' : ''}, ${threads} thread${threads === 1 ? '' : 's'})`;
    readyText = `Ready: ${current} on ${where}${gpuNote}`;
    setStatus(readyText);
    $('model-panel').open = false;
    figures({ backend: where + gpuNote + (m.backend !== 'webgpu' && m.threadsNote ? ` (${m.threadsNote})` : ''), adapter: m.adapter, model: `${m.model} (${m.nLayer} layers, context ${m.nCtx})`,
      load: `${(m.loadMs / 1000).toFixed(2)} s` });
    document.body.dataset.state = 'ready';
    pending?.resolve();
    pending = null;
    updateButtons();
  } else if (m.type === 'delta') {
    const msg = chat.messages.at(-1);
    if (msg?.id === m.id) { msg.content += m.text; scheduleRender(); }
  } else if (m.type === 'done') {
    const msg = chat.messages.at(-1);
    if (msg?.id === m.id) {
      msg.streaming = false;
      msg.note = m.finish === 'aborted' ? 'stopped' : m.finish === 'length' ? 'cut at the token limit' : '';
      if (m.timings && m.finish !== 'aborted') {
        const t = m.timings;
        figures({
          pp: t.prompt_n && t.prompt_ms ? `${(t.prompt_n / (t.prompt_ms / 1000)).toFixed(1)} tok/s (${t.prompt_n} tokens)` : '–',
          tg: t.predicted_n && t.predicted_ms ? `${(t.predicted_n / (t.predicted_ms / 1000)).toFixed(1)} tok/s (${t.predicted_n} tokens)` : '–',
          ctx: `${t.n_past} of ${t.n_ctx} tokens`,
        });
      }
    }
    busy = false;
    setStatus(readyText);
    saveChat();
    renderMessages();
    updateButtons();
  } else if (m.type === 'error') {
    if (m.id === undefined) return failLoad(explain(m.code, m.message));
    const msg = chat.messages.at(-1);
    if (msg?.id === m.id && msg.role === 'assistant') {
      msg.streaming = false;
      msg.note = 'failed';
      if (!msg.content) chat.messages.pop();
    }
    busy = false;
    setStatus(readyText);
    saveChat();
    renderMessages();
    const recover = ['device_lost', 'backend', 'out_of_memory', 'internal'].includes(m.code);
    if (recover) {
      loaded = false;
      setStatus(`The engine stopped (${m.code.replace('_', ' ')}): press Recover`);
    }
    banner(explain(m.code, m.message), { recover });
    updateButtons();
  }
}

// ---- the served model: when `onebit serve` hosts this page ---------------------------------

let served = null; // the server's /v1/models entry {id, meta: {file, size, n_ctx, backend, ...}}

async function probeServer() {
  try {
    const r = await fetch('v1/models', { signal: AbortSignal.timeout(3000) });
    if (!r.ok) return null;
    return (await r.json())?.data?.[0] ?? null;
  } catch {
    return null; // a static host: no API
  }
}

// Stands in for the engine worker: the same messages in and out, answered by the server's
// /v1/chat/completions (streamed) instead of an engine in this browser.
class ServedModel {
  constructor(info) { this.info = info; this.ac = null; }
  terminate() { this.ac?.abort(); }
  postMessage(m) {
    if (m.type === 'stop') this.ac?.abort();
    else if (m.type === 'chat') this.chat(m);
  }
  async chat(m) {
    const ac = this.ac = new AbortController();
    const { enable_thinking, ...p } = m.params;
    const body = { ...p, model: this.info.id, messages: m.messages, stream: true, stream_options: { include_usage: true },
      chat_template_kwargs: { enable_thinking } };
    let finish = 'length', usage = null, timings = null;
    try {
      let r;
      try {
        r = await fetch('v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: ac.signal });
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        throw Object.assign(new Error(`The onebit server at ${location.host} did not answer: it may have stopped. Start it again (make run) and send again.`), { code: 'server' });
      }
      if (!r.ok) {
        const err = await r.json().catch(() => null);
        throw Object.assign(new Error(`The server refused the request (HTTP ${r.status}): ${err?.error?.message ?? r.statusText}`), { code: 'server' });
      }
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const data = buf.slice(0, i).split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
          buf = buf.slice(i + 2);
          if (!data || data === '[DONE]') continue;
          const c = JSON.parse(data);
          if (c.error) throw Object.assign(new Error(c.error.message), { code: 'server' });
          const d = c.choices?.[0];
          if (d?.delta?.content) onWorker({ type: 'delta', id: m.id, text: d.delta.content });
          if (d?.finish_reason) finish = d.finish_reason;
          if (c.usage) { usage = c.usage; timings = c.timings; }
        }
      }
    } catch (e) {
      if (e.name !== 'AbortError') return onWorker({ type: 'error', id: m.id, code: e.code ?? 'server', message: e.message });
      finish = 'aborted';
    } finally {
      if (this.ac === ac) this.ac = null;
    }
    onWorker({ type: 'done', id: m.id, finish, usage,
      timings: timings && usage ? { ...timings, n_ctx: this.info.meta?.n_ctx,
        n_past: Math.min(usage.total_tokens, this.info.meta?.n_ctx ?? Infinity) } : null }); // the last token is not cached
  }
}

function useServed() {
  clearBanner();
  worker?.terminate();
  worker = new ServedModel(served);
  current = served.id;
  save('onebit.last', SERVED);
  loaded = true;
  const meta = served.meta ?? {};
  readyText = `Ready: ${served.id}, run by onebit serve on this computer (${meta.backend ?? 'CPU'})`;
  setStatus(readyText);
  figures({ backend: `onebit serve (${meta.backend ?? '?'}, native)`, adapter: '– (the server\'s CPU)',
    model: `${served.id} (${bytes(meta.size)}, context ${meta.n_ctx ?? '?'})`, load: 'loaded by the server' });
  document.body.dataset.state = 'ready';
  $('model-panel').open = false;
  updateButtons();
}

// Loads a stored model: check its digest, then hand the file to the worker.
async function loadStored(name) {
  clearBanner();
  const entry = models.find((m) => m.name === name);
  if (!entry) throw new Error(`${name} is not stored`);
  let file;
  try {
    file = await storedFile(name);
  } catch {
    throw new Error(`${name} is missing from storage (the browser may have evicted it): download it again.`);
  }
  progress(true, 0, `Verifying ${name} (SHA-256)…`);
  setStatus(`Verifying ${name}…`);
  const digest = await sha256(file);
  if (file.size !== entry.size || digest !== entry.sha256) {
    progress(false);
    setStatus('No model loaded');
    throw new Error(`The stored copy of ${name} is corrupted (its SHA-256 does not match the one recorded when it was stored). Delete it and download it again.`);
  }
  current = name;
  save('onebit.last', name);
  setStatus(`Loading ${name}…`);
  document.body.dataset.state = 'loading';
  if (!(worker instanceof Worker)) startWorker();
  loaded = false;
  updateButtons();
  const done = new Promise((resolve, reject) => { pending = { resolve, reject }; });
  worker.postMessage({ type: 'load', source: file, backend: BACKEND });
  return done;
}

async function downloadAndLoad(url, name, opts = {}) {
  clearBanner();
  try {
    const stored = models.find((m) => m.name === name && !m.partial && m.url === url);
    if (!stored) await download(url, name, opts);
    await loadStored(name);
  } catch (e) {
    progress(false);
    banner(e.message);
    refreshStored();
  }
}

// ---- will it fit? (before a download) ------------------------------------------------------

const checks = new Map(); // id -> resolve
let checkedOk = null;     // the URL the user chose to download although it will not fit

function suggestionNote() {
  const url = $('model-url').value.trim();
  const s = SUGGESTED.find((x) => x.url === url);
  $('model-note').textContent = s ? `${s.name}, ${s.type} GGUF, ${s.est ? 'about ' : ''}${bytes(s.bytes)}${s.est ? ' (estimated from its shape)' : ''}` : '';
}

// Asks the engine worker whether the model at url would load on this device (its header only:
// the GPU's binding and buffer limits, or the CPU fallback's wasm32 memory). Resolves
// {ok: true | false | null (could not tell), message}.
function checkFit(url) {
  if (!(worker instanceof Worker)) return Promise.resolve({ ok: null });
  const id = nextId++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => { checks.delete(id); resolve({ ok: null, message: 'no answer' }); }, 60000);
    checks.set(id, (m) => { clearTimeout(timer); resolve(m); });
    worker.postMessage({ type: 'check', id, source: url, backend: BACKEND });
  });
}

// The download button: a model that will not fit is not downloaded unless asked twice.
async function downloadChecked(url, name) {
  clearBanner();
  const stored = models.find((m) => m.name === name && !m.partial && m.url === url);
  if (!stored && checkedOk !== url) {
    progress(true, 0, `Checking whether ${name} fits this device…`);
    const r = await checkFit(url);
    progress(false);
    if (r.ok === false) {
      checkedOk = url;
      banner(`${name} cannot run on this device: ${r.message}. Press “Download & load” again to download it anyway.`);
      $('model-note').textContent = `Will not fit: ${r.message}`;
      return;
    }
    cpuOnly = r.backend === 'cpu' || BACKEND === 'cpu';
    // WebGPU does not tell a GPU's memory; the browser's rough figure for the device's memory
    // (navigator.deviceMemory, GB, at most 8) flags what is likely too big for a small device.
    const mem = navigator.deviceMemory;
    if (r.ok && r.backend === 'webgpu' && mem && r.gpuBytes > mem * 1e9 * 0.6) {
      checkedOk = url;
      banner(`${name} needs ${bytes(r.gpuBytes)} of GPU memory for its weights and this device reports about ${mem} GB of memory: ` +
        'it may not fit. Press “Download & load” again to download it anyway.');
      return;
    }
  }
  return downloadAndLoad(url, name, { heapCheck: checkedOk !== url && (cpuOnly || BACKEND === 'cpu') });
}

// The CPU fallback holds the whole file in wasm32 memory: 4 GiB at most, with room for the context.
const CPU_MODEL_MAX = 4 * 1024 ** 3 - (384 << 20);
let cpuOnly = false; // the last check found no WebGPU adapter: the CPU fallback will run

function nameFromUrl(url) {
  const last = decodeURIComponent(new URL(url).pathname.split('/').pop() || 'model.gguf');
  return last.replace(/[^\w.\-]+/g, '_');
}

// ---- the conversation ---------------------------------------------------------------------

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; renderLast(); });
}

function messageItem(m) {
  const li = document.createElement('li');
  li.className = m.role + (m.streaming ? ' streaming' : '');
  fillItem(li, m);
  return li;
}
function fillItem(li, m) {
  const who = `<span class="who">${m.role === 'user' ? 'You' : 'Model'}</span>`;
  const body = m.role === 'user' ? esc(m.content) : renderAnswer(m.content);
  const note = m.note ? `<span class="note">(${esc(m.note)})</span>` : '';
  li.innerHTML = who + body + note;
  li.className = m.role + (m.streaming ? ' streaming' : '');
}

function renderMessages() {
  const ol = $('messages');
  ol.textContent = '';
  for (const m of chat.messages) ol.append(messageItem(m));
  ol.scrollTop = ol.scrollHeight;
}
function renderLast() {
  const ol = $('messages');
  const li = ol.lastElementChild;
  const m = chat.messages.at(-1);
  if (li && m) fillItem(li, m);
  ol.scrollTop = ol.scrollHeight;
}

function updateButtons() {
  $('send').disabled = !loaded || busy;
  $('stop').disabled = !busy;
  $('regen').disabled = !loaded || busy || !chat.messages.some((m) => m.role === 'user');
  $('new-chat').disabled = busy;
}

function requestParams() {
  const p = { temperature: Number(chat.temperature), top_p: Number(chat.topP), enable_thinking: !!chat.thinking };
  // The raw text, <think> block included: renderAnswer folds it into a collapsible block, and it
  // goes back in the history as the model wrote it (the API's default splits it into reasoning_content).
  p.reasoning_format = 'none';
  const n = Number(chat.maxTokens);
  if (Number.isSafeInteger(n) && n >= 1) p.max_tokens = n;
  if (chat.seed !== '' && Number.isSafeInteger(Number(chat.seed)) && Number(chat.seed) >= 0) p.seed = Number(chat.seed);
  return p;
}

function generate() {
  const history = chat.messages.filter((m) => m.content || m.role === 'user').map(({ role, content }) => ({ role, content }));
  if (chat.system.trim()) history.unshift({ role: 'system', content: chat.system });
  const id = nextId++;
  chat.messages.push({ id, role: 'assistant', content: '', streaming: true });
  busy = true;
  setStatus(`Generating… (${current})`);
  renderMessages();
  updateButtons();
  worker.postMessage({ type: 'chat', id, messages: history, params: requestParams() });
}

function send() {
  const text = $('prompt').value.trim();
  if (!text || !loaded || busy) return;
  clearBanner();
  chat.messages.push({ role: 'user', content: text });
  $('prompt').value = '';
  saveChat();
  generate();
}

function regenerate() {
  if (!loaded || busy) return;
  while (chat.messages.length && chat.messages.at(-1).role === 'assistant') chat.messages.pop();
  if (!chat.messages.length) return;
  generate();
}

// After a lost device or an engine failure: a fresh worker, the same model, the same conversation.
async function recover() {
  clearBanner();
  startWorker();
  const name = current ?? load('onebit.last', null);
  if (name) await loadStored(name).catch((e) => banner(e.message));
}

// ---- wiring -------------------------------------------------------------------------------

function bindSetting(id, key, { num = false } = {}) {
  const el = $(id);
  const out = $(`${id}-v`);
  if (el.type === 'checkbox') el.checked = !!chat[key];
  else el.value = chat[key];
  if (out) out.textContent = el.value;
  el.addEventListener('input', () => {
    chat[key] = el.type === 'checkbox' ? el.checked : num ? Number(el.value) : el.value;
    if (out) out.textContent = el.value;
    saveChat();
  });
}

async function main() {
  bindSetting('system', 'system');
  bindSetting('thinking', 'thinking');
  bindSetting('temperature', 'temperature', { num: true });
  bindSetting('top-p', 'topP', { num: true });
  bindSetting('max-tokens', 'maxTokens');
  bindSetting('seed', 'seed');
  for (const m of chat.messages) if (m.streaming) { m.streaming = false; m.note = 'interrupted'; }
  renderMessages();
  updateButtons();

  $('url-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const url = $('model-url').value.trim();
    try {
      downloadChecked(url, nameFromUrl(url));
    } catch {
      banner('That is not a valid URL.');
    }
  });
  $('demo').onclick = () => downloadAndLoad(DEMO_URL, 'demo.gguf');
  for (const s of SUGGESTED) {
    const o = document.createElement('option');
    o.value = s.url;
    o.label = `${s.name} · ${s.type} · ${s.est ? '≈' : ''}${bytes(s.bytes)}`;
    $('model-list').append(o);
  }
  $('model-url').addEventListener('input', () => { checkedOk = null; suggestionNote(); });
  suggestionNote();
  $('use-served').onclick = () => served && useServed();
  $('served-local').onclick = () => served && downloadAndLoad(new URL(`models/${encodeURIComponent(servedFile())}`, location.href).href, servedFile());
  $('cancel-download').onclick = () => downloading?.abort();
  const takeFile = async (file) => {
    if (!file) return;
    clearBanner();
    try {
      const entry = await storeFile(file);
      await loadStored(entry.name);
    } catch (e) {
      progress(false);
      banner(e.message);
    }
  };
  $('file').addEventListener('change', (e) => takeFile(e.target.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); takeFile(e.dataTransfer.files[0]); });
  drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); $('file').click(); } });

  $('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $('stop').onclick = () => worker?.postMessage({ type: 'stop' });
  $('regen').onclick = regenerate;
  $('new-chat').onclick = () => { chat.messages = []; saveChat(); renderMessages(); updateButtons(); $('prompt').focus(); };
  $('recover').onclick = recover;
  $('banner-close').onclick = clearBanner;

  if (!('gpu' in navigator)) figures({ backend: 'this browser has no WebGPU: CPU (WebAssembly)' });
  if (!crypto?.subtle) banner('This page needs a secure context (https or localhost) to verify models.');
  await refreshStored();
  served = await probeServer();
  if (served) {
    $('served').hidden = false;
    $('served-name').textContent = `${served.id} (${bytes(served.meta?.size)})`;
    $('served-local').textContent = `Run it in this browser (${bytes(served.meta?.size)})`;
    if (servedFile() === 'demo.gguf') $('demo').hidden = true; // the same file as “Run it in this browser”
  } else $('demo').classList.add('primary');
  const last = load('onebit.last', null);
  const lastStored = last && last !== SERVED && models.some((m) => m.name === last && !m.partial);
  if (served && !lastStored) {
    useServed();
    return;
  }
  startWorker();
  if (lastStored) {
    try {
      await loadStored(last);
    } catch (e) {
      banner(e.message);
    }
  } else setStatus('Choose a model: download one, open a local file, or try the demo model.');
}

function servedFile() {
  return served?.meta?.file ?? `${served?.id}.gguf`;
}

// Test hooks for tests/browser-app.test.mjs: state to read, the renderer, and a simulated GPU loss.
window.onebitApp = { get loaded() { return loaded; }, get busy() { return busy; }, get chat() { return chat; }, markdown,
  loseDevice: () => worker?.postMessage({ type: 'lose-device' }) };
main();
