// install.test.mjs — `make install` / `make uninstall` into a temporary prefix, and the installed
// library used the way a C developer would: examples/hello.c built with `pkg-config --cflags
// --libs onebit` (shared, then --static) and run on the tiny test model. Also checks that the
// shared library exports exactly the public API (every function include/onebit.h declares, and
// nothing that is not ob_*), and that the man page renders and names every command of `onebit
// --help`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const TINY = join(root, "build", "models", "tiny.gguf");
const tmp = mkdtempSync(join(tmpdir(), "onebit-install-"));
const prefix = join(tmp, "prefix");
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

// Runs a command under a timeout; a hang or a failure fails the test with its output.
function sh(cmd, args, { env = {}, timeout = 300_000, ok = true } = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", timeout, env: { ...process.env, ...env } });
  const what = `${cmd} ${args.join(" ")}`;
  assert.equal(r.error, undefined, `${what}: ${r.error} (timeout ${timeout / 1000} s)`);
  if (ok) assert.equal(r.status, 0, `${what} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true }).filter((f) => !statSync(join(dir, f)).isDirectory()).sort();
}

const expected = ["bin/onebit", "include/onebit.h", "lib/libonebit.a", "lib/libonebit.so", "lib/libonebit.so.0",
  "lib/pkgconfig/onebit.pc", "share/man/man1/onebit.1"];

test("make install puts the command, both libraries, the header, onebit.pc and the man page under PREFIX", () => {
  sh("make", ["-s", "install", `PREFIX=${prefix}`]);
  assert.deepEqual(filesUnder(prefix), expected);
  const v = sh(join(prefix, "bin", "onebit"), ["--version"]).stdout;
  assert.match(v, /^onebit \d+\.\d+\.\d+/);
  const pc = readFileSync(join(prefix, "lib/pkgconfig/onebit.pc"), "utf8");
  assert.match(pc, new RegExp(`^prefix=${prefix}$`, "m"));
});

const pkgEnv = { PKG_CONFIG_PATH: join(prefix, "lib", "pkgconfig") };
const pkg = (...a) => sh("pkg-config", a, { env: pkgEnv }).stdout.trim().split(/\s+/).filter(Boolean);

test("a C program builds with pkg-config against the shared library and runs", () => {
  const exe = join(tmp, "hello");
  sh("cc", ["-std=c11", "-Wall", "-Werror", "examples/hello.c", ...pkg("--cflags", "--libs", "onebit"), "-o", exe]);
  const r = sh(exe, [TINY, "Hello"], { env: { LD_LIBRARY_PATH: join(prefix, "lib") }, timeout: 60_000 });
  assert.match(r.stderr, /hello: \d+ prompt tokens, [1-9]\d* generated/);
  const ldd = sh("ldd", [exe], { env: { LD_LIBRARY_PATH: join(prefix, "lib") } }).stdout;
  assert.match(ldd, new RegExp(`libonebit\\.so\\.0 => ${join(prefix, "lib")}`), "linked against the installed .so");
  // Without the library path the loader must not find it: the program really uses the shared one.
  const r2 = sh(exe, [TINY, "Hello"], { ok: false, env: { LD_LIBRARY_PATH: "" }, timeout: 60_000 });
  assert.notEqual(r2.status, 0);
});

test("a C program links the static library with pkg-config --static and runs", () => {
  const exe = join(tmp, "hello-static");
  sh("cc", ["-std=c11", "-static", "examples/hello.c", ...pkg("--cflags", "--libs", "--static", "onebit"), "-o", exe]);
  const r = sh(exe, [TINY, "Hello"], { env: { LD_LIBRARY_PATH: "" }, timeout: 60_000 });
  assert.match(r.stderr, /hello: \d+ prompt tokens, [1-9]\d* generated/);
});

test("the shared library exports exactly the functions of onebit.h", () => {
  const header = readFileSync(join(root, "include", "onebit.h"), "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
  const declared = new Set([...header.matchAll(/\b(ob_[a-z0-9_]+)\s*\(/g)].map((m) => m[1]));
  const nm = sh("nm", ["-D", "--defined-only", join(prefix, "lib", "libonebit.so.0")]).stdout;
  const exported = new Set(nm.split("\n").map((l) => l.trim().split(/\s+/)[2]).filter(Boolean));
  for (const s of exported) assert.ok(declared.has(s), `exported but not in onebit.h: ${s}`);
  for (const s of declared) assert.ok(exported.has(s), `declared in onebit.h but not exported: ${s}`);
});

test("the man page renders and names every command of onebit --help", () => {
  const r = sh("man", ["--warnings", "-l", join(prefix, "share/man/man1/onebit.1")], { env: { MANWIDTH: "100", MANPAGER: "cat", PAGER: "cat" } });
  assert.equal(r.stderr.trim(), "", `man warnings: ${r.stderr}`);
  const help = sh(join(prefix, "bin", "onebit"), ["--help"]).stdout;
  const commands = [...help.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]);
  assert.ok(commands.length >= 8, `commands in --help: ${commands}`);
  for (const c of commands) assert.match(r.stdout, new RegExp(`^ {7}${c}\\b`, "m"), `man page lacks the command ${c}`);
});

test("make uninstall removes every installed file", () => {
  sh("make", ["-s", "uninstall", `PREFIX=${prefix}`]);
  assert.deepEqual(filesUnder(prefix), []);
});
