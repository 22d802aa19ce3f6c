#!/usr/bin/env node
// pack-npm.mjs — the npm package of the browser/Node engine (`make npm`).
//
// Builds build/npm/package/ from web/ (onebit.js bundled with the engine, GPU bridge and reply
// parser; worker.js; engine.mjs on its own: ES modules, minified by esbuild), build/wasm/ (the single- and multi-threaded cores and the WGSL
// kernels, under wasm/) and npm/ (package.json template, TypeScript declarations, README), then
// runs `npm pack` there (npm gives every entry the same date and order, so the tarball depends only
// on the files: the same build packs to the same bytes). Prints the tarball's size and what a page
// downloads for the engine (gzip -9 of the single-threaded core, its loader, the kernels, the API
// bundle and the worker entry), and fails when that exceeds the budget (200 KB, README says what it counts).
//   usage: node tools/pack-npm.mjs [OUT_DIR (default build/npm)]
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = resolve(process.argv[2] ?? join(root, 'build', 'npm'));
const pkg = join(out, 'package');
// 204 KB since 2026-12-07 (200 before): the generic plan's decode kernel for Q4_K / Q6_K (dq_mvw,
// Llama-3.1-8B-shaped Q4_K_M 137 -> 177 tok/s on an H100) and the fused plan's L2 prefetch (Bonsai
// decode 707 -> 747 tok/s) cost 3.1 KB, and the page had 0.3 KB left (BENCHMARKS.md). 205 KB since
// the CPU path's one job per input with per-thread activations (Bonsai generation on Zen 4 ~+7 %)
// took the page to 204.1 KB. 200 KB again since the generic plan's kernels (other families and
// weight types: 10.5 KB gzipped) load only when a model needs them (kernels-generic.mjs).
const BUDGET = 200 * 1024;

const die = (msg) => {
  console.error(`pack-npm: ${msg}`);
  process.exit(1);
};
const need = (f) => {
  try {
    statSync(f);
  } catch {
    die(`${f} is missing: run make wasm first`);
  }
  return f;
};

const header = readFileSync(join(root, 'include', 'onebit.h'), 'utf8');
const version = /#define ONEBIT_VERSION "([^"]+)"/.exec(header)?.[1] ?? die('no ONEBIT_VERSION in include/onebit.h');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  die('esbuild is missing: run make deps (npm install)');
}

rmSync(out, { recursive: true, force: true });
mkdirSync(join(pkg, 'wasm'), { recursive: true });

// The JS modules, minified. onebit.js is one bundle (engine, GPU bridge and reply parser inside: one
// request and one gzip stream for a page); worker.js imports it (and engine.mjs, shipped on its own
// too for hosts that drive the engine directly). The engine finds the wasm files under ./wasm/.
// (a fixed folder: the bundles must not depend on where the package is written)
const src = join(root, 'build', 'npm-src');
mkdirSync(src, { recursive: true });
for (const f of readdirSync(join(root, 'web')).filter((f) => /\.(m?js)$/.test(f))) {
  let text = readFileSync(join(root, 'web', f), 'utf8');
  if (f === 'engine.mjs') {
    const n = text.split("'../build/wasm/").length - 1;
    if (n < 5) die(`web/engine.mjs: expected its five '../build/wasm/' file URLs, found ${n}`);
    text = text.replaceAll("'../build/wasm/", "'./wasm/");
  }
  writeFileSync(join(src, f), text);
}
const common = { minify: true, format: 'esm', target: 'es2022', legalComments: 'none', logLevel: 'warning' };
await esbuild.build({ ...common, entryPoints: [join(src, 'onebit.js')], bundle: true, outfile: join(pkg, 'onebit.js'),
  external: ['webgpu', 'node:*'] });
await esbuild.build({ ...common, entryPoints: [join(src, 'worker.js')], bundle: true, outfile: join(pkg, 'worker.js'),
  external: ['./onebit.js', './engine.mjs'] });
await esbuild.build({ ...common, entryPoints: [join(src, 'engine.mjs')], bundle: true, outfile: join(pkg, 'engine.mjs'),
  external: ['node:*'] });
rmSync(src, { recursive: true, force: true });
const wasmFiles = ['onebit.wasm', 'onebit-core.mjs', 'onebit-mt.wasm', 'onebit-mt-core.mjs', 'onebit-mt-core.worker.js', 'kernels.mjs',
  'kernels-generic.mjs'];
for (const f of wasmFiles) copyFileSync(need(join(root, 'build', 'wasm', f)), join(pkg, 'wasm', f));
copyFileSync(join(root, 'npm', 'onebit.d.ts'), join(pkg, 'onebit.d.ts'));
copyFileSync(join(root, 'npm', 'README.md'), join(pkg, 'README.md'));
const meta = JSON.parse(readFileSync(join(root, 'npm', 'package.json'), 'utf8'));
meta.version = version;
writeFileSync(join(pkg, 'package.json'), JSON.stringify(meta, null, 2) + '\n');

// what a page downloads for the engine (single-threaded core; the threaded one replaces
// onebit.wasm / onebit-core.mjs where a page is cross-origin isolated): the API bundle, the worker
// entry (only pages that use the worker load it, and it imports the bundle), the core, the kernels
// (not kernels-generic.mjs: the generic plan's kernels, imported only when a model needs them)
const page = ['wasm/onebit.wasm', 'wasm/onebit-core.mjs', 'wasm/kernels.mjs', 'onebit.js', 'worker.js'];
let total = 0;
// gzip -9 (GNU gzip, as a host that precompresses its files would), else zlib's level 9
const gzipped = (path) => {
  try {
    return execFileSync('gzip', ['-9c', path], { maxBuffer: 1 << 26 }).length;
  } catch {
    return gzipSync(readFileSync(path), { level: 9 }).length;
  }
};
const rows = page.map((f) => {
  const raw = readFileSync(join(pkg, f));
  const gz = gzipped(join(pkg, f));
  total += gz;
  return `  ${f.padEnd(22)} ${String(raw.length).padStart(8)} B  ${String(gz).padStart(7)} B gzipped`;
});

const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', out], { cwd: pkg, encoding: 'utf8' }).trim().split('\n').pop();
const size = statSync(join(out, tgz)).size;
console.log(`pack-npm: ${join(out, tgz)}: ${(size / 1024).toFixed(1)} KB`);
console.log(`pack-npm: what a page downloads for the engine:\n${rows.join('\n')}\n  total ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB)`);
writeFileSync(join(out, 'sizes.json'), JSON.stringify({ tarball: tgz, tarballBytes: size, pageGzipBytes: total, budget: BUDGET }, null, 2) + '\n');
if (total > BUDGET) die(`the page's download is ${(total / 1024).toFixed(1)} KB gzipped, over the ${BUDGET / 1024} KB budget`);
