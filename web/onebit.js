// onebit.js — the onebit engine behind an API shaped like the OpenAI client, for pages, Web
// Workers and Node.js:
//
//   import { OneBit } from './onebit.js';
//   const ai = await OneBit.load('model.gguf', { onProgress: (p) => {}, backend: 'auto' });
//   const r = await ai.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] });
//   for await (const c of await ai.chat.completions.create({ messages, stream: true, signal }))
//     out(c.choices[0]?.delta?.content ?? '');
//
// It is a thin layer over web/engine.mjs (tokenizer, chat template, generation): it checks the
// request's shape, renders the messages with the model's template, runs one generation at a time
// and shapes the answer as OpenAI's chat.completion / chat.completion.chunk objects. The rules of a
// generation (sampling defaults and ranges, stop strings, end tokens, context and token limits)
// are the C core's (src/core/gen.c); its errors come back here with the request field at fault. It is not an
// HTTP client and holds no conversation state beyond the engine's KV cache (which it reuses when
// a request extends the previous one). Errors are OneBitError with an OpenAI-like `code`.
//
// Tools, tool_choice, reasoning_format and the answer's reasoning_content / tool_calls mean what
// they mean in `onebit serve` (docs/SERVER.md): the tools go to the model's template, calls are
// read back in the template's syntax (web/reply.mjs, the server's rules), a named tool_choice writes
// the call's opening into the prompt, and a <think> block comes back as reasoning_content.

import { Engine, OnebitError, Status } from './engine.mjs';
import { ReplyParser, ToolFormat, toolFormat } from './reply.mjs';

const isNode = typeof process === 'object' && !!process.versions?.node;

