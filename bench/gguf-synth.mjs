#!/usr/bin/env node
// gguf-synth.mjs — writes a model-shaped GGUF with random weights of a chosen quantisation, in
// Node alone, for speed runs on hosts without Python or llama.cpp's tools (bench/gpu.sh): the
// WebGPU engine and llama.cpp's Vulkan build then load the same file. The weights are random valid
// blocks (scales sized so that a layer keeps the activations' scale), not a quantised real model,
// so the file measures speed only; correctness is tested on files written by gguf-py and
// llama-quantize (tests/arch-logits.test.mjs, tests/webgpu-generic.test.mjs).
//   node bench/gguf-synth.mjs --preset llama-3.2-1b|qwen2.5-1.5b|llama-3.1-8b|tiny-llama|tiny-qwen2 --type q4_k_m|q8_0|q4_0
//        --tokenizer tokenizer.json -o FILE [--layers N] [--seed N]
// The vocabulary is the given tokenizer.json's (a GPT-2-style BPE, e.g. the Qwen3 one of the gpu
// kit), cut or padded to the preset's size (merges whose tokens fall outside are dropped). q4_k_m
// follows llama-quantize's mix: Q6_K for the (tied) embedding / output and for attn_v and ffn_down
// of the first and last eighth of the layers and every third between, Q4_K elsewhere.
import { openSync, writeSync, closeSync, readFileSync, renameSync } from 'node:fs';

const PRESETS = {
  'llama-3.2-1b': { arch: 'llama', E: 2048, L: 16, H: 32, KV: 8, HD: 64, F: 8192, V: 128256, theta: 500000, eps: 1e-5, tied: true, bias: false },
  'llama-3.1-8b': { arch: 'llama', E: 4096, L: 32, H: 32, KV: 8, HD: 128, F: 14336, V: 128256, theta: 500000, eps: 1e-5, tied: false, bias: false },
  'qwen2.5-1.5b': { arch: 'qwen2', E: 1536, L: 28, H: 12, KV: 2, HD: 128, F: 8960, V: 151936, theta: 1000000, eps: 1e-6, tied: true, bias: true },
  // Small shapes of both families, for checking the SYNTH path of bench/gpu.sh on SwiftShader.
  'tiny-llama': { arch: 'llama', E: 256, L: 2, H: 4, KV: 2, HD: 64, F: 512, V: 4096, theta: 500000, eps: 1e-5, tied: false, bias: false },
  'tiny-qwen2': { arch: 'qwen2', E: 256, L: 2, H: 4, KV: 2, HD: 64, F: 512, V: 4096, theta: 1000000, eps: 1e-6, tied: true, bias: true },
};
// GGML types: id, block elements, block bytes.
const T = { f32: [0, 1, 4], q4_0: [2, 32, 18], q8_0: [8, 32, 34], q4_K: [12, 256, 144], q6_K: [14, 256, 210] };

const args = process.argv.slice(2);
const opt = { seed: 1 };
for (let i = 0; i < args.length; i++) {
  const a = args[i], v = () => args[++i];
  if (a === '--preset') opt.preset = v();
  else if (a === '--type') opt.type = v();
  else if (a === '--tokenizer') opt.tok = v();
  else if (a === '-o') opt.out = v();
  else if (a === '--layers') opt.layers = Number(v());
  else if (a === '--seed') opt.seed = Number(v());
  else { console.error(`unknown option ${a}`); process.exit(2); }
}
const P = PRESETS[opt.preset];
if (!P || !['q4_k_m', 'q8_0', 'q4_0'].includes(opt.type) || !opt.tok || !opt.out ||
    (opt.layers !== undefined && !(opt.layers >= 1 && opt.layers <= 256))) {
  console.error(`usage: node bench/gguf-synth.mjs --preset ${Object.keys(PRESETS).join('|')} --type q4_k_m|q8_0|q4_0 ` +
    '--tokenizer tokenizer.json -o FILE [--layers N] [--seed N]');
  process.exit(2);
}
const L = opt.layers ?? P.L;

