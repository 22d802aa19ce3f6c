// server-tools.test.mjs — what applications need from `onebit serve` beyond free text, through the
// official `openai` npm client: tool calls (tools + tool_choice, the model's own template and call
// syntax, a full round trip assistant tool_calls -> role "tool" result -> answer, streamed and not),
// reasoning_content (Qwen3/DeepSeek-R1 <think> blocks, streamed and not, and reasoning_format "none"),
// --cors, and /v1/embeddings checked against llama.cpp (node-llama-cpp) on the same files.
//
// The models have random weights, so they never call a tool by themselves: calls are forced with a
// named tool_choice (the server writes the call's opening into the prompt) and decoding is greedy,
// so every answer is deterministic and the streamed answer must equal the non-streamed one. The
// parser itself is unit-tested on fixed texts (tests/unit/test_serve_tools.c). Test models are made
// here: build/mkmodel's tiny preset with other chat templates (DeepSeek-R1's opens <think> in the
// prompt; Llama 3.1's has JSON calls; Gemma 2's has no tool syntax), and tools/gen-arch-model.py's
// Qwen3 with a pooling type for embeddings (llama.cpp's gguf-py). Nothing here measures speed.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";

const root = fileURLToPath(new URL("..", import.meta.url));
const BIN = process.env.ONEBIT_BIN ?? join(root, "build", "onebit");
const MKMODEL = join(root, "build", "mkmodel");
const TINY = join(root, "build", "models", "tiny.gguf"); // Qwen3's template: <tool_call> calls
const LLAMA_SRC = process.env.ONEBIT_LLAMA_SRC ?? join(root, "build", "llama.cpp");
const TEMPLATES = join(LLAMA_SRC, "models", "templates");
const NO_TEMPLATES = existsSync(TEMPLATES) ? false : "no llama.cpp source (its models/templates): tools/llama-src.sh";
const tmp = mkdtempSync(join(tmpdir(), "onebit-tools-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

const servers = new Set();
process.on("exit", () => {
  for (const s of servers) s.child.kill("SIGKILL");
});

async function startServer(model, args = []) {
  assert.ok(existsSync(BIN), `${BIN} missing: run make first`);
  const child = spawn(BIN, ["serve", "-m", model, "--port", "0", "-c", "1024", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const srv = { child, stderr: "" };
  servers.add(srv);
  child.stderr.on("data", (d) => (srv.stderr += d));
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  srv.url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s: ${srv.stderr}`)), 60000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+?)\/?\n/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening: ${srv.stderr}`));
    });
  });
  srv.client = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "unused", timeout: 60000, maxRetries: 0 });
  srv.stop = async () => {
    const t = setTimeout(() => child.kill("SIGKILL"), 10000);
    child.kill("SIGTERM");
    await exited;
    clearTimeout(t);
    servers.delete(srv);
  };
  return srv;
}

/** The tiny preset with another chat template (mkmodel, about a second). */
function tinyWith(template, name) {
  const out = join(tmp, `${name}.gguf`);
  execFileSync(MKMODEL, ["-o", out, "--preset", "tiny", "--seed", "1", "--template", join(TEMPLATES, template)], { timeout: 60000 });
  return out;
}

const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const TIME = { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } };
const ASK = [{ role: "user", content: "What is the weather in Paris?" }];
const forced = (name) => ({ type: "function", function: { name } });

/** Collects a streamed chat answer: content, reasoning, tool calls rebuilt from their deltas. */
async function collect(stream) {
  const out = { content: "", reasoning: "", calls: [], finish: null, chunks: 0 };
  for await (const chunk of stream) {
    out.chunks++;
    const ch = chunk.choices[0];
    if (!ch) continue;
    const d = ch.delta;
    if (d.content) out.content += d.content;
    if (d.reasoning_content) out.reasoning += d.reasoning_content;
    for (const tc of d.tool_calls ?? []) {
      if (!out.calls[tc.index]) {
        assert.ok(tc.id && tc.function?.name, "the first delta of a call carries its id and name");
        assert.equal(tc.type, "function");
        out.calls[tc.index] = { id: tc.id, name: tc.function.name, arguments: "" };
      } else {
        assert.equal(tc.id, undefined, "later deltas carry only arguments");
      }
      out.calls[tc.index].arguments += tc.function?.arguments ?? "";
    }
    if (ch.finish_reason) out.finish = ch.finish_reason;
  }
  return out;
}

