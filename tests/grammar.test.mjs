// grammar.test.mjs — constrained output end to end through `onebit serve` on the random-weight tiny
// model (its free text is noise, so only the grammar makes the output well-formed):
//   - hundreds of generated JSON Schemas: every output parses and validates with ajv (+ ajv-formats),
//     a validator that no one here wrote;
//   - a GBNF set (bounded arithmetic, lists, JSON, Unicode classes, negated classes): every output is
//     checked by a matcher written here independently of src/core/grammar.c (a JS recursive-descent
//     evaluator, JSON.parse, or an equivalent JavaScript regular expression);
//   - malformed grammars and schemas: 400 with a message that says where.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const root = fileURLToPath(new URL("..", import.meta.url));
const BIN = process.env.ONEBIT_BIN ?? join(root, "build", "onebit");
const MODEL = join(root, "build", "models", "tiny.gguf");
const N_SCHEMAS = Number(process.env.ONEBIT_GRAMMAR_SCHEMAS ?? 200);

let srv;
before(async () => {
  assert.ok(existsSync(BIN), `${BIN} missing: run make first`);
  assert.ok(existsSync(MODEL), `${MODEL} missing: run tools/make-models.sh build`);
  const child = spawn(BIN, ["serve", "-m", MODEL, "--port", "0", "--slots", "2", "-c", "2048"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`onebit serve did not start in 60 s: ${err}`)), 60000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+?)\/?\n/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`onebit serve exited (${code}): ${err}`)));
  });
  srv = { child, url };
});
after(() => srv?.child.kill("SIGKILL"));

async function complete(body, timeoutMs = 60000) {
  const r = await fetch(`${srv.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "Answer:", temperature: 1, max_tokens: 1500, ...body }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: r.status, json: await r.json() };
}

// ---- generated schemas -------------------------------------------------------------------------

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** A random schema whose instances are bounded (strings and arrays have maxima). */
function genSchema(r, depth = 0, defs = null) {
  const pick = (a) => a[Math.floor(r() * a.length)];
  const leaf = () =>
    pick([
      () => (r() < 0.3 ? { type: "string", minLength: 1, maxLength: 1 + Math.floor(r() * 5) } : { type: "string", maxLength: Math.floor(r() * 6) }),
      () => ({ type: "integer" }),
      () => ({ type: "integer", minimum: 0 }),
      () => ({ type: "number" }),
      () => ({ type: "boolean" }),
      () => ({ type: "null" }),
      () => ({ enum: ["red", "green", 3, null, true, "a\"b"].slice(0, 2 + Math.floor(r() * 4)) }),
      () => ({ const: pick(["x", 42, false, { k: [1, "é"] }]) }),
      () => ({ type: "string", format: pick(["date", "time", "date-time", "uuid", "email"]) }),
      () => ({ type: ["string", "null"], maxLength: 3 }),
      () => ({ anyOf: [{ type: "integer" }, { type: "string", maxLength: 2 }] }),
    ])();
  if (depth >= 2) return leaf();
  const k = r();
  if (k < 0.45) {
    const n = 1 + Math.floor(r() * 4);
    const properties = {};
    const names = ["id", "name", "when", "tags", "x y", "ünï", "value", "n"];
    for (let i = 0; i < n; i++) properties[names[(i * 3 + Math.floor(r() * 8)) % 8] + (i ? "" : "")] = genSchema(r, depth + 1, defs);
    const keys = Object.keys(properties);
    const required = keys.filter(() => r() < 0.6);
    return { type: "object", properties, required, additionalProperties: false };
  }
  if (k < 0.7) {
    const minItems = Math.floor(r() * 2);
    return { type: "array", items: genSchema(r, depth + 1, defs), minItems, maxItems: minItems + Math.floor(r() * 3) };
  }
  if (k < 0.8 && defs) {
    const name = `d${Object.keys(defs).length}`;
    defs[name] = genSchema(r, depth + 1, defs);
    return { $ref: `#/$defs/${name}` };
  }
  return leaf();
}

