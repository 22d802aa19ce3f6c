// `onebit serve` hosts the whole web app: the page, the wasm engine at /build/wasm/ and the served
// model at /models/<its file name>, all cross-origin isolated, nothing else from outside web/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import http from "node:http";
import { existsSync, statSync } from "node:fs";

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function get(port, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: "GET" }, (res) => {
      let n = 0;
      res.on("data", (d) => { n += d.length; });
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, size: n }));
    });
    req.on("error", reject);
    req.end();
  });
}

// Each test bounds its server's life: the test's timeout fails it, and finally kills the server.
test("serve: page, wasm engine and the served model are reachable; nothing else is", { skip: !existsSync("build/wasm/onebit.wasm") && "build/wasm missing (make wasm)", timeout: 180_000 }, async () => {
  const port = await freePort();
  const srv = spawn("build/onebit", ["serve", "-m", "models/demo.gguf", "--port", String(port)], { stdio: "ignore" });
  try {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      try { up = (await get(port, "/health")).status === 200; } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
    assert.ok(up, "server did not start");
    const page = await get(port, "/");
    assert.equal(page.status, 200);
    assert.equal(page.headers["cross-origin-embedder-policy"], "require-corp");
    const wasm = await get(port, "/build/wasm/onebit.wasm");
    assert.equal(wasm.status, 200);
    assert.equal(wasm.headers["content-type"], "application/wasm");
    assert.equal(wasm.headers["cross-origin-opener-policy"], "same-origin");
    const model = await get(port, "/models/demo.gguf");
    assert.equal(model.status, 200);
    assert.equal(model.size, statSync("models/demo.gguf").size);
    assert.equal((await get(port, "/models/tiny.gguf")).status, 404);
    assert.equal((await get(port, "/models/")).status, 404);
    assert.equal((await get(port, "/build/wasm/../../Makefile")).status, 403);
    assert.equal((await get(port, "/build/wasm/obj")).status, 404);
    assert.equal((await get(port, "/build/onebit")).status, 404);
  } finally {
    srv.kill("SIGTERM");
  }
});

// What a newcomer meets through `make run`'s server: chat content without Qwen3's empty think
// block (streamed or not), sampling values refused with the library's message (the same as the
// CLI's), the served model's file name for the page, and a favicon.
test("serve: no empty think block in chat content; sampling ranges from the shared check; page extras", { timeout: 180_000 }, async () => {
  const port = await freePort();
  const srv = spawn("build/onebit", ["serve", "-m", "models/demo.gguf", "--port", String(port)], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  const post = (body) => fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
  try {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      try { up = (await get(port, "/health")).status === 200; } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
    assert.ok(up, "server did not start");
    const msgs = [{ role: "user", content: "Who are you?" }];
    const r = await (await post({ messages: msgs, max_tokens: 16, temperature: 0 })).json();
    const content = r.choices[0].message.content;
    assert.ok(content.length > 0);
    assert.doesNotMatch(content, /<think>|<\/think>/);
    const s = await (await post({ messages: msgs, max_tokens: 16, temperature: 0, stream: true })).text();
    const streamed = s.split("\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? "").join("");
    assert.equal(streamed, content);
    for (const [field, value, re] of [["temperature", -1, /temperature must be a number between 0 and 2, got -1/],
      ["top_p", 5, /top_p must be a number between 0 and 1, got 5/], ["top_k", -7, /top_k must be an integer between -1 and/],
      ["repeat_penalty", 0, /repeat_penalty must be a number between 0.01 and 100/]]) {
      const e = await post({ messages: msgs, [field]: value });
      assert.equal(e.status, 400, field);
      const j = await e.json();
      assert.equal(j.error.param, field);
      assert.match(j.error.message, re);
    }
    const models = await (await fetch(`${url}/v1/models`)).json();
    assert.equal(models.data[0].meta.file, "demo.gguf");
    const icon = await get(port, "/favicon.svg");
    assert.equal(icon.status, 200);
    assert.match(icon.headers["content-type"], /svg/);
  } finally {
    srv.kill("SIGTERM");
  }
});
