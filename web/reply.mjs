// reply.mjs — the parts of a chat answer, as web/onebit.js returns them: the reasoning of a
// <think>…</think> block, the content, and tool calls in the model's own syntax. The same rules as
// the server's (cli/serve_tools.c, docs/SERVER.md "Tool calls" and "Reasoning"), so that a request
// means the same in the JS API and in `onebit serve`:
//
//   const p = new ReplyParser({ reasoning: true, format: toolFormat(templateText) });
//   p.feed(text) -> events; p.finish() -> events; p.content, p.reasoning, p.calls
//
// Events: {kind: 'content' | 'reasoning', text}, {kind: 'call', index, id, name} (a call starts),
// {kind: 'args', index, text} (a piece of its arguments). Text is held back only while it may be
// the start of a marker, and trailing whitespace, which is dropped before a marker.

export const ToolFormat = Object.freeze({ NONE: 'none', HERMES: 'hermes', LLAMA3: 'llama3' });

// The tool-call syntax a chat template shows its model: Qwen/Hermes <tool_call>, Llama 3.1 JSON.
export function toolFormat(template) {
  if (!template) return ToolFormat.NONE;
  if (template.includes('<tool_call>')) return ToolFormat.HERMES;
  if (template.includes('<|python_tag|>') || template.includes('Environment: ipython')) return ToolFormat.LLAMA3;
  return ToolFormat.NONE;
}

const OPEN = '<tool_call>', CLOSE = '</tool_call>', THINK = '<think>', UNTHINK = '</think>', PY = '<|python_tag|>';
const isWs = (c) => c === ' ' || c === '\n' || c === '\r' || c === '\t';
const trimWsEnd = (s) => { let k = s.length; while (k > 0 && isWs(s[k - 1])) k--; return k; };
const skipWs = (s) => { let i = 0; while (i < s.length && isWs(s[i])) i++; return i; };
// Length of the longest end of s that is a proper beginning of marker.
function partial(s, marker) {
  for (let k = Math.min(marker.length - 1, s.length); k > 0; k--) if (s.endsWith(marker.slice(0, k))) return k;
  return 0;
}

// {"name": "N", "arguments"|"parameters": — 1 (with the name and the length up to the value's
// first character), 0 (s may still become it), -1 (it is not that shape).
function callHead(s) {
  let i = 0;
  const ws = () => { while (i < s.length && isWs(s[i])) i++; };
  const lit = (l) => {
    const k = Math.min(s.length - i, l.length);
    if (s.slice(i, i + k) !== l.slice(0, k)) return -1;
    if (k < l.length) return 0;
    i += l.length;
    return 1;
  };
  for (const l of ['{', '"name"', ':', '"']) {
    ws();
    if (i >= s.length) return { r: 0 };
    const r = lit(l);
    if (r <= 0) return { r };
  }
  const start = i;
  while (i < s.length && s[i] !== '"') {
    if (s[i] === '\\' || s.charCodeAt(i) < 0x20 || i - start > 256) return { r: -1 };
    i++;
  }
  if (i >= s.length) return { r: 0 };
  const name = s.slice(start, i);
  if (!name) return { r: -1 };
  i++;
  ws();
  if (i >= s.length) return { r: 0 };
  let r = lit(',');
  if (r <= 0) return { r };
  ws();
  if (i >= s.length) return { r: 0 };
  const rest = s.slice(i);
  const key = ['"arguments"', '"parameters"'].find((k) => k.startsWith(rest.slice(0, k.length)) || rest.startsWith(k));
  if (!key) return { r: -1 };
  if (rest.length < key.length) return { r: 0 };
  i += key.length;
  ws();
  if (i >= s.length) return { r: 0 };
  r = lit(':');
  if (r <= 0) return { r };
  ws();
  if (i >= s.length) return { r: 0 };
  return { r: 1, name, used: i };
}

