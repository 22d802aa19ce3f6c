#!/usr/bin/env python3
"""jinja_render.py — renders a chat template the way Hugging Face transformers' apply_chat_template
does, the oracle for src/core/jinja.c (tests/template.test.mjs).

Usage: jinja_render.py TEMPLATE_FILE CONTEXT_JSON_FILE [NOW_EPOCH_SECONDS]
Prints the render to stdout (raw bytes, no newline added), or "error: ..." to stderr with exit 1.
       jinja_render.py --batch JOBS_JSON_FILE [NOW_EPOCH_SECONDS]
JOBS_JSON_FILE holds [{"template": PATH, "context": {...}}, ...]; prints a JSON list of
{"ok": bool, "out": str} / {"ok": false, "err": str}, one per job (one Python start for many renders).

The environment mirrors transformers' chat_template_utils._compile_jinja_template:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols extension,
tojson as json.dumps(ensure_ascii=False, ...), and the globals raise_exception and strftime_now. The
{% generation %} tag of transformers' AssistantTracker renders its body unchanged here (its only
effect is to record assistant spans). strftime_now reads the clock at NOW_EPOCH_SECONDS (default:
the real clock), in local time (the tests run with TZ=UTC). Not a reimplementation of
apply_chat_template's message preprocessing: the context JSON is passed as the template's variables.
"""
import datetime
import json
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateError(Exception):
    pass


class GenerationTag(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env(now):
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        t = datetime.datetime.fromtimestamp(now) if now is not None else datetime.datetime.now()
        return t.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, tmpl_path, context):
    """(True, text) or (False, message); every failure, template or type error, counts."""
    with open(tmpl_path, encoding="utf-8") as f:
        source = f.read()
    try:
        return True, env.from_string(source).render(**context)
    except Exception as e:
        return False, "%s: %s" % (type(e).__name__, e)


def main():
    if sys.argv[1] == "--batch":
        now = float(sys.argv[3]) if len(sys.argv) > 3 else None
        env = make_env(now)
        with open(sys.argv[2], encoding="utf-8") as f:
            jobs = json.load(f)
        results = []
        for job in jobs:
            ok, text = render(env, job["template"], job["context"])
            results.append({"ok": True, "out": text} if ok else {"ok": False, "err": text})
        sys.stdout.write(json.dumps(results, ensure_ascii=True))
        return
    tmpl_path, ctx_path = sys.argv[1], sys.argv[2]
    now = float(sys.argv[3]) if len(sys.argv) > 3 else None
    with open(ctx_path, encoding="utf-8") as f:
        context = json.load(f)
    ok, text = render(make_env(now), tmpl_path, context)
    if not ok:
        sys.stderr.write("error: %s\n" % text)
        sys.exit(1)
    sys.stdout.buffer.write(text.encode("utf-8"))


if __name__ == "__main__":
    main()
