// server.test.mjs — `onebit serve` end to end: real server processes on free loopback ports,
// spoken to with curl, the official `openai` npm client, Node's fetch and raw sockets.
//
// Covers the OpenAI endpoints (chat and completions, streaming and not, usage, stop strings, seeds,
// max_tokens -> "length", thinking switch, echo, prefix reuse across slots), /v1/models, /health,
// the static web app (types, cross-origin isolation headers, no listing, no way out of the folder),
// a corpus of malformed requests (status + OpenAI error JSON each), invalid UTF-8 and NULs, API
// keys, client disconnects (queued, streaming and non-streaming: the generation must stop), queue
// and time limits, SIGTERM shutdown, a bounded concurrent load, and the same load under
// AddressSanitizer (no sanitizer report, no leak, RSS flat across rounds).
//
// Model: $ONEBIT_TEST_MODEL, else build/models/tiny.gguf (tools/make-models.sh), else
// models/demo.gguf. Binary: $ONEBIT_BIN, else build/onebit. Nothing here measures speed.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import OpenAI from "openai";

const root = fileURLToPath(new URL("..", import.meta.url));
const BIN = process.env.ONEBIT_BIN ?? join(root, "build", "onebit");
const ASAN_BIN = process.env.ONEBIT_ASAN_BIN ?? join(root, "build", "asan", "onebit");
const MODEL =
  process.env.ONEBIT_TEST_MODEL ??
  [join(root, "build", "models", "tiny.gguf"), join(root, "models", "demo.gguf")].find((p) => existsSync(p)) ??
  join(root, "build", "models", "tiny.gguf");
const MODEL_ID = MODEL.split("/").pop().replace(/\.gguf$/, "");
// The disconnect, limit and shutdown tests need generations that do not end by themselves: the
// random-weight tiny model never produces an end token under greedy decoding; a trained one would.
const TINY = join(root, "build", "models", "tiny.gguf");
const ENDLESS = existsSync(TINY) ? TINY : MODEL;
const ENDLESS_ID = ENDLESS.split("/").pop().replace(/\.gguf$/, "");
// Every command has a timeout; one that does not finish fails naming itself (code 'TIMEOUT').
const execFileP = promisify(execFile);
const run = (cmd, args, opts = {}) => execFileP(cmd, args, { timeout: 120_000, killSignal: "SIGKILL", ...opts }).catch((e) => {
  if (e.killed && e.signal === "SIGKILL") {
    const t = new Error(`${cmd} ${args.join(" ")} did not finish within ${(opts.timeout ?? 120_000) / 1000} s: killed`);
    t.code = "TIMEOUT";
    throw t;
  }
  throw e;
});
const tmp = mkdtempSync(join(tmpdir(), "onebit-server-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

// ---- helpers -------------------------------------------------------------------------------------

const servers = new Set();
process.on("exit", () => {
  for (const s of servers) s.child.kill("SIGKILL");
});

/** Starts `onebit serve` on a free port; resolves once it prints "listening on URL". */
async function startServer(args = [], { bin = BIN, env = {}, model = MODEL } = {}) {
  assert.ok(existsSync(bin), `${bin} missing: run make first`);
  assert.ok(existsSync(model), `${model} missing: run tools/make-models.sh build`);
  const child = spawn(bin, ["serve", "-m", model, "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  const srv = { child, stderr: "", exited: null };
  servers.add(srv);
  child.stderr.on("data", (d) => (srv.stderr += d));
  srv.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  srv.url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server did not start: ${srv.stderr}`)), 120000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+?)\/?\n/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    srv.exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening: ${srv.stderr}`));
    });
  });
  srv.port = Number(new URL(srv.url).port);
  srv.stop = async () => {
    child.kill("SIGTERM");
    const r = await srv.exited;
    servers.delete(srv);
    return r;
  };
  return srv;
}

/** A raw HTTP/1.1 exchange: sends exactly `request` (string or Buffer), reads until close. */
function raw(port, request) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const chunks = [];
    sock.on("data", (d) => chunks.push(d));
    sock.on("error", reject);
    sock.on("close", () => {
      const buf = Buffer.concat(chunks);
      const sep = buf.indexOf("\r\n\r\n");
      const head = buf.subarray(0, sep < 0 ? buf.length : sep).toString("latin1");
      const [statusLine, ...lines] = head.split("\r\n");
      const headers = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body: sep < 0 ? Buffer.alloc(0) : buf.subarray(sep + 4) });
    });
    sock.write(request);
  });
}

/** fetch with a JSON body (object, string or Buffer); returns {status, headers, text, json}. */
async function post(srv, path, body, headers = {}) {
  const data = typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const r = await fetch(srv.url + path, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: data });
  const bytes = Buffer.from(await r.arrayBuffer());
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); // throws on invalid UTF-8
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, text, json };
}

async function get(srv, path, headers = {}) {
  const r = await fetch(srv.url + path, { headers });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, text, json };
}

const health = async (srv) => (await get(srv, "/health")).json;

/** Polls /health until pred(stats) holds; fails after `ms`. */
async function waitHealth(srv, pred, ms = 20000) {
  const end = Date.now() + ms;
  let h;
  while (Date.now() < end) {
    h = await health(srv);
    if (pred(h)) return h;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`/health never reached the expected state; last: ${JSON.stringify(h)}`);
}

/** Checks an SSE body: data lines of JSON chunks, then [DONE]; returns the parsed chunks. */
function parseSSE(text) {
  assert.ok(text.endsWith("data: [DONE]\n\n"), `stream must end with [DONE]: ...${text.slice(-200)}`);
  const events = text.split("\n\n").filter((e) => e.length);
  for (const e of events) assert.ok(e.startsWith("data: "), `bad SSE event: ${e.slice(0, 100)}`);
  assert.equal(events.at(-1), "data: [DONE]");
  return events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
}