// ---- vocabulary ----------------------------------------------------------------------------
const tj = JSON.parse(readFileSync(opt.tok, 'utf8'));
const tokens = new Array(P.V);
for (const [s, id] of Object.entries(tj.model.vocab)) if (id < P.V) tokens[id] = s;
const types = new Int32Array(P.V).fill(1);
for (const t of tj.added_tokens ?? []) if (t.id < P.V) { tokens[t.id] = t.content; types[t.id] = t.special ? 3 : 4; }
for (let i = 0; i < P.V; i++) if (tokens[i] === undefined) { tokens[i] = `[PAD${i}]`; types[i] = 5; }
const ids = new Map(tokens.map((s, i) => [s, i]));
const merges = (tj.model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m)).filter((m) => {
  const [a, b] = m.split(' ');
  return ids.has(a) && ids.has(b) && ids.has(a + b);
});
const special = (s, fb) => (ids.has(s) ? ids.get(s) : fb);
const eos = special('<|endoftext|>', P.V - 1), bos = special('<|endoftext|>', 0);

// ---- tensors -------------------------------------------------------------------------------
let rs = opt.seed >>> 0 || 1;
const rnd = () => { rs ^= rs << 13; rs >>>= 0; rs ^= rs >>> 17; rs ^= rs << 5; return (rs >>>= 0); };
const f16 = (x) => { // positive x (below 65504) to IEEE half bits; subnormals below 2^-14
  if (x < 2 ** -14) return Math.max(1, Math.round(x / 2 ** -24));
  const e = Math.floor(Math.log2(x)), m = Math.round((x / 2 ** e - 1) * 1024);
  return ((e + 15) << 10) | Math.min(m, 1023);
};
const moreBits = (l) => l < L / 8 || l >= (7 * L) / 8 || (l - Math.floor(L / 8)) % 3 === 2;
const quant = (name, l) => {
  if (opt.type !== 'q4_k_m') return opt.type;
  if (name === 'token_embd' || name === 'output') return 'q6_K';
  if ((name === 'attn_v' || name === 'ffn_down') && moreBits(l)) return 'q6_K';
  return 'q4_K';
};
const tensors = [];
const add = (name, ne0, ne1, type) => tensors.push({ name, ne: ne1 ? [ne0, ne1] : [ne0], type });
add('token_embd.weight', P.E, P.V, quant('token_embd'));
for (let l = 0; l < L; l++) {
  const b = `blk.${l}.`;
  add(b + 'attn_norm.weight', P.E, 0, 'f32');
  add(b + 'attn_q.weight', P.E, P.H * P.HD, quant('attn_q', l));
  add(b + 'attn_k.weight', P.E, P.KV * P.HD, quant('attn_k', l));
  add(b + 'attn_v.weight', P.E, P.KV * P.HD, quant('attn_v', l));
  if (P.bias) {
    add(b + 'attn_q.bias', P.H * P.HD, 0, 'f32');
    add(b + 'attn_k.bias', P.KV * P.HD, 0, 'f32');
    add(b + 'attn_v.bias', P.KV * P.HD, 0, 'f32');
  }
  add(b + 'attn_output.weight', P.H * P.HD, P.E, quant('attn_output', l));
  add(b + 'ffn_norm.weight', P.E, 0, 'f32');
  add(b + 'ffn_gate.weight', P.E, P.F, quant('ffn_gate', l));
  add(b + 'ffn_up.weight', P.E, P.F, quant('ffn_up', l));
  add(b + 'ffn_down.weight', P.F, P.E, quant('ffn_down', l));
}
add('output_norm.weight', P.E, 0, 'f32');
if (!P.tied) add('output.weight', P.E, P.V, quant('output'));

// One row of random valid blocks of a type, sized so that |W x| ~ |x| for unit inputs.
function row(type, n, name) {
  const [, be, bb] = T[type], out = Buffer.alloc((n / be) * bb), s = 1 / Math.sqrt(n); // own ArrayBuffer at offset 0
  if (type === 'f32') {
    for (let i = 0; i < n; i++) out.writeFloatLE(name.includes('norm') ? 1 : (rnd() / 2 ** 32 - 0.5) * 0.1, 4 * i);
    return out;
  }
  const w = new Uint32Array(out.buffer, out.byteOffset, out.length >> 2); // little-endian hosts
  for (let i = 0; i < w.length; i++) w[i] = rnd();
  for (let i = out.length & ~3; i < out.length; i++) out[i] = rnd() & 255;
  for (let b = 0; b < n / be; b++) {
    const o = b * bb;
    if (type === 'q8_0') out.writeUInt16LE(f16(s / 74), o);
    else if (type === 'q4_0') out.writeUInt16LE(f16(s / 4.6), o);
    else if (type === 'q4_K') { out.writeUInt16LE(f16(s / (4.6 * 32)), o); out.writeUInt16LE(f16(s / (8 * 32)), o + 2); }
    else if (type === 'q6_K') out.writeUInt16LE(f16(s / (18.5 * 74)), o + 208);
  }
  return out;
}

