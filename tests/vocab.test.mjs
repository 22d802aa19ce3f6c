// vocab.test.mjs — our tokenizers against llama.cpp's vocabulary tests: every vocabulary-only GGUF
// in llama.cpp's models/ (ggml-vocab-NAME.gguf) that we claim, each string of its .inp through our
// tokenizer, the ids required identical to its .out (llama.cpp's test-tokenizer-0 expectations:
// llama_tokenize with add_special = false, parse_special = false).
//
// The .inp holds the strings separated by "\n__ggml_vocab_test__\n" (the text after the last
// separator, if any, is one more string; nothing is trimmed); the .out one line per string, the ids
// each after a space. All strings of a vocabulary go through one tests/tok_driver --gguf process
// (the public API on a vocab_only load); one string per vocabulary also goes through
// `onebit tokenize --ids` to check the command's output is the .out line itself.
// Decoding is checked too: the pieces of the ids concatenate to the input (with SentencePiece's
// space prefix), for the strings that are valid UTF-8 and NFC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const ROOT = new URL('..', import.meta.url).pathname;
const DRIVER = ROOT + 'build/tok_driver';
const ONEBIT = ROOT + 'build/onebit';

// Vocabularies we claim, with what they exercise.
const CLAIMED = {
    'llama-spm': 'SentencePiece (Llama 2): scores, space prefix, byte fallback',
    'phi-3': 'SentencePiece (Phi-3) with user-defined tokens',
    'qwen2': 'BPE, qwen2 pre-tokenizer (with NFC, as Hugging Face)',
    'qwen35': 'BPE, qwen35 pre-tokenizer (marks with letters, no NFC)',
    'llama-bpe': 'BPE, llama3 pre-tokenizer, whole-word tokens first',
    'gpt-2': 'BPE, GPT-2 pre-tokenizer',
    'mpt': 'BPE, GPT-2 pre-tokenizer (mpt)',
    'starcoder': 'BPE, digits alone then GPT-2',
    'refact': 'BPE, digits alone then GPT-2 (refact)',
    'command-r': 'BPE, digits alone then GPT-2 (command-r), 256k tokens',
    'falcon': 'BPE, punctuation runs, GPT-2, three-digit groups; bytes without tokens',
    'deepseek-llm': 'BPE, deepseek-llm letter/punctuation/CJK classes',
    'deepseek-coder': 'BPE, deepseek-coder passes',
};

// Vocabularies in llama.cpp's models/ we do not claim, and why (tokenize refuses them by name).
const NOT_CLAIMED = {
    'bert-bge': 'WordPiece (tokenizer.ggml.model "bert"): not implemented',
    'gemma-4': 'tokenizer.ggml.model "gemma4" (BPE on raw UTF-8 with U+2581, no byte-level mapping): not implemented',
    'nomic-bert-moe': 'Unigram (tokenizer.ggml.model "t5"): not implemented; no .out file either',
    'aquila': 'no .inp/.out test file',
    'baichuan': 'no .inp/.out test file',
    'gpt-neox': 'no .inp/.out test file',
};

function llamaDir() {
    const r = spawnSync('bash', [ROOT + 'tools/llama-src.sh'], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) return null;
    return r.stdout.trim();
}

function readTests(base) {
    const raw = readFileSync(base + '.inp');
    const sep = Buffer.from('\n__ggml_vocab_test__\n');
    const inp = [];
    for (let pos = 0; pos < raw.length;) {
        const next = raw.indexOf(sep, pos);
        if (next < 0) { inp.push(raw.subarray(pos)); break; }
        inp.push(raw.subarray(pos, next));
        pos = next + sep.length;
    }
    const out = readFileSync(base + '.out', 'utf8').split('\n').slice(0, inp.length);
    assert.equal(out.length, inp.length, `${base}: as many .out lines as .inp strings`);
    return inp.map((s, i) => ({ text: s, want: out[i].trim() === '' ? [] : out[i].trim().split(' ').map(Number) }));
}

function runDriver(gguf, records) {
    const parts = [];
    for (const { mode, bytes } of records) {
        const h = Buffer.alloc(5);
        h[0] = mode;
        h.writeUInt32LE(bytes.length, 1);
        parts.push(h, bytes);
    }
    const r = spawnSync(DRIVER, ['--gguf', gguf], { input: Buffer.concat(parts), maxBuffer: 1 << 28, timeout: 120_000 });
    assert.equal(r.status, 0, `tok_driver --gguf ${gguf} failed: ${r.stderr}`);
    const lines = r.stdout.toString('latin1').split('\n');
    assert.equal(lines.length, records.length + 1, 'one line per record');
    return lines.slice(0, -1).map((l) => {
        const [ids, hex] = l.split('\t');
        return { ids: ids === '' ? [] : ids.split(' ').map(Number), bytes: Buffer.from(hex, 'hex') };
    });
}

