// js-api.test.mjs — web/onebit.js, the OpenAI-shaped ES-module API, in Node on the wasm CPU path
// with the bundled demo model (models/demo.gguf): completions, streaming chunks, stop strings,
// seeds, abort, cache reuse, and the errors a caller sees for a bad file or bad parameters.
// Needs `make wasm` (build/wasm/). WebGPU from Node is covered by tests/webgpu.test.mjs.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { OneBit, OneBitError } from '../web/onebit.js';

const root = new URL('../', import.meta.url);
const DEMO = new URL('models/demo.gguf', root).pathname;
assert.ok(existsSync(new URL('build/wasm/onebit.wasm', root)), 'build/wasm/onebit.wasm is missing: run `make wasm`');
const msgs = [{ role: 'system', content: 'You are a scribe.' }, { role: 'user', content: 'Who made the heaven and the earth?' }];

let ai;
test.before(async () => {
  const seen = [];
  ai = await OneBit.load(DEMO, { backend: 'cpu', onProgress: (p) => seen.push(p.fraction) });
  assert.ok(seen.length > 0 && seen.at(-1) === 1, 'onProgress reaches 1');
});
test.after(() => ai?.close());

test('load: model info and backend', () => {
  assert.equal(ai.backend, 'cpu');
  assert.equal(ai.info.arch, 'qwen3');
  assert.equal(ai.info.nCtx, 256);
  assert.equal(typeof ai.adapter, 'string');
});