// A whole call object in any key order, or null.
function wholeCall(text) {
  let o;
  try { o = JSON.parse(text); } catch { return null; }
  if (!o || typeof o !== 'object' || Array.isArray(o) || typeof o.name !== 'string' || !o.name) return null;
  const args = o.arguments ?? o.parameters;
  if (args === undefined) return null;
  return { name: o.name, args: typeof args === 'string' ? args : JSON.stringify(args) };
}

let idCounter = 0;
function callId() {
  const abc = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const r = new Uint8Array(24);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(r);
  else for (let i = 0; i < 24; i++) r[i] = (Math.random() * 256 + idCounter++) & 255;
  let s = 'call_';
  for (const b of r) s += abc[b % 62];
  return s;
}

export class ReplyParser {
  constructor({ reasoning = true, format = ToolFormat.NONE } = {}) {
    this.split = reasoning;
    this.format = format;
    this.state = reasoning ? 'start' : 'content';
    this.pend = '';
    this.raw = ''; // the current call's text, in case it is not one
    this.skip = false;
    this.seen = false;
    this.content = '';
    this.reasoning = '';
    this.calls = []; // {id, name, arguments}
    this.ev = [];
  }

  emit(kind, text, index) {
    if (kind === 'call') {
      const call = { id: callId(), name: text, arguments: '' };
      this.calls.push(call);
      this.ev.push({ kind, index: this.calls.length - 1, id: call.id, name: call.name });
      return;
    }
    if (!text) return;
    if (kind === 'content') this.content += text;
    else if (kind === 'reasoning') this.reasoning += text;
    else this.calls[index].arguments += text;
    const last = this.ev.at(-1);
    if (last && last.kind === kind && last.index === index) last.text += text;
    else this.ev.push({ kind, index, text });
  }

  // Emits s as kind less its trailing whitespace; returns the characters used.
  emitHold(kind, s) {
    const k = trimWsEnd(s);
    if (kind === 'content' && k > 0) this.seen = true;
    this.emit(kind, s.slice(0, k));
    return k;
  }

  asContent() {
    if (this.raw) { this.seen = true; this.emit('content', this.raw); }
    this.raw = '';
  }