describe("tool calls (Qwen3 template, <tool_call>)", () => {
  let srv;
  before(async () => (srv = await startServer(TINY)));
  after(async () => srv && (await srv.stop()));

  test("round trip: forced call -> tool result -> answer, non-streaming and streaming agree", async () => {
    const req = { model: "tiny", messages: ASK, tools: [WEATHER, TIME], tool_choice: forced("get_weather"), temperature: 0, max_tokens: 12 };
    const r = await srv.client.chat.completions.create(req);
    const msg = r.choices[0].message;
    assert.equal(msg.role, "assistant");
    assert.equal(msg.content, null, "an answer that is only a call has content null");
    assert.equal(msg.tool_calls.length, 1);
    const call = msg.tool_calls[0];
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    assert.equal(call.type, "function");
    assert.equal(call.function.name, "get_weather");
    assert.equal(typeof call.function.arguments, "string");
    assert.ok(call.function.arguments.length > 0, "the model wrote arguments");
    // a call the model finished ends with tool_calls; random weights run into max_tokens
    assert.ok(["tool_calls", "length"].includes(r.choices[0].finish_reason), r.choices[0].finish_reason);

    const s = await collect(await srv.client.chat.completions.create({ ...req, stream: true }));
    assert.equal(s.calls.length, 1);
    assert.equal(s.calls[0].name, "get_weather");
    assert.equal(s.calls[0].arguments, call.function.arguments, "streamed arguments = non-streamed");
    assert.equal(s.content, "");
    assert.equal(s.finish, r.choices[0].finish_reason);
    assert.ok(s.chunks >= 3);

    // the result goes back as a role "tool" message answering the call's id
    const result = "Sunny, 22 degrees Celsius, light wind from the west, no rain expected today or tomorrow.";
    const history = [...ASK, { role: "assistant", content: null, tool_calls: msg.tool_calls }];
    const next = { model: "tiny", tools: [WEATHER, TIME], temperature: 0, max_tokens: 6 };
    const a = await srv.client.chat.completions.create({ ...next, messages: [...history, { role: "tool", tool_call_id: call.id, content: result }] });
    assert.equal(a.choices[0].message.role, "assistant");
    assert.equal(typeof a.choices[0].message.content, "string");
    assert.ok(!a.choices[0].message.tool_calls?.length, "greedy noise is no call");
    // the template put the call and its result into the prompt: a longer result, a longer prompt
    const b = await srv.client.chat.completions.create({ ...next, messages: [...history, { role: "tool", tool_call_id: call.id, content: "ok" }] });
    assert.ok(a.usage.prompt_tokens > b.usage.prompt_tokens + 10, `${a.usage.prompt_tokens} vs ${b.usage.prompt_tokens}`);
    const c = await srv.client.chat.completions.create({ ...next, messages: ASK });
    assert.ok(b.usage.prompt_tokens > c.usage.prompt_tokens + 10, "the assistant's call is in the prompt");
    const sa = await collect(await srv.client.chat.completions.create({ ...next, stream: true, messages: [...history, { role: "tool", tool_call_id: call.id, content: result }] }));
    assert.equal(sa.content, a.choices[0].message.content, "streamed answer = non-streamed");
    assert.equal(sa.calls.length, 0);
  });

  test("tool_choice none hides the tools; required with one tool forces it; bad requests are 400", async () => {
    const base = { model: "tiny", messages: ASK, temperature: 0, max_tokens: 4 };
    const withTools = await srv.client.chat.completions.create({ ...base, tools: [WEATHER], tool_choice: "none" });
    const without = await srv.client.chat.completions.create(base);
    assert.equal(withTools.usage.prompt_tokens, without.usage.prompt_tokens, "tool_choice none: tools not in the prompt");
    assert.equal(withTools.choices[0].message.content, without.choices[0].message.content);
    const auto = await srv.client.chat.completions.create({ ...base, tools: [WEATHER] });
    assert.ok(auto.usage.prompt_tokens > without.usage.prompt_tokens + 20, "auto: the template lists the tools");
    const req = await srv.client.chat.completions.create({ ...base, tools: [WEATHER], tool_choice: "required" });
    assert.equal(req.choices[0].message.tool_calls?.[0]?.function.name, "get_weather");

    const bad = async (body, param) => {
      const r = await fetch(srv.url + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ ...base, ...body }) });
      assert.equal(r.status, 400, JSON.stringify(body));
      const j = await r.json();
      assert.equal(j.error.param, param, j.error.message);
    };
    await bad({ tools: [WEATHER], tool_choice: forced("nope") }, "tool_choice");
    await bad({ tool_choice: "required" }, "tool_choice");
    await bad({ tools: [WEATHER], tool_choice: "sometimes" }, "tool_choice");
    await bad({ tools: [{ type: "function", function: { name: "bad name!" } }] }, "tools");
    await bad({ tools: [{ type: "code_interpreter" }] }, "tools");
    await bad({ tools: {} }, "tools");
    await bad({ functions: [{ name: "f" }] }, "functions");
    await bad({ reasoning_format: "xml" }, "reasoning_format");
    await bad({ messages: [{ role: "user", content: "x", tool_calls: [] }] }, "messages");
    await bad({ messages: [{ role: "assistant", content: null, tool_calls: [{ function: { arguments: "{}" } }] }] },
      "messages[0].tool_calls");
  });
});

