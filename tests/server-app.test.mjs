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

test("serve: page, wasm engine and the served model are reachable; nothing else is", { skip: !existsSync("build/wasm/onebit.wasm") && "build/wasm missing (make wasm)" }, async () => {
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
