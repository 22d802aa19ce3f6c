// worker.js — the engine's Web Worker for the chat page (web/app.js): loads a model through
// web/onebit.js and runs one chat request at a time, posting the text as it comes. Keeping the
// engine here keeps the page responsive while a model loads or the CPU path generates. It holds
// no storage and no conversation: the page sends the whole message list with every request.
//
// Messages in:  {type:'load', source, backend, nCtx, threads} | {type:'chat', id, messages, params}
//               | {type:'check', id, source, backend} (would it fit? header only, before a download)
//               | {type:'stop'} | {type:'close'} | {type:'lose-device'} (tests)
// Messages out: {type:'progress', fraction} | {type:'loaded', ...figures (threads, threadsNote: CPU
//               threads and why only one)} | {type:'delta', id, text}
//               | {type:'done', id, finish, usage, timings} | {type:'error', id?, code, message}
//               | {type:'checked', id, ok, backend, size, gpuBytes, message} (ok null: could not tell)

import { OneBit } from './onebit.js';
import { Engine } from './engine.mjs';

let ai = null;
let abort = null;

function fail(id, e) {
  const code = e?.name === 'AbortError' ? 'aborted' : e?.code ?? 'internal';
  postMessage({ type: 'error', id, code, message: String(e?.message ?? e) });
}

onmessage = async ({ data: m }) => {
  if (m.type === 'stop') {
    abort?.abort();
    return;
  }
  if (m.type === 'lose-device') {
    // For tests of the page's recovery: destroys this engine's GPU device as a driver reset would.
    ai?.engine?.dev?.device?.destroy();
    return;
  }
  if (m.type === 'close') {
    ai?.close();
    ai = null;
    return;
  }
  if (m.type === 'check') {
    let eng = null;
    try {
      eng = await Engine.create({ backend: m.backend ?? 'auto' });
      // The CPU path needs only the file's size: the page checks it when its download starts
      // (no request of its own here).
      if (eng.backend === 'cpu' && typeof m.source === 'string') postMessage({ type: 'checked', id: m.id, ok: null, backend: 'cpu' });
      else postMessage({ type: 'checked', id: m.id, ...(await eng.checkFit(m.source)) });
    } catch (e) {
      postMessage({ type: 'checked', id: m.id, ok: null, message: String(e?.message ?? e) });
    } finally {
      eng?.close();
    }
    return;
  }
  if (m.type === 'load') {
    try {
      ai?.close();
      ai = null;
      let last = 0;
      ai = await OneBit.load(m.source, {
        backend: m.backend ?? 'auto', nCtx: m.nCtx ?? 0, threads: m.threads ?? 0,
        onProgress: ({ fraction }) => {
          if (fraction - last >= 0.01 || fraction === 1) {
            last = fraction;
            postMessage({ type: 'progress', fraction });
          }
        },
      });
      postMessage({ type: 'loaded', backend: ai.backend, adapter: ai.adapter, loadMs: ai.loadMs, model: ai.model,
        nCtx: ai.info.nCtx, nLayer: ai.info.nLayer, webgpu: !!globalThis.navigator?.gpu, threads: ai.threads,
        threadsNote: ai.threadsNote, simd: ai.info.backend === 'cpu' });
    } catch (e) {
      fail(undefined, e);
    }
    return;
  }
  if (m.type === 'chat') {
    if (!ai) return fail(m.id, { code: 'no_model', message: 'no model is loaded' });
    abort = new AbortController();
    const mine = abort;
    let text = '', finish = 'length', usage = null;
    try {
      const stream = await ai.chat.completions.create({ ...m.params, messages: m.messages, stream: true, signal: mine.signal });
      for await (const c of stream) {
        const d = c.choices[0];
        if (d?.delta?.content) {
          text += d.delta.content;
          postMessage({ type: 'delta', id: m.id, text: d.delta.content });
        }
        if (d?.finish_reason) finish = d.finish_reason;
        if (c.usage) usage = c.usage;
      }
    } catch (e) {
      if (e?.name !== 'AbortError') return fail(m.id, e);
      finish = 'aborted';
    } finally {
      if (abort === mine) abort = null;
    }
    postMessage({ type: 'done', id: m.id, finish, usage, timings: ai.last, text });
  }
};

postMessage({ type: 'ready', webgpu: !!globalThis.navigator?.gpu });