// ---- GGUF ----------------------------------------------------------------------------------
const parts = [];
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
const str = (s) => { const b = Buffer.from(s, 'utf8'); u64(b.length); parts.push(b); };
const kvs = [];
const kv = (k, t, v) => kvs.push([k, t, v]);
const A = P.arch;
kv('general.architecture', 'str', A);
kv('general.name', 'str', `${opt.preset}-shaped ${opt.type} (random weights, bench/gguf-synth.mjs)`);
kv('general.alignment', 'u32', 32);
kv(`${A}.context_length`, 'u32', 32768);
kv(`${A}.embedding_length`, 'u32', P.E);
kv(`${A}.block_count`, 'u32', L);
kv(`${A}.feed_forward_length`, 'u32', P.F);
kv(`${A}.attention.head_count`, 'u32', P.H);
kv(`${A}.attention.head_count_kv`, 'u32', P.KV);
kv(`${A}.rope.dimension_count`, 'u32', P.HD);
kv(`${A}.rope.freq_base`, 'f32', P.theta);
kv(`${A}.attention.layer_norm_rms_epsilon`, 'f32', P.eps);
kv('tokenizer.ggml.model', 'str', 'gpt2');
kv('tokenizer.ggml.pre', 'str', A === 'qwen2' ? 'qwen2' : 'llama-bpe');
kv('tokenizer.ggml.tokens', 'astr', tokens);
kv('tokenizer.ggml.token_type', 'ai32', types);
kv('tokenizer.ggml.merges', 'astr', merges);
kv('tokenizer.ggml.bos_token_id', 'u32', bos);
kv('tokenizer.ggml.eos_token_id', 'u32', eos);
u32(0x46554747); u32(3); u64(tensors.length); u64(kvs.length);
for (const [k, t, v] of kvs) {
  str(k);
  if (t === 'str') { u32(8); str(v); }
  else if (t === 'u32') { u32(4); u32(v); }
  else if (t === 'f32') { u32(6); const b = Buffer.alloc(4); b.writeFloatLE(v); parts.push(b); }
  else if (t === 'astr') { u32(9); u32(8); u64(v.length); for (const s of v) str(s); }
  else if (t === 'ai32') { u32(9); u32(5); u64(v.length); parts.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength)); }
}
let off = 0;
for (const t of tensors) {
  const [id, be, bb] = T[t.type];
  t.bytes = (t.ne[0] / be) * bb * (t.ne[1] || 1);
  t.off = off;
  off += Math.ceil(t.bytes / 32) * 32;
  str(t.name); u32(t.ne.length); for (const d of t.ne) u64(d); u32(id); u64(t.off);
}
let head = Buffer.concat(parts);
head = Buffer.concat([head, Buffer.alloc((32 - (head.length % 32)) % 32)]);
const fd = openSync(opt.out + '.tmp', 'w');
writeSync(fd, head);
for (const t of tensors) {
  const rows = t.ne[1] || 1, chunk = [];
  let n = 0;
  for (let r = 0; r < rows; r++) {
    const b = row(t.type, t.ne[0], t.name);
    chunk.push(b);
    n += b.length;
    if (n >= 1 << 24 || r === rows - 1) { writeSync(fd, Buffer.concat(chunk)); chunk.length = 0; n = 0; }
  }
  const pad = Math.ceil(t.bytes / 32) * 32 - t.bytes;
  if (pad) writeSync(fd, Buffer.alloc(pad));
}
closeSync(fd);
renameSync(opt.out + '.tmp', opt.out);
console.log(`${opt.out}: ${opt.preset}-shaped ${opt.type}, ${L} layers, vocab ${P.V}, ${(head.length + off) / 2 ** 20 | 0} MiB`);
