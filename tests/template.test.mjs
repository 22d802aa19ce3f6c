// template.test.mjs — src/core/jinja.c against Python's Jinja2 (Debian's python3-jinja2) on real
// chat templates: llama.cpp's models/templates/*.jinja (tools/llama-src.sh fetches the source).
// Every required template x conversation is rendered by build/jinja_driver (tests/jinja_driver.c)
// and by tests/oracle/jinja_render.py (transformers' environment) and must match byte for byte;
// where the oracle fails (raise_exception, a missing message) the driver must fail too.
// JINJA_ALL=1 also runs every other template there and prints how many match (not asserted).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const driver = `${root}build/jinja_driver`;
const oracle = `${root}tests/oracle/jinja_render.py`;
const NOW = "1721980800"; // 2024-07-26 08:00 UTC, for strftime_now
const env = { ...process.env, TZ: "UTC" };

const REQUIRED = [
  "Qwen-Qwen3-0.6B", "Qwen-Qwen2.5-7B-Instruct", "meta-llama-Llama-3.1-8B-Instruct",
  "meta-llama-Llama-3.2-3B-Instruct", "google-gemma-2-2b-it", "microsoft-Phi-3.5-mini-instruct",
];

const tools = [
  { type: "function", function: { name: "get_weather", description: "Get the weather for a city.",
    parameters: { type: "object", properties: { city: { type: "string", description: "City name" },
      unit: { type: "string", enum: ["celsius", "fahrenheit"] } }, required: ["city"] } } },
  { type: "function", function: { name: "add", description: "Adds two numbers.",
    parameters: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] } } },
];
const call = { id: "call_1", type: "function", function: { name: "get_weather", arguments: { city: "Paris", unit: "celsius" } } };