/** Validates the chunks of a chat stream; returns {content, finish, usage}. */
function checkChatStream(chunks, { usage = false, model = MODEL_ID } = {}) {
  assert.ok(chunks.length >= 2);
  const id = chunks[0].id;
  assert.match(id, /^chatcmpl-/);
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  let content = "";
  let finish = null;
  let usageChunk = null;
  for (const [i, c] of chunks.entries()) {
    assert.equal(c.id, id);
    assert.equal(c.object, "chat.completion.chunk");
    assert.equal(c.model, model);
    if (c.choices.length === 0) {
      assert.ok(usage && i === chunks.length - 1, "a usage chunk comes last, only with include_usage");
      usageChunk = c.usage;
      continue;
    }
    assert.equal(finish, null, "nothing after the finish chunk but usage");
    const ch = c.choices[0];
    assert.equal(ch.index, 0);
    if (typeof ch.delta.content === "string") content += ch.delta.content;
    if (ch.finish_reason !== null) {
      assert.ok(["stop", "length"].includes(ch.finish_reason));
      finish = ch.finish_reason;
    }
    if (usage && i < chunks.length - 1) assert.equal(c.usage, null);
  }
  assert.ok(finish, "a chunk carries finish_reason");
  if (usage) {
    assert.ok(usageChunk, "usage chunk present");
    assert.equal(usageChunk.total_tokens, usageChunk.prompt_tokens + usageChunk.completion_tokens);
  }
  return { content, finish, usage: usageChunk };
}

function checkError(r, status, { code, param } = {}) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.ok(r.json && typeof r.json.error === "object", `error JSON expected: ${r.text}`);
  const e = r.json.error;
  assert.equal(typeof e.message, "string");
  assert.ok(e.message.length > 0);
  assert.equal(typeof e.type, "string");
  assert.ok("param" in e && "code" in e, "error has param and code");
  if (code !== undefined) assert.equal(e.code, code);
  if (param !== undefined) assert.equal(e.param, param);
}

const user = (content) => ({ messages: [{ role: "user", content }] });

// ---- the command line -----------------------------------------------------------------------------