test('non-streaming completion has the OpenAI shape', async () => {
  const r = await ai.chat.completions.create({ messages: msgs, max_tokens: 12, seed: 7 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('same seed gives the same text; streaming gives the same text as chunks', async () => {
  const a = await ai.chat.completions.create({ messages: msgs, max_tokens: 20, seed: 42, temperature: 0.9 });
  const stream = await ai.chat.completions.create({ messages: msgs, max_tokens: 20, seed: 42, temperature: 0.9, stream: true });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));
  const last = chunks.at(-1);
  assert.equal(last.choices[0].finish_reason, a.choices[0].finish_reason);
  assert.ok(chunks.length >= 3, 'several content chunks');
  const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
  assert.equal(text, a.choices[0].message.content);
  // The second request had the same prompt: its KV cache was reused.
  assert.ok(last.usage.prompt_tokens_details.cached_tokens > 0);
});

test('greedy: temperature 0 is deterministic whatever the seed', async () => {
  const a = await ai.chat.completions.create({ messages: msgs, max_tokens: 16, temperature: 0, seed: 1 });
  const b = await ai.chat.completions.create({ messages: msgs, max_tokens: 16, temperature: 0, seed: 2 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});

test('stop string ends the text before the match', async () => {
  const full = (await ai.chat.completions.create({ messages: msgs, max_tokens: 40, temperature: 0 })).choices[0].message.content;
  const m = full.match(/[,:;]/);
  assert.ok(m, `greedy text has punctuation: ${full}`);
  const r = await ai.chat.completions.create({ messages: msgs, max_tokens: 40, temperature: 0, stop: [m[0]] });
  assert.equal(r.choices[0].message.content, full.slice(0, m.index));
  assert.equal(r.choices[0].finish_reason, 'stop');
});

test('abort: a signal aborted mid-stream ends the stream with AbortError', async () => {
  const ac = new AbortController();
  const stream = await ai.chat.completions.create({ messages: msgs, max_tokens: 200, temperature: 0.8, stream: true, signal: ac.signal });
  let n = 0;
  await assert.rejects(async () => {
    for await (const c of stream) if (c.choices[0].delta.content && ++n === 2) ac.abort();
  }, { name: 'AbortError' });
  assert.equal(n, 2);
  // A timer-driven abort is seen while the CPU path generates (it yields between slices).
  const ac2 = new AbortController();
  setTimeout(() => ac2.abort(), 20);
  await assert.rejects(ai.chat.completions.create({ messages: msgs, max_tokens: 240, signal: ac2.signal }), { name: 'AbortError' });
  // Already aborted: rejected at once; the model still works afterwards.
  await assert.rejects(ai.chat.completions.create({ messages: msgs, signal: AbortSignal.abort() }), { name: 'AbortError' });
  const r = await ai.chat.completions.create({ messages: msgs, max_tokens: 4 });
  assert.ok(r.choices[0].message.content.length > 0);
});

test('breaking out of a stream cancels the generation', async () => {
  const stream = await ai.chat.completions.create({ messages: msgs, max_tokens: 200, stream: true });
  for await (const c of stream) if (c.choices[0].delta.content) break;
  const r = await ai.chat.completions.create({ messages: msgs, max_tokens: 3 });
  assert.ok(r.usage.completion_tokens <= 3);
});

test('bad parameters are rejected with a clear message', async () => {
  const cases = [
    [{}, 'messages'],
    [{ messages: [] }, 'messages'],
    [{ messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
    [{ messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
    [{ messages: msgs, temperature: 'hot' }, 'temperature'],
    [{ messages: msgs, top_p: -0.1 }, 'top_p'],
    [{ messages: msgs, max_tokens: 0 }, 'max_tokens'],
    [{ messages: msgs, max_tokens: 1.5 }, 'max_tokens'],
    [{ messages: msgs, stop: [1] }, 'stop'],
    [{ messages: msgs, seed: -1 }, 'seed'],
    [{ messages: msgs, stream: 'yes' }, 'stream'],
    [{ messages: msgs, n: 2 }, 'n'],
  ];
  for (const [p, param] of cases)
    await assert.rejects(ai.chat.completions.create(p), (e) => e instanceof OneBitError && e.code === 'invalid_request' && e.param === param,
      JSON.stringify(p));
  await assert.rejects(ai.chat.completions.create(null), OneBitError);
});

test('constrained output: response_format json_schema and a GBNF grammar; malformed ones are refused', async () => {
  const schema = {
    type: 'object', additionalProperties: false, required: ['who', 'days', 'ok'],
    properties: { who: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 0 }, ok: { type: 'boolean' } },
  };
  for (const temperature of [0, 1]) {
    const r = await ai.chat.completions.create({ messages: msgs, max_tokens: 120, seed: 3, temperature,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } } });
    assert.equal(r.choices[0].finish_reason, 'stop', r.choices[0].message.content);
    const v = JSON.parse(r.choices[0].message.content);
    assert.deepEqual(Object.keys(v).sort(), ['days', 'ok', 'who']);
    assert.ok(typeof v.who === 'string' && [...v.who].length <= 12 && Number.isInteger(v.days) && v.days >= 0 && typeof v.ok === 'boolean');
  }
  const g = await ai.chat.completions.create({ messages: msgs, max_tokens: 40, seed: 1, grammar: 'root ::= ("God" | "Man") " made " [a-z]{1,6} "."' });
  assert.match(g.choices[0].message.content, /^(God|Man) made [a-z]{1,6}\.$/);
  const o = await ai.chat.completions.create({ messages: msgs, max_tokens: 200, seed: 2, response_format: { type: 'json_object' } });
  assert.match(o.choices[0].message.content, /^\{/);
  await assert.rejects(ai.chat.completions.create({ messages: msgs, grammar: 'root ::= "a' }),
    (e) => e instanceof OneBitError && e.code === 'invalid_request' && e.param === 'grammar' && /line 1, column 10/.test(e.message));
  await assert.rejects(ai.chat.completions.create({ messages: msgs, response_format: { type: 'json_schema', json_schema: { schema: { pattern: 'x' } } } }),
    (e) => e instanceof OneBitError && e.param === 'response_format' && /'pattern' is not supported/.test(e.message));
  await assert.rejects(ai.chat.completions.create({ messages: msgs, response_format: { type: 'xml' } }), (e) => e.param === 'response_format');
  await assert.rejects(ai.chat.completions.create({ messages: msgs, grammar: 5 }), (e) => e.param === 'grammar');
});

// Sampling ranges are the core's (ob_sampling_check, src/core/params.c, called in ob_gen_begin);
// the sampler alone accepts any finite temperature.
test('a temperature above 2 is rejected by the core (ob_sampling_check)', async () => {
  await assert.rejects(ai.chat.completions.create({ messages: msgs, temperature: 3 }),
    (e) => e instanceof OneBitError && e.code === 'invalid_request' && e.param === 'temperature');
});

test('a conversation longer than the context is refused', async () => {
  const long = 'And it came to pass '.repeat(80);
  await assert.rejects(ai.chat.completions.create({ messages: [{ role: 'user', content: long }] }),
    (e) => e.code === 'context_length_exceeded' && /context holds 256/.test(e.message));
});

test('invalid model files are rejected with a clear message', async () => {
  const dir = new URL('build/tmp/', root);
  mkdirSync(dir, { recursive: true });
  const junk = new URL('js-api-junk.gguf', dir).pathname;
  writeFileSync(junk, 'this is not a model');
  await assert.rejects(OneBit.load(junk, { backend: 'cpu' }), (e) => e.code === 'invalid_model' && /not a valid onebit model/.test(e.message));
  await assert.rejects(OneBit.load(new Uint8Array(16), { backend: 'cpu' }), (e) => e.code === 'invalid_model');
  await assert.rejects(OneBit.load('/no/such/model.gguf', { backend: 'cpu' }), (e) => e.code === 'io' && /cannot read/.test(e.message));
  await assert.rejects(OneBit.load(DEMO, { backend: 'quantum' }), (e) => e.param === 'backend');
  await assert.rejects(OneBit.load(null), (e) => e.param === 'source');
});

test('load from an ArrayBuffer; a closed model refuses requests', async () => {
  const { readFile } = await import('node:fs/promises');
  const buf = await readFile(DEMO);
  const b = await OneBit.load(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), { backend: 'cpu' });
  const r = await b.chat.completions.create({ messages: msgs, max_tokens: 3 });
  assert.ok(r.usage.completion_tokens >= 1);
  b.close();
  await assert.rejects(b.chat.completions.create({ messages: msgs }), OneBitError);
});