describe("tool calls in other templates", { skip: NO_TEMPLATES }, () => {
  test("Llama 3.1: a forced call is read from its JSON syntax", { timeout: 120000 }, async () => {
    const srv = await startServer(tinyWith("meta-llama-Llama-3.1-8B-Instruct.jinja", "llama31"));
    try {
      const req = { messages: ASK, tools: [WEATHER, TIME], tool_choice: forced("get_time"), temperature: 0, max_tokens: 8 };
      const r = await srv.client.chat.completions.create(req);
      const calls = r.choices[0].message.tool_calls;
      assert.equal(calls?.length, 1);
      assert.equal(calls[0].function.name, "get_time");
      const s = await collect(await srv.client.chat.completions.create({ ...req, stream: true }));
      assert.equal(s.calls[0]?.name, "get_time");
      assert.equal(s.calls[0].arguments, calls[0].function.arguments);
      // and the call goes back through Llama's own template (its ipython role for results)
      const a = await srv.client.chat.completions.create({
        messages: [...ASK, r.choices[0].message, { role: "tool", tool_call_id: calls[0].id, content: "12:00" }],
        tools: [WEATHER, TIME], temperature: 0, max_tokens: 4,
      });
      assert.equal(typeof a.choices[0].message.content, "string");
    } finally {
      await srv.stop();
    }
  });

  test("a template without tool syntax refuses tools with 400, still chats without them", { timeout: 120000 }, async () => {
    const srv = await startServer(tinyWith("google-gemma-2-2b-it.jinja", "gemma2"));
    try {
      const r = await fetch(srv.url + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages: ASK, tools: [WEATHER], max_tokens: 2 }) });
      assert.equal(r.status, 400);
      assert.match((await r.json()).error.message, /tool-call syntax/);
      const ok = await srv.client.chat.completions.create({ messages: ASK, tools: [WEATHER], tool_choice: "none", max_tokens: 2 });
      assert.equal(typeof ok.choices[0].message.content, "string");
    } finally {
      await srv.stop();
    }
  });
});