test("serve: --help exits 0; usage errors exit 2; an unreadable model exits 3; a taken port fails", async () => {
  const exit = async (args) => {
    try {
      await run(BIN, ["serve", ...args]);
      return 0;
    } catch (e) {
      return e.code;
    }
  };
  assert.equal(await exit(["--help"]), 0);
  assert.equal(await exit([]), 2);
  assert.equal(await exit(["-m", MODEL, "--port"]), 2);
  assert.equal(await exit(["-m", MODEL, "--port", "70000"]), 2);
  assert.equal(await exit(["-m", MODEL, "--slots", "0"]), 2);
  assert.equal(await exit(["-m", MODEL, "--bogus"]), 2);
  assert.equal(await exit(["-m", MODEL, "--web", join(tmp, "no-such-dir")]), 2);
  assert.equal(await exit(["-m", join(tmp, "missing.gguf"), "--port", "0"]), 3);
  const srv = await startServer([]);
  try {
    assert.equal(await exit(["-m", MODEL, "--port", String(srv.port)]), 1);
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

// ---- the main server: API behaviour ---------------------------------------------------------------

describe("API", { timeout: 300000 }, () => {
  let srv, client;
  before(async () => {
    // Two slots, a small context (cheap context overflows), max_tokens capped so that every
    // request of the corpus and the fuzz stays short.
    srv = await startServer(["--slots", "2", "-c", "1024", "-n", "16"]);
    client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "unused" });
  });
  after(async () => {
    const { code } = await srv.stop();
    assert.equal(code, 0, `server exit code: ${srv.stderr}`);
  });

  test("GET /health and /v1/models", async () => {
    const h = await health(srv);
    assert.equal(h.status, "ok");
    assert.equal(h.slots, 2);
    const m = await get(srv, "/v1/models");
    assert.equal(m.status, 200);
    assert.match(m.headers.get("content-type"), /application\/json/);
    assert.equal(m.json.object, "list");
    assert.equal(m.json.data.length, 1);
    assert.equal(m.json.data[0].id, MODEL_ID);
    assert.equal(m.json.data[0].object, "model");
    assert.equal(m.json.data[0].meta.n_ctx, 1024);
    const one = await get(srv, `/v1/models/${MODEL_ID}`);
    assert.equal(one.status, 200);
    assert.equal(one.json.id, MODEL_ID);
    checkError(await get(srv, "/v1/models/no-such-model"), 404, { code: "model_not_found" });
    const listed = [];
    for await (const x of client.models.list()) listed.push(x.id);
    assert.deepEqual(listed, [MODEL_ID]);
  });

  test("curl: chat completion, streaming chat, completion", async () => {
    const body = JSON.stringify({ model: MODEL_ID, ...user("Hello"), max_tokens: 4 });
    const a = await run("curl", ["-sS", "-w", "\n%{http_code}", `${srv.url}/v1/chat/completions`, "-H", "Content-Type: application/json", "-d", body]);
    const [json, code] = [a.stdout.slice(0, a.stdout.lastIndexOf("\n")), a.stdout.slice(a.stdout.lastIndexOf("\n") + 1)];
    assert.equal(code, "200");
    const r = JSON.parse(json);
    assert.equal(r.object, "chat.completion");
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.model, MODEL_ID);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, "assistant");
    assert.equal(typeof r.choices[0].message.content, "string");
    assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
    assert.ok(r.usage.prompt_tokens > 0);
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 4);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);

    const s = await run("curl", ["-sSN", `${srv.url}/v1/chat/completions`, "-d", JSON.stringify({ ...user("Hello"), max_tokens: 4, stream: true })]);
    checkChatStream(parseSSE(s.stdout));

    const c = await run("curl", ["-sS", `${srv.url}/v1/completions`, "-d", JSON.stringify({ prompt: "Once upon a time", max_tokens: 3 })]);
    const cr = JSON.parse(c.stdout);
    assert.equal(cr.object, "text_completion");
    assert.match(cr.id, /^cmpl-/);
    assert.equal(typeof cr.choices[0].text, "string");
    assert.equal(cr.usage.completion_tokens, 3);
    assert.equal(cr.choices[0].finish_reason, "length");

    const head = await run("curl", ["-sS", "-D", "-", "-o", "/dev/null", "-N", `${srv.url}/v1/completions`, "-d", JSON.stringify({ prompt: "x", max_tokens: 2, stream: true })]);
    assert.match(head.stdout, /content-type: text\/event-stream/i);
  });

  test("openai client: chat, non-streaming and streaming with usage", async () => {
    const r = await client.chat.completions.create({ model: MODEL_ID, ...user("Say hi"), max_tokens: 5 });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0].message.role, "assistant");
    assert.ok(r.usage.completion_tokens <= 5);
    const stream = await client.chat.completions.create({
      model: MODEL_ID, ...user("Say hi"), max_tokens: 5, stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    const { usage } = checkChatStream(chunks, { usage: true });
    assert.ok(usage.completion_tokens >= 1 && usage.completion_tokens <= 5);
  });

  test("openai client: completions, non-streaming and streaming", async () => {
    const r = await client.completions.create({ model: MODEL_ID, prompt: "The sky is", max_tokens: 4 });
    assert.equal(r.object, "text_completion");
    assert.equal(r.choices[0].finish_reason, "length");
    assert.equal(r.usage.completion_tokens, 4);
    const stream = await client.completions.create({ model: MODEL_ID, prompt: ["The sky is"], max_tokens: 4, stream: true });
    let text = "";
    let finish = null;
    for await (const ch of stream) {
      assert.equal(ch.object, "text_completion");
      text += ch.choices[0].text;
      if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
    }
    assert.equal(finish, "length");
    assert.equal(typeof text, "string");
  });

  test("max_tokens and max_completion_tokens give finish_reason length; the server cap applies", async () => {
    const a = await client.chat.completions.create({ model: MODEL_ID, ...user("Count"), max_tokens: 3, temperature: 0 });
    assert.equal(a.usage.completion_tokens, 3);
    assert.equal(a.choices[0].finish_reason, "length");
    const b = await post(srv, "/v1/chat/completions", { ...user("Count"), max_completion_tokens: 2, max_tokens: 9 });
    assert.equal(b.json.usage.completion_tokens, 2);
    const c = await post(srv, "/v1/completions", { prompt: "a", max_tokens: 1000 }); // capped by -n 16
    assert.equal(c.status, 200);
    assert.ok(c.json.usage.completion_tokens <= 16);
  });

  test("greedy decoding is deterministic; stop strings cut the text and finish with stop", async () => {
    const req = { prompt: "The quick brown fox", max_tokens: 24, temperature: 0 };
    const a = await client.completions.create({ model: MODEL_ID, ...req });
    const b = await client.completions.create({ model: MODEL_ID, ...req });
    assert.equal(a.choices[0].text, b.choices[0].text);
    const text = a.choices[0].text;
    if (a.choices[0].finish_reason !== "length" || [...text].length < 4) return; // a model that stops at once
    // A stop string taken from the middle of the greedy text: the answer must end right before it.
    const chars = [...text];
    const stop = chars.slice(2, 4).join("");
    const want = text.slice(0, text.indexOf(stop));
    const c = await client.completions.create({ model: MODEL_ID, ...req, stop: [stop, "\u0001never"] });
    assert.equal(c.choices[0].text, want);
    assert.equal(c.choices[0].finish_reason, "stop");
    const s = await client.completions.create({ model: MODEL_ID, ...req, stop, stream: true });
    let streamed = "";
    let finish = null;
    for await (const ch of s) {
      streamed += ch.choices[0].text;
      finish = ch.choices[0].finish_reason ?? finish;
    }
    assert.equal(streamed, want);
    assert.equal(finish, "stop");
  });

  test("seed: same seed, same text; different seeds vary", async () => {
    const req = { model: MODEL_ID, prompt: "Random words:", max_tokens: 12, temperature: 1.5, top_p: 1, top_k: 0 };
    const a = await client.completions.create({ ...req, seed: 1234 });
    const b = await client.completions.create({ ...req, seed: 1234 });
    assert.equal(a.choices[0].text, b.choices[0].text);
    const others = new Set();
    for (const seed of [1, 2, 3, 4, 5]) others.add((await client.completions.create({ ...req, seed })).choices[0].text);
    assert.ok(others.size > 1, "five seeds gave five identical texts");
  });

  test("chat_template_kwargs.enable_thinking changes the prompt (Qwen3 empty think block)", async () => {
    const on = await post(srv, "/v1/chat/completions", { ...user("Hi"), max_tokens: 1, chat_template_kwargs: { enable_thinking: true } });
    const off = await post(srv, "/v1/chat/completions", { ...user("Hi"), max_tokens: 1, chat_template_kwargs: { enable_thinking: false } });
    assert.equal(on.status, 200);
    assert.equal(off.status, 200);
    assert.ok(off.json.usage.prompt_tokens > on.json.usage.prompt_tokens);
  });

  test("completions: echo, token-id prompts", async () => {
    const r = await post(srv, "/v1/completions", { prompt: "Echo me", max_tokens: 2, echo: true });
    assert.ok(r.json.choices[0].text.startsWith("Echo me"));
    const t = await post(srv, "/v1/completions", { prompt: [9707, 11, 1879], max_tokens: 2 });
    assert.equal(t.status, 200);
    assert.equal(t.json.usage.prompt_tokens, 3);
  });

  test("prefix reuse: a repeated prompt goes back to the slot that holds it", async () => {
    const x = { ...user("The first conversation, about apples and pears and plums."), max_tokens: 2 };
    const y = { ...user("Another one entirely: boats, rivers, bridges, harbours."), max_tokens: 2 };
    // Each request starts with every slot idle: a job an earlier test left running (a cancelled
    // stream ends at its next token), or a slot not yet released after its answer was sent, would
    // send y to x's slot on a slow machine.
    const idle = async () => {
      for (const end = Date.now() + 20000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
        const h = await get(srv, "/health");
        if (h.json && h.json.slots_idle === h.json.slots) return;
      }
      assert.fail("the slots did not all become idle within 20 s");
    };
    await idle();
    const a = await post(srv, "/v1/chat/completions", x);
    await idle();
    await post(srv, "/v1/chat/completions", y);
    await idle();
    const c = await post(srv, "/v1/chat/completions", x);
    assert.equal(c.json.usage.prompt_tokens, a.json.usage.prompt_tokens);
    assert.equal(c.json.usage.prompt_tokens_details.cached_tokens, a.json.usage.prompt_tokens - 1);
  });

  test("a prompt longer than the context is a 400 context_length_exceeded", async () => {
    const long = "hello ".repeat(3000);
    checkError(await post(srv, "/v1/chat/completions", user(long)), 400, { code: "context_length_exceeded" });
    checkError(await post(srv, "/v1/completions", { prompt: long }), 400, { code: "context_length_exceeded", param: "prompt" });
  });

  test("invalid UTF-8 and NULs in input never break the output", async () => {
    const bad = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80, 0xe2, 0x82]);
    const body = Buffer.concat([
      Buffer.from('{"messages":[{"role":"user","content":"a'), bad, Buffer.from('\\u0000b"}],"max_tokens":3,"stop":["'),
      bad, Buffer.from('"]}'),
    ]);
    const r = await post(srv, "/v1/chat/completions", body); // post() decodes with fatal UTF-8
    assert.equal(r.status, 200, r.text);
    const badModel = Buffer.concat([Buffer.from('{"model":"x'), bad, Buffer.from('","prompt":"a"}')]);
    const m = await post(srv, "/v1/completions", badModel);
    checkError(m, 404, { code: "model_not_found" });
    assert.ok(m.json.error.message.includes("\uFFFD"));
    const s = await post(srv, "/v1/completions", Buffer.concat([Buffer.from('{"prompt":"'), bad, Buffer.from('","max_tokens":3,"stream":true}')]));
    assert.equal(s.status, 200);
    parseSSE(s.text);
  });

  // Each entry: [name, method, path, body, status, {code, param}] — every answer must be OpenAI's
  // error JSON with the right status.
  const chat = "/v1/chat/completions";
  const comp = "/v1/completions";
  const msgs = [{ role: "user", content: "x" }];
  const corpus = [
    ["empty body", "POST", chat, "", 400],
    ["truncated JSON", "POST", chat, "{", 400],
    ["JSON array body", "POST", chat, "[]", 400],
    ["JSON null body", "POST", chat, "null", 400],
    ["JSON string body", "POST", chat, '"hi"', 400],
    ["trailing garbage", "POST", chat, JSON.stringify({ messages: msgs }) + " x", 400],
    ["raw NUL byte", "POST", chat, '{"messages":[{"role":"user","content":"a\u0000"}]}', 400],
    ["nesting bomb", "POST", chat, "[".repeat(5000) + "]".repeat(5000), 400],
    ["lone surrogate escape", "POST", chat, '{"messages":[{"role":"user","content":"\\ud800"}]}', 400],
    ["missing messages", "POST", chat, {}, 400, { code: "missing_required_parameter", param: "messages" }],
    ["messages not an array", "POST", chat, { messages: "hi" }, 400, { param: "messages" }],
    ["messages empty", "POST", chat, { messages: [] }, 400, { code: "empty_array" }],
    ["message not an object", "POST", chat, { messages: [1] }, 400],
    ["message without content", "POST", chat, { messages: [{ role: "user" }] }, 400, { param: "messages[0].content" }],
    ["message without role", "POST", chat, { messages: [{ content: "x" }] }, 400, { param: "messages[0].role" }],
    ["unknown role", "POST", chat, { messages: [{ role: "wizard", content: "x" }] }, 400],
    ["role not a string", "POST", chat, { messages: [{ role: 5, content: "x" }] }, 400],
    ["content a number", "POST", chat, { messages: [{ role: "user", content: 5 }] }, 400],
    ["image content part", "POST", chat, { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }, 400],
    ["model not a string", "POST", chat, { model: 5, messages: msgs }, 400, { param: "model" }],
    ["unknown model", "POST", chat, { model: "gpt-4o", messages: msgs }, 404, { code: "model_not_found", param: "model" }],
    ["n = 2", "POST", chat, { n: 2, messages: msgs }, 400, { param: "n" }],
    ["n a string", "POST", chat, { n: "1", messages: msgs }, 400, { param: "n" }],
    ["temperature a string", "POST", chat, { temperature: "hot", messages: msgs }, 400, { param: "temperature" }],
    ["temperature too high", "POST", chat, { temperature: 5, messages: msgs }, 400, { param: "temperature" }],
    ["top_p negative", "POST", chat, { top_p: -1, messages: msgs }, 400, { param: "top_p" }],
    ["top_k fractional", "POST", chat, { top_k: 2.5, messages: msgs }, 400, { param: "top_k" }],
    ["min_p above 1", "POST", chat, { min_p: 2, messages: msgs }, 400, { param: "min_p" }],
    ["repeat_penalty zero", "POST", chat, { repeat_penalty: 0, messages: msgs }, 400, { param: "repeat_penalty" }],
    ["presence_penalty too big", "POST", chat, { presence_penalty: 3, messages: msgs }, 400, { param: "presence_penalty" }],
    ["max_tokens zero", "POST", chat, { max_tokens: 0, messages: msgs }, 400, { param: "max_tokens" }],
    ["max_tokens fractional", "POST", chat, { max_tokens: 1.5, messages: msgs }, 400, { param: "max_tokens" }],
    ["max_tokens a string", "POST", chat, { max_tokens: "10", messages: msgs }, 400, { param: "max_tokens" }],
    ["max_completion_tokens negative", "POST", chat, { max_completion_tokens: -3, messages: msgs }, 400, { param: "max_completion_tokens" }],
    ["stop a number", "POST", chat, { stop: 5, messages: msgs }, 400, { param: "stop" }],
    ["stop array of numbers", "POST", chat, { stop: [1], messages: msgs }, 400, { param: "stop" }],
    ["too many stop strings", "POST", chat, { stop: Array.from({ length: 17 }, (_, i) => `s${i}`), messages: msgs }, 400, { param: "stop" }],
    ["stop string too long", "POST", chat, { stop: "x".repeat(257), messages: msgs }, 400, { param: "stop" }],
    ["stream a string", "POST", chat, { stream: "yes", messages: msgs }, 400, { param: "stream" }],
    ["stream_options a number", "POST", chat, { stream_options: 1, messages: msgs }, 400, { param: "stream_options" }],
    ["seed fractional", "POST", chat, { seed: 1.5, messages: msgs }, 400, { param: "seed" }],
    ["logprobs requested", "POST", chat, { logprobs: true, messages: msgs }, 400, { param: "logprobs" }],
    ["tools", "POST", chat, { tools: [{ type: "function", function: { name: "not a name!" } }], messages: msgs }, 400, { param: "tools" }],
    ["bad response_format", "POST", chat, { response_format: { type: "xml" }, messages: msgs }, 400, { param: "response_format" }],
    ["chat_template_kwargs a number", "POST", chat, { chat_template_kwargs: 1, messages: msgs }, 400],
    ["enable_thinking a string", "POST", chat, { chat_template_kwargs: { enable_thinking: "no" }, messages: msgs }, 400],
    ["completion without prompt", "POST", comp, {}, 400, { code: "missing_required_parameter", param: "prompt" }],
    ["prompt a number", "POST", comp, { prompt: 5 }, 400, { param: "prompt" }],
    ["two prompts", "POST", comp, { prompt: ["a", "b"] }, 400, { param: "prompt" }],
    ["negative token id", "POST", comp, { prompt: [-1] }, 400, { param: "prompt" }],
    ["huge token id", "POST", comp, { prompt: [1e12] }, 400, { param: "prompt" }],
    ["empty prompt", "POST", comp, { prompt: "" }, 400, { param: "prompt" }],
    ["suffix", "POST", comp, { prompt: "a", suffix: "b" }, 400, { param: "suffix" }],
    ["best_of 2", "POST", comp, { prompt: "a", best_of: 2 }, 400, { param: "best_of" }],
    ["completion logprobs", "POST", comp, { prompt: "a", logprobs: 3 }, 400, { param: "logprobs" }],
    ["GET on chat", "GET", chat, null, 405, { code: "method_not_allowed" }],
    ["PUT on completions", "PUT", comp, "{}", 405, { code: "method_not_allowed" }],
    ["DELETE on models", "DELETE", "/v1/models", null, 405],
    ["POST on models", "POST", "/v1/models", "{}", 405],
    ["unknown /v1 path", "GET", "/v1/audio/speech", null, 404, { code: "unknown_url" }],
    ["unknown model path", "GET", "/v1/models/x", null, 404, { code: "model_not_found" }],
  ];

  test(`malformed requests (${corpus.length}) get the right status and an OpenAI error`, async () => {
    assert.ok(corpus.length >= 25);
    for (const [name, method, path, body, status, want] of corpus) {
      const init = { method, headers: { "Content-Type": "application/json" } };
      if (body !== null) init.body = typeof body === "string" ? body : JSON.stringify(body);
      const r = await fetch(srv.url + path, init);
      const text = await r.text();
      let json;
      try {
        json = JSON.parse(text);
      } catch {}
      try {
        checkError({ status: r.status, text, json }, status, want ?? {});
        assert.match(r.headers.get("content-type"), /application\/json/);
      } catch (e) {
        e.message = `[${name}] ${e.message}`;
        throw e;
      }
    }
    assert.equal((await health(srv)).status, "ok");
  });

  test("413 for an oversize body (Content-Length and chunked), 403 for a foreign Host", async () => {
    // Content-Length over the limit: the answer comes as soon as the headers are in. Only the
    // headers are sent: a client still writing the body when the server closes may see EPIPE or a
    // reset instead of the answer (that race once failed this test through fetch).
    const big = await raw(srv.port, `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n` +
      "Content-Type: application/json\r\nContent-Length: 1100000\r\nConnection: close\r\n\r\n");
    checkError({ status: big.status, text: big.body.toString(), json: JSON.parse(big.body.toString()) }, 413, { code: "request_too_large" });
    // chunked upload: no Content-Length, the limit still applies while reading
    const chunked = await new Promise((resolve, reject) => {
      const req = http.request(`${srv.url}/v1/completions`, { method: "POST", headers: { "Transfer-Encoding": "chunked" } }, (res) => {
        let t = "";
        res.on("data", (d) => (t += d));
        res.on("end", () => resolve({ status: res.statusCode, text: t, json: JSON.parse(t) }));
      });
      req.on("error", reject);
      for (let i = 0; i < 20; i++) req.write("a".repeat(100000));
      req.end();
    });
    checkError(chunked, 413);
    const r = await raw(srv.port, "GET /v1/models HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n");
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body.toString()).error.code, "host_not_allowed");
    const rebound = await raw(srv.port, "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1.evil.example\r\nConnection: close\r\n\r\n");
    assert.equal(rebound.status, 403);
    for (const host of [`localhost:${srv.port}`, `127.0.0.1:${srv.port}`, "127.1.2.3", `[::1]:${srv.port}`, "app.localhost"]) {
      const ok = await raw(srv.port, `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.equal(ok.status, 200, host);
    }
  });

  test("random mutations of valid requests: always an answer, never a 5xx", async () => {
    let x = 12345;
    const rnd = (n) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n);
    const seeds = [
      JSON.stringify({ messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi there" }], max_tokens: 2, stop: ["\n"] }),
      JSON.stringify({ prompt: "abc", max_tokens: 2, temperature: 0.5, stream: true }),
    ];
    for (let i = 0; i < 150; i++) {
      const base = Buffer.from(seeds[i % 2]);
      const m = Buffer.from(base);
      for (let k = 0, n = 1 + rnd(4); k < n; k++) m[rnd(m.length)] = rnd(3) ? rnd(256) : "{}[]\":,\\u0".charCodeAt(rnd(11));
      const r = await fetch(srv.url + (i % 2 ? "/v1/completions" : "/v1/chat/completions"), { method: "POST", body: m });
      const bytes = Buffer.from(await r.arrayBuffer());
      const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      assert.ok(r.status < 500, `mutation ${i} -> ${r.status}: ${text}`);
      if (r.status !== 200) checkError({ status: r.status, text, json: JSON.parse(text) }, r.status);
      else if (r.headers.get("content-type").startsWith("text/event-stream")) parseSSE(text);
      else JSON.parse(text);
    }
    const h = await health(srv);
    assert.equal(h.failed, 0);
  });

  test("load: 8 concurrent streaming clients for ~10 s, every answer complete", async () => {
    // idle first: a request an earlier test left running must not complete inside this count
    const before = await waitHealth(srv, (s) => s.generating === 0 && s.queued === 0);
    const end = Date.now() + 10000;
    let done = 0;
    const client1 = async (k) => {
      let n = 0;
      while (Date.now() < end || n === 0) {
        const r = await post(srv, "/v1/chat/completions", {
          messages: [{ role: "user", content: `Client ${k} request ${n}: tell me something.` }],
          max_tokens: 4 + ((k + n) % 8), stream: true, stream_options: { include_usage: true },
        });
        assert.equal(r.status, 200, r.text);
        const { usage } = checkChatStream(parseSSE(r.text), { usage: true });
        assert.ok(usage.completion_tokens <= 4 + ((k + n) % 8));
        n++;
        done++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, k) => client1(k)));
    const h = await waitHealth(srv, (s) => s.generating === 0 && s.queued === 0);
    assert.ok(done >= 8);
    assert.equal(h.failed, before.failed);
    assert.equal(h.rejected, before.rejected);
    assert.equal(h.completed - before.completed, done);
  });
});

// ---- static files and the API key ---------------------------------------------------------------

describe("web app and API key", { timeout: 60000 }, () => {
  let srv;
  const web = join(tmp, "web");
  const outside = join(tmp, "outside");
  const files = {
    "index.html": ["<!doctype html><title>t</title>", "text/html"],
    "app.js": ["export const a = 1;", "text/javascript"],
    "mod.mjs": ["export const b = 2;", "text/javascript"],
    "k.wasm": ["\0asm\x01\0\0\0", "application/wasm"],
    "s.css": ["body{}", "text/css"],
    "d.json": ['{"a":1}', "application/json"],
    "i.png": ["\x89PNG", "image/png"],
    "i.svg": ["<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"],
    "m.gguf": ["GGUF", "application/octet-stream"],
    "sub/index.html": ["<p>sub</p>", "text/html"],
  };
  before(async () => {
    mkdirSync(join(web, "sub"), { recursive: true });
    mkdirSync(join(web, "empty"), { recursive: true });
    mkdirSync(outside, { recursive: true });
    for (const [f, [content]] of Object.entries(files)) writeFileSync(join(web, f), content, "latin1");
    writeFileSync(join(web, ".secret"), "TOPSECRET hidden");
    writeFileSync(join(outside, "secret.txt"), "TOPSECRET outside");
    symlinkSync(join(web, "app.js"), join(web, "link-in.js"));
    symlinkSync(join(outside, "secret.txt"), join(web, "link-out.txt"));
    symlinkSync(outside, join(web, "dir-out"));
    srv = await startServer(["--web", web, "--api-key", "s3cret", "-n", "8"]);
  });
  after(async () => {
    assert.equal((await srv.stop()).code, 0);
  });

  test("files are served with their types and cross-origin isolation headers", async () => {
    for (const [f, [content, type]] of Object.entries(files)) {
      const r = await fetch(`${srv.url}/${f}`);
      assert.equal(r.status, 200, f);
      assert.ok(r.headers.get("content-type").startsWith(type), `${f}: ${r.headers.get("content-type")}`);
      assert.equal(r.headers.get("cross-origin-opener-policy"), "same-origin");
      assert.equal(r.headers.get("cross-origin-embedder-policy"), "require-corp");
      assert.equal(Buffer.from(await r.arrayBuffer()).toString("latin1"), content);
    }
    const idx = await get(srv, "/");
    assert.equal(idx.text, files["index.html"][0]);
    assert.equal(idx.headers.get("cross-origin-embedder-policy"), "require-corp");
    assert.equal((await get(srv, "/sub/")).text, "<p>sub</p>");
    assert.equal((await get(srv, "/link-in.js")).text, files["app.js"][0]);
    const head = await fetch(`${srv.url}/app.js`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(files["app.js"][0].length));
  });

  test("no listings, no hidden files, no way out of the folder", async () => {
    const attempts = [
      ["/empty/", [404]], ["/empty", [404]], ["/nope.html", [404]], ["/.secret", [403, 404]],
      ["/link-out.txt", [403]], ["/dir-out/secret.txt", [403]],
      ["/../outside/secret.txt", [403]], ["/%2e%2e/outside/secret.txt", [403]], ["/%2E%2E%2Foutside%2Fsecret.txt", [403]],
      ["/sub/..%2f..%2foutside/secret.txt", [403]], ["/sub/../../outside/secret.txt", [403]],
      ["/..%5coutside%5csecret.txt", [403, 404]], ["/a%00b", [404]], ["/index.html%00.js", [404]],
      ["//etc/passwd", [403, 404]], ["/%2fetc/passwd", [403, 404]], ["/sub/%2e%2e/%2e%2e/outside/secret.txt", [403]],
      ["http://127.0.0.1/../outside/secret.txt", [400, 403, 404]],
    ];
    for (const [path, want] of attempts) {
      const r = await raw(srv.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      assert.ok(want.includes(r.status), `${path} -> ${r.status}`);
      assert.ok(!r.body.toString("latin1").includes("TOPSECRET"), `${path} leaked a file`);
    }
    const nul = await raw(srv.port, Buffer.from("GET /a\0/../../outside/secret.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", "latin1"));
    assert.ok(!nul.body.toString("latin1").includes("TOPSECRET"));
    const p = await raw(srv.port, "POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert.equal(p.status, 405);
  });

  test("the API key guards /v1 (not /health or the page)", async () => {
    checkError(await get(srv, "/v1/models"), 401, { code: "invalid_api_key" });
    checkError(await get(srv, "/v1/models", { Authorization: "Bearer wrong" }), 401);
    checkError(await get(srv, "/v1/models", { Authorization: "Basic czNjcmV0" }), 401);
    checkError(await post(srv, "/v1/chat/completions", user("x")), 401);
    checkError(await post(srv, "/v1/chat/completions", user("x"), { Authorization: "Bearer s3cre" }), 401);
    assert.equal((await get(srv, "/v1/models", { Authorization: "Bearer s3cret" })).status, 200);
    assert.equal((await get(srv, "/v1/models", { Authorization: "bearer s3cret" })).status, 200);
    assert.equal((await get(srv, "/health")).status, 200);
    assert.equal((await get(srv, "/")).status, 200);
    const good = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "s3cret" });
    const r = await good.chat.completions.create({ model: MODEL_ID, ...user("hi"), max_tokens: 2 });
    assert.equal(r.object, "chat.completion");
    const bad = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "nope", maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create({ model: MODEL_ID, ...user("hi") }), (e) => e.status === 401);
  });
});

describe("default page", { timeout: 60000 }, () => {
  test("without --web: the repository's web/ folder, or the built-in page", async () => {
    const srv = await startServer(["-n", "4"]);
    try {
      const r = await get(srv, "/");
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("cross-origin-opener-policy"), "same-origin");
      if (existsSync(join(root, "web", "index.html"))) assert.equal(r.text, readFileSync(join(root, "web", "index.html"), "utf8"));
      else assert.match(r.text, /onebit server is running/);
    } finally {
      assert.equal((await srv.stop()).code, 0);
    }
  });
});

// ---- disconnects, queue and time limits, shutdown -------------------------------------------------

/** Opens a request with Node's http; resolves with the request and response once headers arrive. */
function openRequest(srv, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${srv.url}${path}`, { method: "POST", headers: { "Content-Type": "application/json" } });
    req.on("response", (res) => resolve({ req, res }));
    req.on("error", (e) => (e.code === "ECONNRESET" ? null : reject(e)));
    req.end(JSON.stringify(body));
  });
}