function makeSchema(i) {
  const r = rng(1000 + i);
  const defs = {};
  const s = genSchema(r, 0, defs);
  if (Object.keys(defs).length) return { ...s, $defs: defs };
  return s;
}

test(`${N_SCHEMAS} generated JSON Schemas: every output parses and validates with ajv`, { timeout: 240000 }, async () => {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  let next = 0;
  const failures = [];
  const tokens = [];
  async function worker() {
    while (next < N_SCHEMAS) {
      const i = next++;
      const schema = makeSchema(i);
      const { status, json } = await complete({
        seed: i,
        response_format: { type: "json_schema", json_schema: { name: `s${i}`, schema, strict: true } },
      });
      if (status !== 200) {
        failures.push(`schema ${i} ${JSON.stringify(schema)}: HTTP ${status} ${JSON.stringify(json)}`);
        continue;
      }
      const text = json.choices[0].text;
      tokens.push(json.usage.completion_tokens);
      if (json.choices[0].finish_reason !== "stop") {
        failures.push(`schema ${i}: finish ${json.choices[0].finish_reason} after ${text.length} chars`);
        continue;
      }
      let v;
      try {
        v = JSON.parse(text);
      } catch (e) {
        failures.push(`schema ${i} ${JSON.stringify(schema)}: not JSON: ${JSON.stringify(text)}`);
        continue;
      }
      if (!ajv.validate(schema, v))
        failures.push(`schema ${i} ${JSON.stringify(schema)}: ${JSON.stringify(text)}: ${ajv.errorsText()}`);
    }
  }
  await Promise.all([worker(), worker()]);
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${N_SCHEMAS} failed`);
  assert.ok(tokens.reduce((a, b) => a + b, 0) > N_SCHEMAS * 3, "the outputs are not trivially short");
});

test("json_object: any JSON object", { timeout: 60000 }, async () => {
  for (let seed = 0; seed < 6; seed++) {
    const { status, json } = await complete({ seed, max_tokens: 60, response_format: { type: "json_object" } });
    assert.equal(status, 200);
    const text = json.choices[0].text;
    assert.match(text, /^\{/);
    if (json.choices[0].finish_reason === "stop") assert.equal(typeof JSON.parse(text), "object");
  }
});

// ---- a GBNF set, each with an independent checker ----------------------------------------------

/** Bounded arithmetic: parses and evaluates with a recursive descent written for this test. */
function arith(s) {
  let i = 0;
  const num = () => {
    const m = /^[0-9]{1,3}/.exec(s.slice(i));
    if (!m) throw new Error(`number expected at ${i}`);
    i += m[0].length;
    return Number(m[0]);
  };
  const term = (depth) => {
    if (s[i] === "(" && depth < 2) {
      i++;
      const v = expr(depth + 1);
      if (s[i++] !== ")") throw new Error(`')' expected at ${i}`);
      return v;
    }
    return num();
  };
  const expr = (depth) => {
    let v = term(depth);
    for (let k = 0; k < 3 && /[-+*]/.test(s[i] ?? ""); k++) {
      const op = s[i++];
      const w = term(depth);
      v = op === "+" ? v + w : op === "-" ? v - w : v * w;
    }
    return v;
  };
  const v = expr(0);
  if (s[i++] !== "=") throw new Error(`'=' expected at ${i - 1}`);
  num();
  if (i !== s.length) throw new Error(`trailing text at ${i}`);
  return v;
}

const GBNF = [
  {
    name: "arithmetic",
    grammar: `root ::= e0 "=" num
e0 ::= t0 ([-+*] t0){0,3}
t0 ::= num | "(" e1 ")"
e1 ::= t1 ([-+*] t1){0,3}
t1 ::= num | "(" e2 ")"
e2 ::= num ([-+*] num){0,3}
num ::= [0-9]{1,3}`,
    check: (t) => arith(t),
  },
  {
    name: "list",
    grammar: `root ::= item ("," " "? item){0,4} # a short list
item ::= [a-z]{1,5} | [0-9]{1,3}`,
    check: (t) => assert.match(t, /^(?:[a-z]{1,5}|[0-9]{1,3})(?:, ?(?:[a-z]{1,5}|[0-9]{1,3})){0,4}$/),
  },
  {
    name: "bullet lines",
    grammar: `root ::= line{1,3}
line ::= "- " [A-Za-z ]{1,8} "\\n"`,
    check: (t) => assert.match(t, /^(?:- [A-Za-z ]{1,8}\n){1,3}$/),
  },
  {
    name: "bounded JSON",
    grammar: `root ::= obj
obj ::= "{" ( kv ("," kv){0,2} )? "}"
kv ::= str ":" val
val ::= str | num | "true" | "false" | "null" | "[" ( scalar ("," scalar){0,2} )? "]"
scalar ::= str | num
str ::= "\\"" ( [^"\\\\\\x00-\\x1f] | "\\\\" ["\\\\/nt] ){0,6} "\\""
num ::= "-"? [1-9] [0-9]{0,4} ("." [0-9]{1,3})?`,
    check: (t) => assert.equal(typeof JSON.parse(t), "object"),
  },
  {
    name: "unicode classes and escapes",
    grammar: `root ::= [α-ω]{1,4} "\\u00e9" [\\x41-\\x43]? ("→" | "\\U0001F600"){1,2}`,
    check: (t) => assert.match(t, /^[α-ω]{1,4}é[A-C]?(?:→|\u{1F600}){1,2}$/u),
  },
  {
    name: "negated class and alternation across lines",
    grammar: `root ::= "<" [^<>]{0,10} ">"
  | "yes"
  | "no"`,
    check: (t) => assert.match(t, /^(?:<[^<>]{0,10}>|yes|no)$/u),
  },
];

for (const g of GBNF) {
  test(`GBNF ${g.name}: every output matches (independent checker)`, { timeout: 60000 }, async () => {
    for (let seed = 0; seed < 12; seed++) {
      const { status, json } = await complete({ seed, grammar: g.grammar, temperature: seed % 3 ? 1 : 0 });
      assert.equal(status, 200, JSON.stringify(json));
      const text = json.choices[0].text;
      assert.equal(json.choices[0].finish_reason, "stop", `seed ${seed}: ${JSON.stringify(text)}`);
      try {
        g.check(text);
      } catch (e) {
        assert.fail(`seed ${seed}: ${JSON.stringify(text)}: ${e.message}`);
      }
    }
  });
}

// llama.cpp's own grammar files (its source ships with node-llama-cpp: build/llama.cpp, see HELPERS)
// are taken unchanged; the JSON ones give JSON when they finish.
const LLAMA_GRAMMARS = join(root, "build", "llama.cpp", "grammars");
test("llama.cpp's grammars/*.gbnf work unchanged", { timeout: 60000, skip: !existsSync(LLAMA_GRAMMARS) && "no build/llama.cpp" }, async () => {
  const files = readdirSync(LLAMA_GRAMMARS).filter((f) => f.endsWith(".gbnf"));
  assert.ok(files.length >= 5, files.join(" "));
  for (const f of files) {
    const grammar = readFileSync(join(LLAMA_GRAMMARS, f), "utf8");
    const { status, json } = await complete({ seed: 1, grammar, max_tokens: 24 });
    assert.equal(status, 200, `${f}: ${JSON.stringify(json)}`);
    const text = json.choices[0].text;
    if (/^json/.test(f) && json.choices[0].finish_reason === "stop") JSON.parse(text);
  }
});

// ---- malformed input ---------------------------------------------------------------------------

test("malformed grammars and schemas: 400 saying where", { timeout: 30000 }, async () => {
  const cases = [
    [{ grammar: 'root ::= "a" | b' }, /line 1, column 16: rule 'b' is used but never defined/],
    [{ grammar: "root ::= x\nx ::= x \"a\"" }, /left-recursive/],
    [{ grammar: 'root ::= "abc' }, /line 1, column 10: unterminated string literal/],
    [{ grammar: "root ::= [a-" }, /unterminated character class/],
    [{ grammar: 'root ::= ("a"' }, /expected '\)'/],
    [{ grammar: 'start ::= "a"' }, /no 'root' rule/],
    [{ grammar: 'root ::= "\\q"' }, /unknown escape/],
    [{ grammar: 'root ::= "a"{3,1}' }, /n < m/],
    [{ grammar: 42 }, /'grammar' must be a string/],
    [{ response_format: { type: "json_schema", json_schema: { schema: { type: "strin" } } } }, /at \/: 'type' must be/],
    [{ response_format: { type: "json_schema", json_schema: { schema: { properties: { a: { pattern: "x" } } } } } },
      /at \/properties\/a: the keyword 'pattern' is not supported/],
    [{ response_format: { type: "json_schema", json_schema: { schema: { $ref: "#/$defs/nope" } } } }, /points at nothing/],
    [{ response_format: { type: "json_schema", json_schema: {} } }, /schema' is missing/],
    [{ response_format: { type: "yaml" } }, /must be "text", "json_object" or "json_schema"/],
    [{ grammar: 'root ::= "a"', response_format: { type: "json_object" } }, /not both/],
  ];
  for (const [body, re] of cases) {
    const { status, json } = await complete(body);
    assert.equal(status, 400, JSON.stringify(body));
    assert.match(json.error.message, re, JSON.stringify(body));
  }
});

// ---- the CLI -----------------------------------------------------------------------------------

function cli(args) {
  return new Promise((resolve, reject) => {
    execFile(BIN, args, { timeout: 60000, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err?.killed) reject(new Error(`onebit ${args.join(" ")} hung: killed after 60 s`));
      else resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

test("CLI: --grammar-file, --json-schema, --json; malformed ones exit before the model loads", { timeout: 120000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "onebit-grammar-"));
  try {
    const f = (name, text) => (writeFileSync(join(dir, name), text), join(dir, name));
    const base = ["run", "-m", MODEL, "--raw", "-p", "x", "-n", "200", "--seed", "4"];
    let r = await cli([...base, "--grammar-file", f("yn.gbnf", 'root ::= ("yes" | "no") "!" [0-9]{1,2}\n')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^x(yes|no)![0-9]{1,2}\n$/);
    const schema = { type: "object", properties: { n: { type: "integer" }, s: { type: "string", maxLength: 3 } }, required: ["n", "s"], additionalProperties: false };
    r = await cli([...base, "--json-schema", f("s.json", JSON.stringify(schema))]);
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout.slice(1));
    assert.ok(Number.isInteger(v.n) && typeof v.s === "string" && [...v.s].length <= 3, r.stdout);
    r = await cli([...base, "-n", "30", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^x\{/);
    r = await cli([...base, "--grammar-file", f("bad.gbnf", 'root ::= "a" |\n  ( b\n')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--grammar-file .*bad.gbnf: grammar: line 2, column 3: expected '\)'/);
    r = await cli([...base, "--json-schema", f("bad.json", '{"type": "string", "pattern": "^a"}')]);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /the keyword 'pattern' is not supported/);
    r = await cli([...base, "--json-schema", f("broken.json", '{"type": }')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /invalid JSON at byte 9/);
    r = await cli([...base, "--json", "--grammar-file", join(dir, "yn.gbnf")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /give one of --grammar-file, --json-schema and --json/);
    r = await cli([...base, "--grammar-file", join(dir, "missing.gbnf")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot open/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
