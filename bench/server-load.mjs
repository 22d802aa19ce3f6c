// server-load.mjs — a bounded load test of `onebit serve`: N clients, each sending chat requests
// back to back for a fixed time, over loopback only. Prints requests/s, generated tokens/s and
// latency percentiles (whole request, and time to first token when streaming).
//
//   node bench/server-load.mjs [--clients 8] [--duration 10] [--max-tokens 32] [--no-stream]
//                              [--slots 1] [--threads N] [--model FILE] [--bin build/onebit] [--json]
//   node bench/server-load.mjs --url http://127.0.0.1:8080 [...]    (a server already running)
//
// Without --url it starts its own server on a free port (the model defaults to models/demo.gguf,
// else build/models/tiny.gguf) and also reports the server's resident memory before and after.
// Not a test: it asserts nothing, it measures.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const opt = {
  clients: 8, duration: 10, "max-tokens": 32, slots: 1, threads: 0, stream: true, json: false, url: null,
  bin: join(root, "build", "onebit"),
  model: [join(root, "models", "demo.gguf"), join(root, "build", "models", "tiny.gguf")].find((p) => existsSync(p)),
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i].replace(/^--/, "");
  if (a === "no-stream") opt.stream = false;
  else if (a === "json") opt.json = true;
  else if (a in opt && i + 1 < argv.length) opt[a] = typeof opt[a] === "number" ? Number(argv[++i]) : argv[++i];
  else {
    console.error(`server-load: unknown option ${argv[i]}`);
    process.exit(2);
  }
}
for (const k of ["clients", "duration", "max-tokens", "slots", "threads"])
  if (!Number.isFinite(opt[k]) || opt[k] < (k === "threads" ? 0 : 1)) {
    console.error(`server-load: --${k} must be a positive number`);
    process.exit(2);
  }
opt.clients = Math.min(opt.clients, 256);
opt.duration = Math.min(opt.duration, 600);

let server = null;
const rss = () => server && Number(readFileSync(`/proc/${server.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;

async function startServer() {
  if (!existsSync(opt.bin) || !opt.model || !existsSync(opt.model)) {
    console.error(`server-load: need ${opt.bin} and a model (make; tools/make-models.sh build)`);
    process.exit(1);
  }
  const args = ["serve", "-m", opt.model, "--port", "0", "--slots", String(opt.slots), "--queue", String(opt.clients + 8)];
  if (opt.threads > 0) args.push("-t", String(opt.threads));
  server = spawn(opt.bin, args,
    { stdio: ["ignore", "pipe", "inherit"] });
  process.on("exit", () => server.kill("SIGKILL"));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${opt.bin} serve did not start listening within 120 s`)), 120_000);
    server.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+?)\/?\n/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const url = opt.url ?? (await startServer());
const host = new URL(url).hostname;
if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host)) {
  console.error("server-load: loopback URLs only");
  process.exit(2);
}

const pct = (xs, p) => (xs.length ? xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN);

async function one(k, n) {
  const body = {
    messages: [{ role: "user", content: `Client ${k}, request ${n}: write a few words about the sea.` }],
    max_tokens: opt["max-tokens"], stream: opt.stream, stream_options: opt.stream ? { include_usage: true } : undefined,
  };
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  let ttft = NaN;
  let usage = null;
  if (!opt.stream) {
    usage = (await r.json()).usage;
  } else {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of r.body) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
        const c = JSON.parse(ev.slice(6));
        if (c.usage) usage = c.usage;
        if (Number.isNaN(ttft) && c.choices?.[0]?.delta?.content) ttft = performance.now() - t0;
      }
    }
  }
  return { ms: performance.now() - t0, ttft, gen: usage?.completion_tokens ?? 0, prompt: usage?.prompt_tokens ?? 0 };
}

const rss0 = rss();
const results = [];
let errors = 0;
const t0 = performance.now();
const end = t0 + opt.duration * 1000;
await Promise.all(Array.from({ length: opt.clients }, async (_, k) => {
  for (let n = 0; performance.now() < end; n++) {
    try {
      results.push(await one(k, n));
    } catch (e) {
      errors++;
      if (errors <= 3) console.error(`server-load: ${e.message}`);
    }
  }
}));
const secs = (performance.now() - t0) / 1000;
const gen = results.reduce((a, r) => a + r.gen, 0);
const lat = results.map((r) => r.ms);
const ttfts = results.map((r) => r.ttft).filter((x) => !Number.isNaN(x));
const rss1 = rss();
if (server) {
  server.kill("SIGTERM");
  await new Promise((r) => server.on("exit", r));
}
const report = {
  clients: opt.clients, duration_s: +secs.toFixed(2), stream: opt.stream, max_tokens: opt["max-tokens"],
  slots: opt.url ? null : opt.slots, threads: opt.url ? null : opt.threads || "default", requests: results.length, errors,
  requests_per_s: +(results.length / secs).toFixed(2), generated_tokens: gen, tokens_per_s: +(gen / secs).toFixed(1),
  latency_ms: { p50: +pct(lat, 50).toFixed(1), p99: +pct(lat, 99).toFixed(1) },
  ttft_ms: opt.stream ? { p50: +pct(ttfts, 50).toFixed(1), p99: +pct(ttfts, 99).toFixed(1) } : null,
  server_rss_mib: server ? { before: +rss0.toFixed(1), after: +rss1.toFixed(1) } : null,
};
if (opt.json) console.log(JSON.stringify(report));
else {
  console.log(`clients ${report.clients}, ${report.duration_s} s, ${opt.stream ? "streaming" : "non-streaming"}, max_tokens ${report.max_tokens}${server ? `, ${opt.slots} slot(s)` : ""}`);
  console.log(`requests   ${report.requests} (${errors} errors), ${report.requests_per_s} req/s`);
  console.log(`generated  ${gen} tokens, ${report.tokens_per_s} tokens/s`);
  console.log(`latency    p50 ${report.latency_ms.p50} ms, p99 ${report.latency_ms.p99} ms`);
  if (report.ttft_ms) console.log(`first tok  p50 ${report.ttft_ms.p50} ms, p99 ${report.ttft_ms.p99} ms`);
  if (report.server_rss_mib) console.log(`server RSS ${report.server_rss_mib.before} -> ${report.server_rss_mib.after} MiB`);
}
process.exit(errors ? 1 : 0);