/** Sends a request whose answer we never wait for; returns the request to abort. */
function fireRequest(srv, path, body) {
  const req = http.request(`${srv.url}${path}`, { method: "POST", headers: { "Content-Type": "application/json" } });
  req.on("error", () => {});
  req.on("response", (res) => res.resume());
  req.end(JSON.stringify(body));
  return req;
}

describe("disconnects and limits", { timeout: 120000 }, () => {
  let srv;
  // A context long enough that a full generation takes far longer than any wait below: a request
  // that is not cancelled shows up as still generating, or as completed instead of cancelled.
  const long = { prompt: "Tell me a very long story.", max_tokens: 7000, temperature: 0, stream: true };
  before(async () => {
    srv = await startServer(["-c", "8192", "--queue", "1"], { model: ENDLESS });
  });
  after(async () => {
    assert.equal((await srv.stop()).code, 0);
  });

  test("a client that leaves mid-stream stops its generation", async () => {
    const h0 = await health(srv);
    const { req, res } = await openRequest(srv, "/v1/completions", long);
    assert.equal(res.statusCode, 200);
    let events = 0;
    let ended = false;
    await new Promise((resolve) => {
      res.on("data", (d) => { events += (d.toString().match(/data: /g) || []).length; if (events >= 3) resolve(); });
      res.on("end", () => { ended = true; resolve(); });
    });
    assert.ok(!ended, "the generation ended by itself before the client left");
    req.destroy();
    const h = await waitHealth(srv, (s) => s.generating === 0);
    assert.equal(h.cancelled, h0.cancelled + 1);
    assert.equal(h.completed, h0.completed);
  });

  test("a client that leaves a non-streaming request stops its generation", async () => {
    const h0 = await health(srv);
    const req = fireRequest(srv, "/v1/completions", { ...long, stream: false });
    await waitHealth(srv, (s) => s.generating === 1);
    await new Promise((r) => setTimeout(r, 300)); // well into the generation
    req.destroy();
    const h = await waitHealth(srv, (s) => s.generating === 0);
    assert.equal(h.cancelled, h0.cancelled + 1);
    assert.equal(h.completed, h0.completed);
  });

  test("queue limit: 503 with Retry-After; a queued client that leaves is dropped", async () => {
    const h0 = await health(srv);
    const a = await openRequest(srv, "/v1/completions", long);
    a.res.resume();
    await waitHealth(srv, (s) => s.generating === 1);
    const b = fireRequest(srv, "/v1/chat/completions", { ...user("queued"), max_tokens: 5 });
    await waitHealth(srv, (s) => s.queued === 1);
    const c = await post(srv, "/v1/chat/completions", { ...user("no room"), max_tokens: 5 });
    checkError(c, 503, { code: "server_busy" });
    assert.equal(c.headers.get("retry-after"), "1");
    b.destroy();
    let h = await waitHealth(srv, (s) => s.queued === 0);
    assert.equal(h.generating, 1, "the running request is unaffected");
    a.req.destroy();
    h = await waitHealth(srv, (s) => s.generating === 0);
    assert.equal(h.cancelled, h0.cancelled + 2);
    assert.equal(h.rejected, h0.rejected + 1);
    assert.equal(h.completed, h0.completed);
  });
});