  run(final) {
    for (;;) {
      const s = this.pend;
      switch (this.state) {
      case 'start': {
        const i = skipWs(s), rest = s.slice(i);
        if (rest.startsWith(THINK)) { this.pend = rest.slice(THINK.length); this.state = 'think'; this.skip = true; continue; }
        if (!final && THINK.startsWith(rest)) return; // may still open
        this.state = 'content';
        continue;
      }
      case 'think': {
        if (this.skip) {
          const i = skipWs(s);
          this.pend = s.slice(i);
          if (i === s.length && !final) return;
          this.skip = false;
          continue;
        }
        const at = s.indexOf(UNTHINK);
        if (at >= 0) {
          this.emitHold('reasoning', s.slice(0, at));
          this.pend = s.slice(at + UNTHINK.length);
          this.state = 'content';
          this.skip = true;
          continue;
        }
        if (final) { this.emit('reasoning', s); this.pend = ''; return; }
        this.pend = s.slice(this.emitHold('reasoning', s.slice(0, s.length - partial(s, UNTHINK))));
        return;
      }
      case 'content':
      case 'rest': {
        if (this.skip) {
          const i = skipWs(s);
          this.pend = s.slice(i);
          if (i === s.length && !final) return;
          this.skip = false;
          continue;
        }
        if (this.state === 'content' && this.format === ToolFormat.LLAMA3 && !this.seen && this.calls.length === 0) {
          if (s && PY.startsWith(s.slice(0, PY.length))) {
            if (s.length >= PY.length) { this.pend = s.slice(PY.length); this.state = 'head'; this.skip = true; continue; }
            if (!final) return;
          } else if (s[0] === '{') {
            this.state = 'head';
            continue;
          }
        }
        if (this.state === 'content' && this.format === ToolFormat.HERMES) {
          const at = s.indexOf(OPEN);
          if (at >= 0) {
            this.emitHold('content', s.slice(0, at));
            this.pend = s.slice(at + OPEN.length);
            this.raw = OPEN;
            this.state = 'head';
            continue;
          }
        }
        if (final) { if (s) this.seen = true; this.emit('content', s); this.pend = ''; return; }
        const cut = s.length - (this.state === 'content' && this.format === ToolFormat.HERMES ? partial(s, OPEN) : 0);
        this.pend = s.slice(this.emitHold('content', s.slice(0, cut)));
        return;
      }
      case 'head': {
        if (this.skip) {
          const i = skipWs(s);
          this.pend = s.slice(i);
          if (i === s.length && !final) return;
          this.skip = false;
          continue;
        }
        const h = callHead(s);
        if (h.r === 0 && !final) return;
        if (h.r === 1) {
          this.emit('call', h.name);
          this.raw += s.slice(0, h.used);
          this.pend = s.slice(h.used);
          this.depth = 0; this.inStr = false; this.esc = false; this.started = false;
          this.state = 'args';
          continue;
        }
        this.state = 'whole';
        continue;
      }
      case 'args': {
        let i = 0, done = false;
        for (; i < s.length && !done; i++) {
          const c = s[i];
          if (this.inStr) {
            if (this.esc) this.esc = false;
            else if (c === '\\') this.esc = true;
            else if (c === '"') { this.inStr = false; if (this.depth === 0) done = true; }
          } else if (c === '"') { this.inStr = true; this.started = true; }
          else if (c === '{' || c === '[') { this.depth++; this.started = true; }
          else if (c === '}' || c === ']') {
            if (this.depth === 0) { i--; done = true; } else if (--this.depth === 0) done = true;
          } else if (this.depth === 0 && this.started && (c === ',' || isWs(c))) { i--; done = true; }
          else if (!isWs(c)) this.started = true;
        }
        this.emit('args', s.slice(0, i), this.calls.length - 1);
        this.pend = s.slice(i);
        this.raw = '';
        if (!done) return;
        this.state = 'tail';
        continue;
      }
      case 'tail': {
        if (this.format === ToolFormat.LLAMA3) {
          let i = skipWs(s);
          if (i === s.length && !final) return;
          if (s[i] === '}') i++;
          this.pend = s.slice(i);
          this.state = 'rest';
          this.skip = true;
          continue;
        }
        const at = s.indexOf(CLOSE);
        if (at >= 0) { this.pend = s.slice(at + CLOSE.length); this.state = 'content'; this.skip = true; continue; }
        this.pend = s.slice(s.length - (final ? 0 : partial(s, CLOSE)));
        return;
      }
      case 'whole': {
        if (this.format === ToolFormat.HERMES) {
          const at = s.indexOf(CLOSE);
          if (at < 0 && !final) return;
          const body = at >= 0 ? s.slice(0, at) : s;
          const upto = at >= 0 ? at + CLOSE.length : s.length;
          const call = wholeCall(body);
          if (call) {
            this.raw = '';
            this.emit('call', call.name);
            this.emit('args', call.args, this.calls.length - 1);
            this.pend = s.slice(upto);
            this.state = 'content';
            this.skip = true;
            continue;
          }
          this.raw += s.slice(0, upto);
          this.pend = s.slice(upto);
          this.asContent();
          this.state = 'content';
          continue;
        }
        if (!final) return;
        const call = wholeCall(s);
        if (call) {
          this.raw = '';
          this.emit('call', call.name);
          this.emit('args', call.args, this.calls.length - 1);
        } else {
          this.raw += s;
          this.asContent();
        }
        this.pend = '';
        this.state = 'rest';
        return;
      }
      default:
        return;
      }
    }
  }

  // Takes the next piece of text; returns the events it completes.
  feed(text) {
    this.pend += text;
    this.run(false);
    const ev = this.ev;
    this.ev = [];
    return ev;
  }

  // The text has ended; returns the last events.
  finish() {
    this.run(true);
    const ev = this.ev;
    this.ev = [];
    return ev;
  }
}
