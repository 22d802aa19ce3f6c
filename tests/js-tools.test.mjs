// js-tools.test.mjs — tools, tool_choice and reasoning_content in the JS API (web/onebit.js) on the
// wasm CPU path, and its answer parser (web/reply.mjs) on the fixed texts the server's parser is
// tested on (tests/unit/test_serve_tools.c: the same cases, the same expected parts).
//
// As in tests/server-tools.test.mjs, random-weight models never call tools by themselves: calls are
// forced with a named tool_choice, and DeepSeek-R1's template (which opens <think> in the prompt)
// makes the text reasoning. Models: build/models/tiny.gguf and the tiny preset with R1's template
// (build/mkmodel). Needs `make wasm`.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OneBit } from '../web/onebit.js';
import { ReplyParser, ToolFormat, toolFormat } from '../web/reply.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const TINY = join(root, 'build', 'models', 'tiny.gguf');
const TEMPLATES = join(process.env.ONEBIT_LLAMA_SRC ?? join(root, 'build', 'llama.cpp'), 'models', 'templates');
assert.ok(existsSync(join(root, 'build', 'wasm', 'onebit.wasm')), 'build/wasm/onebit.wasm is missing: run `make wasm`');
const tmp = mkdtempSync(join(tmpdir(), 'onebit-js-tools-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const H = ToolFormat.HERMES, L = ToolFormat.LLAMA3, N = ToolFormat.NONE;
// [what, reasoning, format, prefix, text, content, reasoning text, [[name, arguments], ...]]
const CASES = [
  ['thinking then answer', true, N, '', '<think>\nLet me think.\n</think>\n\nHello!', 'Hello!', 'Let me think.', []],
  ['empty thinking block', true, H, '', '<think>\n\n</think>\n\nHi there', 'Hi there', '', []],
  ['no thinking', true, N, '', 'Hello <b>world</b> \n', 'Hello <b>world</b> \n', '', []],
  ['raw mode keeps the block', false, N, '', '<think>\nx\n</think>\n\nHi', '<think>\nx\n</think>\n\nHi', '', []],
  ['unterminated thinking', true, N, '', '<think>\nstill going', '', 'still going', []],
  ['thinking opened by the prompt', true, N, '<think>\n', 'ponder\n</think>\n\nok', 'ok', 'ponder', []],
  ['hermes call after content', true, H, '',
    "I'll check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
    "I'll check.", '', [['get_weather', '{"city": "Paris"}']]],
  ['two hermes calls', true, H, '',
    '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "b.c", "arguments": {"x": [1, 2]}}\n</tool_call>',
    '', '', [['a', '{}'], ['b.c', '{"x": [1, 2]}']]],
  ['reasoning then call', true, H, '',
    '<think>\nneed data\n</think>\n\n<tool_call>\n{"name": "f", "arguments": {"q": "a}b\\"c{", "n": {"y": [1, {"z": 2}]}}}\n</tool_call>',
    '', 'need data', [['f', '{"q": "a}b\\"c{", "n": {"y": [1, {"z": 2}]}}']]],
  ['keys in another order', true, H, '', '<tool_call>\n{"arguments": {"a": 1}, "name": "f"}\n</tool_call>', '', '', [['f', '{"a":1}']]],
  ['not a call after all', true, H, '', '<tool_call>\nnot json\n</tool_call> after', '<tool_call>\nnot json\n</tool_call> after', '', []],
  ['call without its closing tag', true, H, '', '<tool_call>\n{"name": "f", "arguments": {"k": true}}', '', '', [['f', '{"k": true}']]],
  ['arguments as a JSON string', true, H, '', '<tool_call>{"name": "f", "arguments": "{}"}</tool_call>', '', '', [['f', '"{}"']]],
  ['forced call: the prompt opened it', true, H, '<tool_call>\n{"name": "get_weather", "arguments": ', '{"city": "Oslo"}}\n', '', '',
    [['get_weather', '{"city": "Oslo"}']]],
  ['no tool syntax: markers are text', true, N, '', '<tool_call>{"name": "f"}</tool_call>', '<tool_call>{"name": "f"}</tool_call>', '', []],
  ['llama call', false, L, '', '{"name": "get_weather", "parameters": {"city": "Paris"}}', '', '', [['get_weather', '{"city": "Paris"}']]],
  ['llama python_tag call', false, L, '', '<|python_tag|>{"name": "s", "parameters": {"q": "x"}}', '', '', [['s', '{"q": "x"}']]],
  ['llama JSON that is not a call', false, L, '', '{"answer": 42}', '{"answer": 42}', '', []],
  ['llama text', false, L, '', 'The weather is {unknown}.', 'The weather is {unknown}.', '', []],
];

function parse([, reasoning, format, prefix, text], cuts) {
  const p = new ReplyParser({ reasoning, format });
  const got = { content: '', reasoning: '', calls: [] };
  const take = (evs) => {
    for (const e of evs) {
      if (e.kind === 'content') got.content += e.text;
      else if (e.kind === 'reasoning') got.reasoning += e.text;
      else if (e.kind === 'call') { assert.equal(e.index, got.calls.length); got.calls.push([e.name, '']); }
      else got.calls[e.index][1] += e.text;
    }
  };
  if (prefix) take(p.feed(prefix));
  let at = 0;
  for (const c of [...cuts, text.length]) { take(p.feed(text.slice(at, c))); at = c; }
  take(p.finish());
  return { p, got };
}

test('reply parser: the server parser\'s cases, whole, split anywhere, character by character', () => {
  for (const c of CASES) {
    const [what, , , , text, content, reasoning, calls] = c;
    const ways = [[]];
    for (let k = 1; k < text.length; k++) ways.push([k]);
    ways.push(Array.from({ length: Math.max(0, text.length - 1) }, (_, i) => i + 1));
    for (const cuts of ways) {
      const { p, got } = parse(c, cuts);
      const how = `${what} (cuts ${cuts.length > 2 ? 'every' : cuts})`;
      assert.equal(p.content, content, how);
      assert.equal(p.reasoning, reasoning, how);
      assert.deepEqual(p.calls.map((x) => [x.name, x.arguments]), calls, how);
      assert.deepEqual(got, { content, reasoning, calls }, `${how}: events`);
      for (const x of p.calls) assert.match(x.id, /^call_[A-Za-z0-9]{24}$/);
    }
  }
  assert.equal(toolFormat(''), N);
  assert.equal(toolFormat("{{ '<tool_call>' }}"), H);
  assert.equal(toolFormat('{{ "<|python_tag|>" }}'), L);
});

const WEATHER = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
const TIME = { type: 'function', function: { name: 'get_time' } };
const ASK = [{ role: 'user', content: 'What is the weather in Paris?' }];

async function collect(stream) {
  const out = { content: '', reasoning: '', calls: [], finish: null };
  for await (const ch of stream) {
    const c = ch.choices[0];
    if (!c) continue;
    out.content += c.delta.content ?? '';
    out.reasoning += c.delta.reasoning_content ?? '';
    for (const tc of c.delta.tool_calls ?? []) {
      if (tc.id) out.calls[tc.index] = { id: tc.id, name: tc.function.name, arguments: '' };
      out.calls[tc.index].arguments += tc.function.arguments ?? '';
    }
    if (c.finish_reason) out.finish = c.finish_reason;
  }
  return out;
}

test('JS API: forced tool call, streamed the same, round trip with a tool result, errors', { timeout: 120000 }, async () => {
  const ai = await OneBit.load(TINY, { backend: 'cpu' });
  try {
    const req = { messages: ASK, tools: [WEATHER, TIME], tool_choice: { type: 'function', function: { name: 'get_weather' } }, temperature: 0, max_tokens: 10 };
    const r = await ai.chat.completions.create(req);
    const m = r.choices[0].message;
    assert.equal(m.content, null);
    assert.equal(m.tool_calls.length, 1);
    assert.equal(m.tool_calls[0].function.name, 'get_weather');
    assert.match(m.tool_calls[0].id, /^call_/);
    assert.ok(['tool_calls', 'length'].includes(r.choices[0].finish_reason));
    const s = await collect(await ai.chat.completions.create({ ...req, stream: true }));
    assert.equal(s.calls.length, 1);
    assert.equal(s.calls[0].name, 'get_weather');
    assert.equal(s.calls[0].arguments, m.tool_calls[0].function.arguments);
    assert.equal(s.finish, r.choices[0].finish_reason);
    const history = [...ASK, m];
    const a = await ai.chat.completions.create({ messages: [...history, { role: 'tool', tool_call_id: m.tool_calls[0].id, content: 'Sunny and warm, 22 degrees, light wind from the west, no rain.' }], tools: [WEATHER], temperature: 0, max_tokens: 4 });
    const b = await ai.chat.completions.create({ messages: [...history, { role: 'tool', tool_call_id: m.tool_calls[0].id, content: 'ok' }], tools: [WEATHER], temperature: 0, max_tokens: 4 });
    assert.equal(typeof a.choices[0].message.content, 'string');
    assert.ok(a.usage.prompt_tokens > b.usage.prompt_tokens + 10, 'the tool result is in the prompt');
    const none = await ai.chat.completions.create({ messages: ASK, tools: [WEATHER], tool_choice: 'none', temperature: 0, max_tokens: 2 });
    const plain = await ai.chat.completions.create({ messages: ASK, temperature: 0, max_tokens: 2 });
    assert.equal(none.usage.prompt_tokens, plain.usage.prompt_tokens);
    for (const [body, param] of [[{ tool_choice: 'required' }, 'tool_choice'], [{ tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'x' } } }, 'tool_choice'],
      [{ tools: [{ type: 'function', function: { name: 'bad name' } }] }, 'tools'], [{ reasoning_format: 'xml' }, 'reasoning_format']]) {
      await assert.rejects(ai.chat.completions.create({ messages: ASK, ...body }), (e) => e.param === param, JSON.stringify(body));
    }
  } finally {
    ai.close();
  }
});