const base = { bos_token: "<|begin_of_text|>", eos_token: "<|end|>", tools: null, documents: null };
const CONVERSATIONS = {
  user_only: { messages: [{ role: "user", content: "Hello!" }], add_generation_prompt: true },
  no_prompt: { messages: [{ role: "user", content: "Hello!" }], add_generation_prompt: false },
  multi_turn: { messages: [
    { role: "user", content: "What is 2+2?" }, { role: "assistant", content: "4." },
    { role: "user", content: "  And 3+3?  " }], add_generation_prompt: true },
  system: { messages: [
    { role: "system", content: "You are a terse assistant." }, { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello." }, { role: "user", content: "Bye" }], add_generation_prompt: true },
  system_no_prompt: { messages: [
    { role: "system", content: "Be brief.\n" }, { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello." }], add_generation_prompt: false },
  think: { messages: [
    { role: "user", content: "Why is the sky blue?" },
    { role: "assistant", content: "<think>\nRayleigh scattering.\n</think>\n\nBecause of scattering." },
    { role: "user", content: "Thanks" }], add_generation_prompt: true, enable_thinking: false },
  think_on: { messages: [
    { role: "user", content: "Why?" },
    { role: "assistant", content: "<think>\nHmm.\n</think>\n\nBecause." }], add_generation_prompt: false, enable_thinking: true },
  non_ascii: { messages: [
    { role: "system", content: "Réponds en français. 日本語も OK 🙂" },
    { role: "user", content: "Ça va ? Ünïcödé — «quotes» \"and\" 'apostrophes' \\ back\tslash" }],
    add_generation_prompt: true },
  tools: { messages: [
    { role: "system", content: "You can call tools." },
    { role: "user", content: "Weather in Paris?" },
    { role: "assistant", content: "", tool_calls: [call] },
    { role: "tool", tool_call_id: "call_1", name: "get_weather", content: "{\"temp\": 21, \"sky\": \"clear\"}" },
    { role: "user", content: "And in Tōkyō?" }], tools, add_generation_prompt: true },
  tools_no_system: { messages: [
    { role: "user", content: "Add 2 and 3." },
    { role: "assistant", content: "", tool_calls: [{ ...call, function: { name: "add", arguments: "{\"a\": 2, \"b\": 3}" } }] },
    { role: "tool", content: "5" }], tools, add_generation_prompt: true },
  wrong_order: { messages: [{ role: "user", content: "a" }, { role: "user", content: "b" }], add_generation_prompt: true },
  no_messages: { messages: [], add_generation_prompt: true },
};

let llama = null;
{
  const r = spawnSync("bash", [`${root}tools/llama-src.sh`], { encoding: "utf8", timeout: 600_000, killSignal: "SIGKILL" });
  if (r.status === 0 && existsSync(`${r.stdout.trim()}/models/templates`)) llama = r.stdout.trim();
}
const skip = !llama ? "llama.cpp source unavailable (tools/llama-src.sh)" : false;
const dir = mkdtempSync(join(tmpdir(), "jinja-test-"));

function render(cmd, args) {
  const r = spawnSync(cmd, args, { env, maxBuffer: 1 << 26, timeout: 20000 });
  return { ok: r.status === 0, out: r.stdout, err: (r.stderr ?? "").toString() };
}

// All oracle renders of a set of templates in one Python process: Map "name/conv" -> result.
function oracleBatch(names) {
  const jobs = [], keys = [];
  for (const name of names)
    for (const conv of Object.keys(CONVERSATIONS)) {
      jobs.push({ template: `${llama}/models/templates/${name}.jinja`, context: { ...base, ...CONVERSATIONS[conv] } });
      keys.push(`${name}/${conv}`);
    }
  const file = join(dir, "jobs.json");
  writeFileSync(file, JSON.stringify(jobs));
  const r = spawnSync("/usr/bin/python3", [oracle, "--batch", file, NOW], { env, maxBuffer: 1 << 28, timeout: 120000 });
  assert.equal(r.status, 0, `oracle failed: ${r.stderr}`);
  const res = JSON.parse(r.stdout.toString("utf8"));
  return new Map(keys.map((k, i) => [k, { ok: res[i].ok, out: Buffer.from(res[i].out ?? "", "utf8"), err: res[i].err ?? "" }]));
}

function compare(want, name, convName) {
  const tpl = `${llama}/models/templates/${name}.jinja`;
  const ctx = join(dir, `${convName}.json`);
  const got = render(driver, [tpl, ctx, NOW]);
  return { want: want.get(`${name}/${convName}`), got };
}

for (const conv of Object.keys(CONVERSATIONS)) writeFileSync(join(dir, `${conv}.json`), JSON.stringify({ ...base, ...CONVERSATIONS[conv] }));

test("required templates render byte-identically to Jinja2", { skip }, () => {
  assert.ok(existsSync(driver), `${driver} missing: run make first`);
  let outputs = 0, errors = 0;
  const want0 = oracleBatch(REQUIRED);
  for (const name of REQUIRED) {
    for (const conv of Object.keys(CONVERSATIONS)) {
      const { want, got } = compare(want0, name, conv);
      const label = `${name} / ${conv}`;
      if (!want.ok) {
        assert.ok(!got.ok, `${label}: Jinja2 fails (${want.err.trim()}) but jinja.c rendered`);
        errors++;
        continue;
      }
      assert.ok(got.ok, `${label}: jinja.c failed: ${got.err.trim()}`);
      assert.equal(got.out.toString("utf8"), want.out.toString("utf8"), label);
      assert.ok(got.out.equals(want.out), `${label}: bytes differ`);
      outputs++;
    }
  }
  assert.ok(outputs >= REQUIRED.length * 8, `only ${outputs} successful renders compared`);
  assert.ok(errors >= 6, `expected error cases, got ${errors}`);
  console.log(`# ${outputs} renders identical, ${errors} errors on both sides`);
});

test("every other llama.cpp template (report only)", { skip: skip || (!process.env.JINJA_ALL && "set JINJA_ALL=1") }, () => {
  const names = readdirSync(`${llama}/models/templates`).filter((f) => f.endsWith(".jinja")).map((f) => f.slice(0, -6));
  let match = 0;
  const bad = [];
  const want0 = oracleBatch(names);
  for (const name of names) {
    let ok = true, why = "";
    for (const conv of Object.keys(CONVERSATIONS)) {
      const { want, got } = compare(want0, name, conv);
      if (want.ok !== got.ok || (want.ok && !got.out.equals(want.out))) {
        ok = false;
        why = `${conv}: ${want.ok ? "" : "py " + want.err.trim().slice(0, 80)} ${got.ok ? "" : "c " + got.err.trim().slice(0, 120)}`;
        break;
      }
    }
    if (ok) match++;
    else bad.push(`${name} (${why})`);
  }
  console.log(`# ${match}/${names.length} templates match on every conversation`);
  for (const b of bad) console.log(`#   differs: ${b}`);
});