export class OneBitError extends Error {
  // code: 'invalid_request' | 'invalid_model' | 'io' | 'out_of_memory' | 'context_length_exceeded'
  //       | 'backend' | 'device_lost' | 'unsupported' | 'internal'; param: the request field at fault.
  constructor(message, { code = 'internal', param = null, status = null, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.name = 'OneBitError';
    this.code = code;
    this.param = param;
    this.status = status;
  }
}

function abortError() {
  if (typeof DOMException === 'function') return new DOMException('The request was aborted', 'AbortError');
  const e = new Error('The request was aborted');
  e.name = 'AbortError';
  return e;
}

// Maps engine and platform errors to OneBitError with a message a person can act on.
function wrapError(e, during) {
  if (e instanceof OneBitError || e?.name === 'AbortError') return e;
  if (e instanceof OnebitError) {
    const code = {
      [Status.ERR_ARG]: 'invalid_request', [Status.ERR_IO]: 'io', [Status.ERR_FORMAT]: 'invalid_model',
      [Status.ERR_UNSUPPORTED]: 'unsupported', [Status.ERR_NOMEM]: 'out_of_memory',
      [Status.ERR_CONTEXT]: 'context_length_exceeded', [Status.ERR_BACKEND]: 'backend',
    }[e.status] ?? 'internal';
    const lost = code === 'backend' && /lost/i.test(e.message);
    const what = code === 'invalid_model' ? 'not a valid onebit model (GGUF, Qwen3, Q1_0): ' : '';
    return new OneBitError(`${during}: ${what}${e.message}`, { code: lost ? 'device_lost' : code, status: e.status, cause: e });
  }
  if (e instanceof RangeError || /out of memory|allocation failed|Array buffer allocation/i.test(String(e?.message)))
    return new OneBitError(`${during}: out of memory (${e.message})`, { code: 'out_of_memory', cause: e });
  if (e?.code === 'ENOENT' || e?.code === 'EACCES' || e?.code === 'EISDIR' || e instanceof TypeError)
    return new OneBitError(`${during}: cannot read the model (${e.message})`, { code: 'io', cause: e });
  return new OneBitError(`${during}: ${e?.message ?? e}`, { code: 'internal', cause: e });
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

function bad(param, message) {
  return new OneBitError(message, { code: 'invalid_request', param });
}

// Checks a chat request; returns the normalised settings or throws OneBitError.
function checkRequest(p) {
  if (p === null || typeof p !== 'object') throw bad(null, 'the request must be an object');
  const { messages } = p;
  if (!Array.isArray(messages) || messages.length === 0) throw bad('messages', 'messages must be a non-empty array');
  const msgs = messages.map((m, i) => {
    if (m === null || typeof m !== 'object') throw bad(`messages[${i}]`, `messages[${i}] must be an object`);
    if (!ROLES.has(m.role)) throw bad(`messages[${i}].role`, `messages[${i}].role must be one of system, developer, user, assistant, tool`);
    let content = m.content;
    if (Array.isArray(content))
      content = content.map((part, j) => {
        if (part?.type !== 'text' || typeof part.text !== 'string')
          throw bad(`messages[${i}].content[${j}]`, 'only text content parts are supported');
        return part.text;
      }).join('');
    if (content === null && m.role === 'assistant') content = '';
    if (typeof content !== 'string') throw bad(`messages[${i}].content`, `messages[${i}].content must be a string`);
    const out = { role: m.role === 'developer' ? 'system' : m.role, content };
    if (m.tool_calls !== undefined && m.tool_calls !== null) {
      if (m.role !== 'assistant' || !Array.isArray(m.tool_calls))
        throw bad(`messages[${i}].tool_calls`, 'only an assistant message has tool_calls, an array');
      // the template gets the arguments as an object when they are JSON text (OpenAI sends text)
      out.tool_calls = m.tool_calls.map((c) => {
        const f = c?.function;
        if (typeof f?.name !== 'string') throw bad(`messages[${i}].tool_calls`, 'each tool call needs function.name (a string)');
        let args = f.arguments ?? {};
        if (typeof args === 'string') { try { args = JSON.parse(args); } catch { /* the text as it is */ } }
        return { ...(typeof c.id === 'string' ? { id: c.id } : {}), type: 'function', function: { name: f.name, arguments: args } };
      });
    }
    for (const k of ['tool_call_id', 'name', 'reasoning_content']) {
      if (m[k] === undefined || m[k] === null) continue;
      if (typeof m[k] !== 'string') throw bad(`messages[${i}].${k}`, `messages[${i}].${k} must be a string`);
      out[k] = m[k];
    }
    return out;
  });
  let tools = p.tools ?? null;
  if (tools !== null) {
    if (!Array.isArray(tools) || tools.length > 128) throw bad('tools', 'tools must be an array of at most 128 tools');
    tools.forEach((t, i) => {
      if (t?.type !== 'function') throw bad('tools', `tools[${i}]: only tools of type 'function' are supported`);
      if (!TOOL_NAME.test(t.function?.name ?? '')) throw bad('tools', `tools[${i}]: function.name must be 1 to 64 letters, digits, _, - or .`);
      const par = t.function.parameters;
      if (par !== undefined && par !== null && (typeof par !== 'object' || Array.isArray(par)))
        throw bad('tools', `tools[${i}]: function.parameters must be an object`);
    });
    if (tools.length === 0) tools = null;
  }
  if (p.functions !== undefined && p.functions !== null) throw bad('functions', "'functions' is not supported: use 'tools'");
  let choice = tools ? 'auto' : 'none', toolName = null;
  const tc = p.tool_choice;
  if (tc !== undefined && tc !== null) {
    if (tc === 'none' || tc === 'auto' || tc === 'required') choice = tc === 'auto' && !tools ? 'none' : tc;
    else if (typeof tc === 'object' && typeof tc.function?.name === 'string') { choice = 'named'; toolName = tc.function.name; }
    else throw bad('tool_choice', 'tool_choice must be "none", "auto", "required" or {type: "function", function: {name}}');
    if (choice !== 'none' && !tools) throw bad('tool_choice', 'tool_choice asks for a tool call but there are no tools');
    if (choice === 'named' && !tools.some((t) => t.function.name === toolName))
      throw bad('tool_choice', `tool_choice names '${toolName}', which is not among the tools`);
  }
  if (choice === 'required' && tools.length === 1) { choice = 'named'; toolName = tools[0].function.name; }
  const parallel = p.parallel_tool_calls ?? true;
  if (typeof parallel !== 'boolean') throw bad('parallel_tool_calls', 'parallel_tool_calls must be a boolean');
  const reasoningFormat = p.reasoning_format ?? 'auto';
  if (!['auto', 'deepseek', 'none'].includes(reasoningFormat)) throw bad('reasoning_format', 'reasoning_format must be "auto", "deepseek" or "none"');
  // Sampling settings are only checked for their type here: their ranges and defaults are the core's.
  const num = (name) => {
    const v = p[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number') throw bad(name, `${name} must be a number`);
    return v;
  };
  const int = (name, lo, dflt) => {
    const v = p[name];
    if (v === undefined || v === null) return dflt;
    if (!Number.isSafeInteger(v) || v < lo) throw bad(name, `${name} must be an integer >= ${lo}`);
    return v;
  };
  let stop = p.stop ?? [];
  if (typeof stop === 'string') stop = [stop];
  if (!Array.isArray(stop) || stop.length > 16 || stop.some((s) => typeof s !== 'string'))
    throw bad('stop', 'stop must be a string or an array of up to 16 strings');
  // Constrained output, as the server takes it (docs/SERVER.md): response_format and grammar (GBNF).
  const rf = p.response_format;
  let grammar = null, jsonSchema = null;
  if (rf !== undefined && rf !== null) {
    const kinds = 'response_format.type must be "text", "json_object" or "json_schema"';
    if (typeof rf !== 'object' || Array.isArray(rf)) throw bad('response_format', 'response_format must be an object');
    if (rf.type === 'json_object') jsonSchema = rf.schema ?? { type: 'object' };
    else if (rf.type === 'json_schema') {
      const js = rf.json_schema;
      if (!js || typeof js !== 'object') throw bad('response_format', 'response_format.json_schema must be an object');
      if (js.strict !== undefined && js.strict !== null && typeof js.strict !== 'boolean')
        throw bad('response_format', 'response_format.json_schema.strict must be a boolean');
      if (js.schema === undefined || js.schema === null) throw bad('response_format', "'response_format.json_schema.schema' is missing");
      jsonSchema = js.schema;
    } else if (rf.type !== 'text') throw bad('response_format', kinds);
  }
  if (p.grammar !== undefined && p.grammar !== null) {
    if (typeof p.grammar !== 'string') throw bad('grammar', "'grammar' must be a string of GBNF text");
    if (jsonSchema) throw bad('grammar', "give 'grammar' or a JSON 'response_format', not both");
    grammar = p.grammar;
  }
  if (p.stream !== undefined && p.stream !== null && typeof p.stream !== 'boolean') throw bad('stream', 'stream must be a boolean');
  if (p.n !== undefined && p.n !== null && p.n !== 1) throw bad('n', 'only n = 1 is supported');
  const sig = p.signal;
  if (sig !== undefined && sig !== null && (typeof sig !== 'object' || typeof sig.aborted !== 'boolean'))
    throw bad('signal', 'signal must be an AbortSignal');
  const think = p.enable_thinking ?? p.chat_template_kwargs?.enable_thinking ?? false;
  if (typeof think !== 'boolean') throw bad('enable_thinking', 'enable_thinking must be a boolean');
  const maxTokens = int('max_completion_tokens', 1, int('max_tokens', 1, 0));
  const seed = int('seed', 0, null);
  return {
    msgs, stop, stream: !!p.stream, signal: sig ?? null, think, maxTokens, grammar, jsonSchema, tools, choice, toolName,
    parallel, reasoning: reasoningFormat !== 'none',
    sampling: {
      temperature: num('temperature'), topP: num('top_p'), topK: num('top_k'), minP: num('min_p'),
      repeatPenalty: num('repeat_penalty'), presencePenalty: num('presence_penalty'),
      frequencyPenalty: num('frequency_penalty'),
      seed: seed ?? Math.floor(Math.random() * 2 ** 31), // OpenAI: no seed means a fresh draw every time
    },
  };
}

// The request field a core error about a sampling setting names ("sampling: top_p must be ...").
const SAMPLING_FIELDS = ['temperature', 'top_k', 'top_p', 'min_p', 'repeat_penalty', 'presence_penalty', 'frequency_penalty'];
function faultyField(message) {
  if (/^grammar: /.test(message)) return 'grammar';
  if (/^json_schema: /.test(message)) return 'response_format';
  const m = /\bsampling: (\w+)/.exec(message) ?? /\b(\w+) must\b/.exec(message);
  if (!m) return null;
  const name = m[1] === 'presence' ? 'presence_penalty' : m[1] === 'frequency' ? 'frequency_penalty' : m[1];
  return SAMPLING_FIELDS.includes(name) ? name : null;
}

let nextId = 1;
const newId = () => `chatcmpl-${Date.now().toString(36)}${(nextId++).toString(36)}`;

// Node has no navigator.gpu; the `webgpu` npm package (Dawn) provides one when installed.
async function nodeGpu() {
  try {
    const dawn = 'webgpu'; // a variable: bundlers for the browser leave this Node-only import alone
    const { create, globals } = await import(/* @vite-ignore */ dawn);
    Object.assign(globalThis, globals);
    return create([]);
  } catch {
    return null;
  }
}

export class OneBit {
  // source: URL (string or URL), File/Blob, ArrayBuffer/Uint8Array, or (Node) a file path.
  // options: backend 'auto' (WebGPU when there is an adapter, else the wasm CPU path) | 'webgpu'
  // | 'cpu'; onProgress({fraction}); nCtx (0 = the model's, at most 4096); gpu (a navigator.gpu-like
  // object); threads (CPU path: threads to compute on, 0 = min(hardwareConcurrency, 8); more than
  // one needs a cross-origin isolated Web Worker, see engine.mjs); engine (extra Engine.create
  // options, e.g. coreUrl / wasmUrl / kernelsUrl).
  static async load(source, options = {}) {
    const { backend = 'auto', onProgress, nCtx = 0 } = options;
    if (!['auto', 'webgpu', 'cpu'].includes(backend)) throw bad('backend', "backend must be 'auto', 'webgpu' or 'cpu'");
    const threads = options.threads ?? 0;
    if (!Number.isSafeInteger(threads) || threads < 0 || threads > 64) throw bad('threads', 'threads must be an integer in 0..64 (0 = default)');
    if (source === undefined || source === null || source === '') throw bad('source', 'no model given');
    let gpu = options.gpu;
    if (gpu === undefined && backend !== 'cpu') gpu = globalThis.navigator?.gpu ?? (isNode ? await nodeGpu() : undefined);
    let eng;
    try {
      eng = await Engine.create({ ...(options.engine ?? {}), backend, gpu: gpu ?? undefined, threads });
    } catch (e) {
      throw wrapError(e, 'cannot start the engine');
    }
    const t0 = performance.now();
    try {
      const info = await eng.load(source, { nCtx, onProgress: onProgress && ((f) => onProgress({ fraction: f })) });
      return new OneBit(eng, info, performance.now() - t0);
    } catch (e) {
      eng.close();
      throw wrapError(e, 'cannot load the model');
    }
  }

  constructor(eng, info, loadMs) {
    this.engine = eng;
    this.info = info;
    this.loadMs = loadMs;
    this.backend = eng.backend;
    // CPU threads the engine computes on (1 with WebGPU), and why only one where more were possible.
    this.threads = eng.backend === 'cpu' ? eng.threads : 1;
    this.threadsNote = eng.backend === 'cpu' ? eng.threadsNote : '';
    const a = eng.gpuInfo?.adapter;
    this.adapter = a ? [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ') || 'WebGPU adapter' : 'WebAssembly CPU';
    this.model = info.name || info.arch;
    this.last = null; // figures of the last request: {promptTokens, cachedTokens, completionTokens, promptMs, genMs, nPast, nCtx}
    this.queue = Promise.resolve();
    this.closed = false;
    this.chat = { completions: { create: (params) => this.create(params) } };
  }

  // Frees the model (and the GPU device). Later requests are rejected.
  close() {
    this.closed = true;
    this.engine.close();
  }

  // Resolves to a chat.completion object, or (stream: true) to an async iterable of
  // chat.completion.chunk objects. Requests run one at a time in call order.
  async create(params) {
    const req = checkRequest(params);
    if (this.closed) throw new OneBitError('the model has been closed', { code: 'invalid_request' });
    if (req.signal?.aborted) throw abortError();
    const id = newId(), created = Math.floor(Date.now() / 1000), model = this.model;
    const chunk = (delta, finish) => ({ id, object: 'chat.completion.chunk', created, model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    // finish_reason "tool_calls" when the answer made calls and ended by itself
    const finishOf = (r, parser) => (r.finish === 'stop' && parser.calls.length ? 'tool_calls' : r.finish);
    if (!req.stream) {
      let parser;
      const r = await this.enqueue(req, () => {}, undefined, (p) => { parser = p; });
      const message = { role: 'assistant', content: parser.content === '' && parser.calls.length ? null : parser.content };
      if (parser.reasoning) message.reasoning_content = parser.reasoning;
      if (parser.calls.length)
        message.tool_calls = parser.calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
      return { id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: finishOf(r, parser) }],
        usage: r.usage, timings: r.timings };
    }
    // Streaming: the generation runs on; chunks wait in a queue for the consumer.
    const items = [chunk({ role: 'assistant', content: '' }, null)];
    let wake = null, done = false, failure = null, cancelled = false, parser;
    const notify = () => { if (wake) { wake(); wake = null; } };
    const delta = (e) => {
      if (e.kind === 'content') return { content: e.text };
      if (e.kind === 'reasoning') return { reasoning_content: e.text };
      if (e.kind === 'call')
        return { tool_calls: [{ index: e.index, id: e.id, type: 'function', function: { name: e.name, arguments: '' } }] };
      return { tool_calls: [{ index: e.index, function: { arguments: e.text } }] };
    };
    const onEvents = (evs) => { for (const e of evs) items.push(chunk(delta(e), null)); if (evs.length) notify(); };
    const run = this.enqueue(req, onEvents, () => cancelled, (p) => { parser = p; }, true);
    run.then((r) => { items.push({ ...chunk({}, finishOf(r, parser)), usage: r.usage }); }, (e) => { failure = e; })
      .finally(() => { done = true; notify(); });
    return {
      [Symbol.asyncIterator]() { return this; },
      async next() {
        for (;;) {
          if (req.signal?.aborted && !done) { cancelled = true; items.length = 0; await run.catch(() => {}); done = true; failure = null; throw abortError(); }
          if (items.length) return { value: items.shift(), done: false };
          if (failure) { const e = failure; failure = null; done = true; throw e; }
          if (done) return { value: undefined, done: true };
          await new Promise((r) => { wake = r; });
        }
      },
      async return() { cancelled = true; await run.catch(() => {}); items.length = 0; return { value: undefined, done: true }; },
      // Collects the whole stream as text (convenience, not in OpenAI's API).
      async text() { let s = ''; for await (const c of this) s += c.choices[0]?.delta?.content ?? ''; return s; },
    };
  }

  // onOut gets the parser's events (streaming) or nothing; onParser the ReplyParser of the answer.
  enqueue(req, onOut, isCancelled = () => false, onParser = () => {}, events = false) {
    const p = this.queue.then(() => this.generate(req, onOut, isCancelled, onParser, events));
    this.queue = p.catch(() => {});
    return p;
  }

  // One generation, by the core's loop (engine.generate). The CPU path computes synchronously
  // inside the engine, so it lets the event loop run every few tokens: that lets an AbortSignal
  // (or a Worker message) be seen while generating.
  async generate(req, onOut, isCancelled, onParser, events) {
    const eng = this.engine;
    if (this.closed) throw new OneBitError('the model has been closed', { code: 'invalid_request' });
    if (req.signal?.aborted) throw abortError();
    let prompt, parser, stop = req.stop;
    try {
      const template = eng.chatTemplate();
      const format = req.choice === 'none' ? ToolFormat.NONE : toolFormat(template);
      if (req.choice !== 'none' && format === ToolFormat.NONE)
        throw bad('tools', "this model's chat template shows no tool-call syntax onebit can read (Qwen's <tool_call> or Llama 3.1's JSON calls)");
      let text = eng.chatJson(JSON.stringify(req.msgs), req.choice === 'none' || !req.tools ? null : JSON.stringify(req.tools),
        { enableThinking: req.think });
      // What the prompt holds of the answer: an opened thinking block, a forced call's opening
      // (the server's rules: docs/SERVER.md, "Tool calls").
      const tail = text.slice(-8), openThink = tail.includes('<think>') && !tail.includes('</think>');
      let prefix = openThink ? '<think>\n' : '';
      if (req.choice === 'named' || req.choice === 'required') {
        // as the server: a forced call's opening is in the prompt, where a caller's grammar cannot start
        if (req.grammar || req.jsonSchema)
          throw bad('tool_choice', "a forced tool call cannot be combined with 'grammar' or a JSON 'response_format'");
        const hermes = format === ToolFormat.HERMES;
        const forced = req.choice === 'named'
          ? `${hermes ? '<tool_call>\n' : ''}{"name": "${req.toolName}", "${hermes ? 'arguments' : 'parameters'}": `
          : `${hermes ? '<tool_call>\n' : ''}{"name": "`;
        const closed = text.slice(-10).includes('</think>');
        const skip = openThink ? '\n</think>\n\n' : template.includes('<think>') && !closed ? '<think>\n\n</think>\n\n' : '';
        text += skip + forced;
        prefix += skip + forced;
      }
      // one call only (a named function, or parallel_tool_calls false): the generation ends with it
      if ((req.choice === 'named' || !req.parallel) && format === ToolFormat.HERMES && stop.length < 16) stop = [...stop, '</tool_call>'];
      parser = new ReplyParser({ reasoning: req.reasoning, format });
      parser.feed(prefix);
      onParser(parser);
      prompt = eng.tokenize(text, { prompt: true });
    } catch (e) {
      if (e instanceof OneBitError) throw e;
      throw wrapError(e, 'cannot render the chat');
    }
    if (events) onOut(parser.ev.splice(0)); // the call that the prompt opened
    let strip = !req.reasoning; // raw text: only Qwen3's empty thinking block is dropped, as the server does
    let held = '';
    const EMPTY = '<think>\n\n</think>\n\n';
    const onText = (t) => {
      if (strip) {
        held += t;
        if (EMPTY.startsWith(held)) { if (held === EMPTY) { held = ''; strip = false; } return; }
        t = held;
        held = '';
        strip = false;
      }
      const evs = parser.feed(t);
      if (events) onOut(evs);
    };
    const nCtx = this.info.nCtx;
    const stopped = () => isCancelled() || !!req.signal?.aborted;
    let r;
    try {
      r = await eng.generate(prompt, {
        maxTokens: req.maxTokens, stop, sampling: req.sampling, grammar: req.grammar, jsonSchema: req.jsonSchema,
        yieldEvery: eng.backend === 'cpu' ? 8 : 0, shouldStop: stopped,
        onText: (t) => { onText(t); return stopped(); },
      });
    } catch (e) {
      if (e instanceof OnebitError && e.status === Status.ERR_CONTEXT)
        throw new OneBitError(`${e.message}: start a new chat or shorten it`, { code: 'context_length_exceeded', param: 'messages',
          status: e.status, cause: e });
      const w = wrapError(e, 'generation failed');
      const field = faultyField(e.message);
      if (field === 'grammar' || field === 'response_format') w.code = 'invalid_request'; // also a schema keyword the core cannot enforce
      if (w.code === 'invalid_request' && !w.param) w.param = field;
      throw w;
    }
    if (req.signal?.aborted) throw abortError();
    if (held) { const evs = parser.feed(held); held = ''; if (events) onOut(evs); }
    const last = parser.finish();
    if (events) onOut(last);
    const finish = r.finish === 'stop' ? 'stop' : 'length';
    const usage = { prompt_tokens: prompt.length, completion_tokens: r.nGenerated, total_tokens: prompt.length + r.nGenerated,
      prompt_tokens_details: { cached_tokens: r.nReused } };
    const timings = { prompt_n: r.nPrompt, prompt_ms: r.tPromptMs, predicted_n: r.nGenerated,
      predicted_ms: r.tGenMs, n_past: eng.nPast, n_ctx: nCtx };
    this.last = timings;
    return { finish, usage, timings };
  }
}

export default OneBit;