test('JS API: reasoning_content (DeepSeek-R1 template), streamed the same, and reasoning_format none',
  { timeout: 120000, skip: !existsSync(TEMPLATES) && 'no llama.cpp source (its models/templates)' }, async () => {
  const file = join(tmp, 'r1.gguf');
  execFileSync(join(root, 'build', 'mkmodel'), ['-o', file, '--preset', 'tiny', '--seed', '1', '--template',
    join(TEMPLATES, 'deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja')], { timeout: 60000 });
  const ai = await OneBit.load(file, { backend: 'cpu' });
  try {
    const req = { messages: [{ role: 'user', content: 'Why is the sky blue?' }], enable_thinking: true, temperature: 1, top_k: 0, top_p: 1, seed: 11, max_tokens: 12 };
    const raw = (await ai.chat.completions.create({ ...req, reasoning_format: 'none' })).choices[0].message;
    assert.equal(raw.reasoning_content, undefined);
    assert.ok(raw.content.startsWith('<think>\n'));
    const gen = raw.content.slice('<think>\n'.length), end = gen.indexOf('</think>');
    const want = end < 0 ? { reasoning: gen.trimStart(), content: '' } : { reasoning: gen.slice(0, end).trim(), content: gen.slice(end + 8).trimStart() };
    assert.ok(want.reasoning.length > 0, JSON.stringify(raw.content));
    const m = (await ai.chat.completions.create(req)).choices[0].message;
    assert.equal(m.reasoning_content, want.reasoning);
    assert.equal(m.content, want.content);
    const s = await collect(await ai.chat.completions.create({ ...req, stream: true }));
    assert.equal(s.reasoning, want.reasoning);
    assert.equal(s.content, want.content);
  } finally {
    ai.close();
  }
});