const dir = existsSync(DRIVER) && existsSync(ONEBIT) ? llamaDir() : null;
const skip = dir ? false : 'build/tok_driver, build/onebit or llama.cpp\'s source (tools/llama-src.sh) missing';

test('every vocabulary in llama.cpp\'s models/ is claimed or listed with a reason', { skip }, () => {
    const names = readdirSync(dir + '/models').filter((f) => /^ggml-vocab-.*\.gguf$/.test(f))
        .map((f) => f.slice('ggml-vocab-'.length, -'.gguf'.length));
    for (const n of names) assert.ok(n in CLAIMED || n in NOT_CLAIMED, `vocabulary ${n} is neither claimed nor listed`);
    for (const n of Object.keys(CLAIMED)) assert.ok(names.includes(n), `claimed vocabulary ${n} is missing`);
});

for (const [name, what] of Object.entries(CLAIMED)) {
    test(`${name}: 100% of llama.cpp's ids (${what})`, { skip, timeout: 180_000 }, () => {
        const base = `${dir}/models/ggml-vocab-${name}.gguf`;
        const tests = readTests(base);
        const got = runDriver(base, tests.map((t) => ({ mode: 0, bytes: t.text })));
        const bad = [];
        tests.forEach((t, i) => {
            if (JSON.stringify(got[i].ids) !== JSON.stringify(t.want))
                bad.push(`${JSON.stringify(t.text.toString())}\n  want ${t.want.join(' ')}\n  got  ${got[i].ids.join(' ')}`);
        });
        assert.equal(bad.length, 0, `${bad.length} of ${tests.length} strings differ:\n${bad.slice(0, 5).join('\n')}`);

        // decoding: the pieces give back the text (SentencePiece: after the space it put before)
        const spm = name === 'llama-spm' || name === 'phi-3';
        tests.forEach((t, i) => {
            const s = t.text.toString();
            if (Buffer.compare(Buffer.from(s), t.text) !== 0 || s.normalize('NFC') !== s || s === '') return;
            assert.equal(got[i].bytes.toString(), spm ? ' ' + s : s, `${name}: pieces of ${JSON.stringify(s)}`);
        });

        // the command line on one string: its output is the .out line itself
        const pick = tests.find((t) => t.want.length > 3) ?? tests[0];
        const r = spawnSync(ONEBIT, ['tokenize', '-m', base, '--ids', '--no-special', '-p', pick.text.toString()],
            { encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, pick.want.map((x) => ' ' + x).join('') + '\n');
    });
}

test('add_special: BOS from the file (SentencePiece and Llama 3 by default), none for Qwen2', { skip, timeout: 120_000 }, () => {
    const cases = [['llama-spm', 1], ['llama-bpe', 128000], ['qwen2', null]];
    for (const [name, bos] of cases) {
        const base = `${dir}/models/ggml-vocab-${name}.gguf`;
        const [plain, prompt] = runDriver(base, [{ mode: 0, bytes: Buffer.from('Hello') }, { mode: 3, bytes: Buffer.from('Hello') }]);
        assert.deepEqual(prompt.ids, bos === null ? plain.ids : [bos, ...plain.ids], name);
        const r = spawnSync(ONEBIT, ['tokenize', '-m', base, '--ids', '--add-special', '-p', 'Hello'], { encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout.trim(), prompt.ids.join(' '), `${name}: onebit tokenize --add-special`);
    }
});

test('vocabularies we do not claim are refused by name', { skip, timeout: 120_000 }, () => {
    for (const [name, why] of [['bert-bge', 'bert'], ['gemma-4', 'gemma4']]) {
        const r = spawnSync(ONEBIT, ['tokenize', '-m', `${dir}/models/ggml-vocab-${name}.gguf`, '-p', 'x'], { encoding: 'utf8', timeout: 60_000 });
        assert.notEqual(r.status, 0, name);
        assert.match(r.stderr, new RegExp(`tokenizer model '${why}' is not supported`), `${name}: ${r.stderr}`);
    }
});