describe("time limit and shutdown", { timeout: 120000 }, () => {
  test("--timeout ends a long generation with finish_reason length", async () => {
    // 16000 tokens take far longer than one second: only the deadline can end this early.
    const srv = await startServer(["-c", "16384", "--timeout", "1"], { model: ENDLESS });
    try {
      const r = await post(srv, "/v1/completions", { prompt: "Go on and on", max_tokens: 16000, temperature: 0 });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].finish_reason, "length");
      assert.ok(r.json.usage.completion_tokens < 16000);
      const s = await post(srv, "/v1/chat/completions", { ...user("Go on"), max_tokens: 16000, temperature: 0, stream: true });
      assert.equal(checkChatStream(parseSSE(s.text), { model: ENDLESS_ID }).finish, "length");
    } finally {
      assert.equal((await srv.stop()).code, 0);
    }
  });

  test("SIGTERM during a stream: the stream ends, the process exits 0", async () => {
    const srv = await startServer(["-c", "8192"], { model: ENDLESS });
    const { res } = await openRequest(srv, "/v1/completions", { prompt: "Long", max_tokens: 7000, stream: true });
    let text = "";
    const ended = new Promise((resolve) => { res.on("data", (d) => (text += d)); res.on("end", resolve); res.on("error", resolve); });
    await waitHealth(srv, (s) => s.generating === 1);
    const { code, signal } = await srv.stop();
    await ended;
    assert.equal(signal, null);
    assert.equal(code, 0, srv.stderr);
    assert.ok(text.endsWith("data: [DONE]\n\n"), text.slice(-300));
    assert.match(text, /shutting down/);
  });
});

