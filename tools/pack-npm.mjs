#!/usr/bin/env node
// pack-npm.mjs — the npm package of the browser/Node engine (`make npm`).
//
// Builds build/npm/package/ from web/ (onebit.js, engine.mjs, gpu.mjs, worker.js: minified by
// esbuild, ES modules kept), build/wasm/ (the single- and multi-threaded cores and the WGSL
// kernels, under wasm/) and npm/ (package.json template, TypeScript declarations, README), then
// runs `npm pack` there (npm gives every entry the same date and order, so the tarball depends only
// on the files: the same build packs to the same bytes). Prints the tarball's size and what a page
// downloads for the engine (gzip -9 of the single-threaded core, its loader, the kernels and the
// four modules), and fails when that exceeds the budget (200 KB, README says what it counts).
//   usage: node tools/pack-npm.mjs [OUT_DIR (default build/npm)]
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = resolve(process.argv[2] ?? join(root, 'build', 'npm'));
const pkg = join(out, 'package');
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

// the JS modules, minified; the engine finds the wasm files under ./wasm/
for (const f of ['onebit.js', 'engine.mjs', 'gpu.mjs', 'worker.js']) {
  let src = readFileSync(need(join(root, 'web', f)), 'utf8');
  if (f === 'engine.mjs') {
    const n = src.split("'../build/wasm/").length - 1;
    if (n < 5) die(`web/engine.mjs: expected its five '../build/wasm/' file URLs, found ${n}`);
    src = src.replaceAll("'../build/wasm/", "'./wasm/");
  }
  const r = await esbuild.transform(src, { minify: true, format: 'esm', target: 'es2022', legalComments: 'none' });
  writeFileSync(join(pkg, f), r.code);
}
const wasmFiles = ['onebit.wasm', 'onebit-core.mjs', 'onebit-mt.wasm', 'onebit-mt-core.mjs', 'onebit-mt-core.worker.js', 'kernels.mjs'];
for (const f of wasmFiles) copyFileSync(need(join(root, 'build', 'wasm', f)), join(pkg, 'wasm', f));
copyFileSync(join(root, 'npm', 'onebit.d.ts'), join(pkg, 'onebit.d.ts'));
copyFileSync(join(root, 'npm', 'README.md'), join(pkg, 'README.md'));
const meta = JSON.parse(readFileSync(join(root, 'npm', 'package.json'), 'utf8'));
meta.version = version;
writeFileSync(join(pkg, 'package.json'), JSON.stringify(meta, null, 2) + '\n');

// what a page downloads for the engine (single-threaded core; the threaded one replaces
// onebit.wasm / onebit-core.mjs where a page is cross-origin isolated)
const page = ['wasm/onebit.wasm', 'wasm/onebit-core.mjs', 'wasm/kernels.mjs', 'engine.mjs', 'gpu.mjs', 'onebit.js', 'worker.js'];
let total = 0;
const rows = page.map((f) => {
  const raw = readFileSync(join(pkg, f));
  const gz = gzipSync(raw, { level: 9 }).length;
  total += gz;
  return `  ${f.padEnd(22)} ${String(raw.length).padStart(8)} B  ${String(gz).padStart(7)} B gzipped`;
});

const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', out], { cwd: pkg, encoding: 'utf8' }).trim().split('\n').pop();
const size = statSync(join(out, tgz)).size;
console.log(`pack-npm: ${join(out, tgz)}: ${(size / 1024).toFixed(1)} KB`);
console.log(`pack-npm: what a page downloads for the engine:\n${rows.join('\n')}\n  total ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB)`);
writeFileSync(join(out, 'sizes.json'), JSON.stringify({ tarball: tgz, tarballBytes: size, pageGzipBytes: total, budget: BUDGET }, null, 2) + '\n');
if (total > BUDGET) die(`the page's download is ${(total / 1024).toFixed(1)} KB gzipped, over the ${BUDGET / 1024} KB budget`);