describe("reasoning_content", { skip: NO_TEMPLATES }, () => {
  let srv;
  // DeepSeek-R1's template opens <think> at the end of the prompt: all the model writes until
  // </think> is reasoning. The random-weight model's text is noise, but the same seed gives the
  // same text, so the raw answer (reasoning_format none) tells what the split answer must be.
  before(async () => (srv = await startServer(tinyWith("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "r1"))));
  after(async () => srv && (await srv.stop()));
  const req = { messages: [{ role: "user", content: "Why is the sky blue?" }], chat_template_kwargs: { enable_thinking: true },
    temperature: 1, top_k: 0, top_p: 1, seed: 11, max_tokens: 12 };

  /** Reasoning and content of a raw answer, by the documented rule. */
  function split(raw) {
    assert.ok(raw.startsWith("<think>\n"), "raw text starts with the template's <think>");
    const gen = raw.slice("<think>\n".length);
    const end = gen.indexOf("</think>");
    if (end < 0) return { reasoning: gen.trimStart(), content: "" };
    return { reasoning: gen.slice(0, end).trim(), content: gen.slice(end + "</think>".length).trimStart() };
  }

  test("split out of content, streamed the same; reasoning_format none gives the raw text", async () => {
    const raw = (await srv.client.chat.completions.create({ ...req, reasoning_format: "none" })).choices[0].message;
    assert.equal(raw.reasoning_content, undefined);
    const want = split(raw.content);
    assert.ok(want.reasoning.length > 0, `this seed must give reasoning: ${JSON.stringify(raw.content)}`);
    const r = await srv.client.chat.completions.create(req);
    const m = r.choices[0].message;
    assert.equal(m.reasoning_content, want.reasoning);
    assert.equal(m.content, want.content);
    const s = await collect(await srv.client.chat.completions.create({ ...req, stream: true }));
    assert.equal(s.reasoning, want.reasoning);
    assert.equal(s.content, want.content);
    const sr = await collect(await srv.client.chat.completions.create({ ...req, reasoning_format: "none", stream: true }));
    assert.equal(sr.content, raw.content);
    assert.equal(sr.reasoning, "");
  });

  test("thinking switched off: no reasoning, the text is content", async () => {
    const r = await srv.client.chat.completions.create({ ...req, chat_template_kwargs: { enable_thinking: false } });
    assert.equal(r.choices[0].message.reasoning_content, undefined);
    assert.ok(r.choices[0].message.content.length > 0);
  });
});

describe("--cors", () => {
  test("preflight and answers carry Access-Control-* for allowed origins only; off by default", { timeout: 120000 }, async () => {
    const srv = await startServer(TINY, ["--cors", "http://a.example,http://b.example"]);
    const plain = await startServer(TINY);
    try {
      const pre = await fetch(srv.url + "/v1/chat/completions", {
        method: "OPTIONS",
        headers: { Origin: "http://a.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type" },
      });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get("access-control-allow-origin"), "http://a.example");
      assert.match(pre.headers.get("access-control-allow-methods"), /POST/);
      assert.match(pre.headers.get("access-control-allow-headers"), /authorization/);
      const body = JSON.stringify({ messages: ASK, max_tokens: 1 });
      const ok = await fetch(srv.url + "/v1/chat/completions", { method: "POST", headers: { Origin: "http://b.example" }, body });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get("access-control-allow-origin"), "http://b.example");
      assert.equal(ok.headers.get("cross-origin-resource-policy"), "cross-origin");
      const other = await fetch(srv.url + "/v1/models", { headers: { Origin: "http://evil.example" } });
      assert.equal(other.headers.get("access-control-allow-origin"), null);
      const off = await fetch(plain.url + "/v1/models", { headers: { Origin: "http://a.example" } });
      assert.equal(off.headers.get("access-control-allow-origin"), null);
      const offPre = await fetch(plain.url + "/v1/chat/completions", { method: "OPTIONS", headers: { Origin: "http://a.example", "Access-Control-Request-Method": "POST" } });
      assert.equal(offPre.headers.get("access-control-allow-origin"), null);
    } finally {
      await srv.stop();
      await plain.stop();
    }
  });
});

describe("/v1/embeddings", () => {
  const haveGguf = existsSync(join(LLAMA_SRC, "gguf-py"));
  const texts = ["Hello world, this is a test.", "The quick brown fox jumps over the lazy dog", "x"];

  test("a model without a pooling type: 400", async () => {
    const srv = await startServer(TINY);
    try {
      const r = await fetch(srv.url + "/v1/embeddings", { method: "POST", body: JSON.stringify({ input: "hi" }) });
      assert.equal(r.status, 400);
      assert.match((await r.json()).error.message, /pooling/);
    } finally {
      await srv.stop();
    }
  });

  for (const pooling of ["mean", "cls", "last"]) {
    test(`pooling ${pooling}: equal to llama.cpp's, normalised, float and base64`, { skip: !haveGguf && "no llama.cpp source (gguf-py)", timeout: 180000 }, async () => {
      const file = join(tmp, `embed-${pooling}.gguf`);
      execFileSync("/usr/bin/python3", [join(root, "tools", "gen-arch-model.py"), "--llama-src", LLAMA_SRC, "--arch", "qwen3",
        "--vocab", "llama-spm", "--n-head", "4", "--n-head-kv", "2", "--tied", "--logit-std", "3", "--seed", "15",
        "--pooling", pooling, "-o", file], { timeout: 120000 });
      const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
      const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
      const model = await llama.loadModel({ modelPath: file });
      const ctx = await model.createEmbeddingContext({ contextSize: 256 });
      const want = [];
      for (const t of texts) want.push(Array.from((await ctx.getEmbeddingFor(t)).vector));
      await ctx.dispose();
      await model.dispose();

      const srv = await startServer(file);
      try {
        const r = await srv.client.embeddings.create({ model: `embed-${pooling}`, input: texts, encoding_format: "float" });
        assert.equal(r.object, "list");
        assert.equal(r.data.length, texts.length);
        assert.ok(r.usage.prompt_tokens > 0);
        for (let i = 0; i < texts.length; i++) {
          const got = r.data[i].embedding;
          assert.equal(r.data[i].index, i);
          assert.equal(got.length, want[i].length);
          const norm = Math.hypot(...got);
          assert.ok(Math.abs(norm - 1) < 1e-5, `unit length: ${norm}`);
          const wn = Math.hypot(...want[i]);
          let dot = 0, maxDiff = 0;
          for (let k = 0; k < got.length; k++) {
            dot += got[k] * (want[i][k] / wn);
            maxDiff = Math.max(maxDiff, Math.abs(got[k] - want[i][k] / wn));
          }
          assert.ok(dot > 0.9999 && maxDiff < 2e-3, `input ${i}: cosine ${dot}, max difference ${maxDiff} against llama.cpp`);
        }
        // the openai client asks for base64 by default and decodes it: the same numbers
        const b = await srv.client.embeddings.create({ input: texts[0] });
        assert.deepEqual(Array.from(b.data[0].embedding), Array.from(Float32Array.from(r.data[0].embedding)));
        // token ids in, the same as the text's tokens
        const single = await srv.client.embeddings.create({ input: texts[2], encoding_format: "float" });
        assert.deepEqual(single.data[0].embedding, r.data[2].embedding);
        const bad = await fetch(srv.url + "/v1/embeddings", { method: "POST", body: JSON.stringify({ input: [] }) });
        assert.equal(bad.status, 400);
        const dims = await fetch(srv.url + "/v1/embeddings", { method: "POST", body: JSON.stringify({ input: "a", dimensions: 3 }) });
        assert.equal(dims.status, 400);
        if (pooling === "mean") { // the scalar reference backend's hidden states give the same vectors
          const ref = await startServer(file, ["--backend", "scalar"]);
          try {
            const s = await ref.client.embeddings.create({ input: texts, encoding_format: "float" });
            for (let i = 0; i < texts.length; i++)
              for (let k = 0; k < s.data[i].embedding.length; k++)
                assert.ok(Math.abs(s.data[i].embedding[k] - r.data[i].embedding[k]) < 1e-4, `scalar vs cpu, input ${i} [${k}]`);
          } finally {
            await ref.stop();
          }
        }
      } finally {
        await srv.stop();
      }
    });
  }
});