// ---- the same load under AddressSanitizer ---------------------------------------------------------

describe("AddressSanitizer", { timeout: 300000 }, () => {
  test("rounds of concurrent streaming load: no report, no leak, RSS flat", { skip: !existsSync(ASAN_BIN) && `${ASAN_BIN} missing (make asan)` }, async (t) => {
    const srv = await startServer(["--slots", "2", "-c", "512", "-n", "8"], {
      bin: ASAN_BIN,
      env: { ASAN_OPTIONS: "detect_leaks=1:quarantine_size_mb=8:abort_on_error=0", UBSAN_OPTIONS: "print_stacktrace=1" },
    });
    const rss = () => Number(readFileSync(`/proc/${srv.child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) * 1024;
    const round = async (ms) => {
      const end = Date.now() + ms;
      let n = 0;
      await Promise.all(Array.from({ length: 8 }, async (_, k) => {
        for (let i = 0; Date.now() < end || i === 0; i++) {
          const r = await post(srv, k % 2 ? "/v1/chat/completions" : "/v1/completions", {
            ...(k % 2 ? user(`asan ${k} ${i}`) : { prompt: `asan ${k} ${i}` }),
            max_tokens: 6, stream: k % 4 !== 3, stream_options: { include_usage: true },
          });
          assert.equal(r.status, 200, r.text);
          if (k % 4 !== 3) parseSSE(r.text);
          n++;
        }
        // one bad request and one disconnect per client and round exercise the error paths
        checkError(await post(srv, "/v1/chat/completions", "{bad"), 400);
        const a = fireRequest(srv, "/v1/completions", { prompt: "bye", max_tokens: 8, stream: true });
        await new Promise((r) => setTimeout(r, 20));
        a.destroy();
      }));
      await waitHealth(srv, (s) => s.generating === 0 && s.queued === 0);
      return n;
    };
    const sizes = [];
    for (let i = 0; i < 4; i++) {
      assert.ok((await round(3000)) >= 8);
      sizes.push(rss());
    }
    const { code } = await srv.stop();
    assert.doesNotMatch(srv.stderr, /Sanitizer|runtime error/, srv.stderr);
    assert.equal(code, 0, srv.stderr);
    // After a warm-up round, resident memory must not keep growing round after round.
    const growth = sizes.at(-1) - sizes[1];
    t.diagnostic(`RSS after each round (MiB): ${sizes.map((b) => (b / 1048576).toFixed(1)).join(", ")}`);
    assert.ok(growth < 16 * 1024 * 1024, `RSS grew by ${growth} bytes over rounds: ${sizes.join(", ")}`);
  });
});
