/* jinja.h — a Jinja template interpreter for chat templates, byte-identical to Python's Jinja2 as
 * Hugging Face transformers runs it in apply_chat_template.
 *
 * What it is: a parser and renderer for the subset of Jinja2 that real chat templates use
 * (tokenizer.chat_template in GGUF metadata): {{ }}, {% %}, {# #}, whitespace control, if/elif/else,
 * for (loop.*, filters on the iterable, else, tuple unpacking, break/continue), set (also block
 * set and namespace attributes), macros with defaults, filter blocks, {% generation %}, the usual
 * filters, tests, operators, slices, string/dict methods, range, namespace, dict,
 * raise_exception and strftime_now. The environment is transformers':
 * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]),
 * keep_trailing_newline=False, autoescape off, Undefined = jinja2.Undefined (printing gives "",
 * iterating gives nothing, `is defined` is false, but an attribute of an undefined value, arithmetic
 * on it or calling it is an error, as in Jinja2), tojson = json.dumps(ensure_ascii=False, indent=,
 * separators=, sort_keys=). Unknown filters and tests are parse errors, as in Jinja2.
 *
 * What it is not: a general Jinja2. No template inheritance, includes, imports, call blocks,
 * recursive loops, autoescaping or arbitrary-precision integers (an int64 overflow is an error).
 * upper/lower/title/capitalize change ASCII letters only. Library code: it never prints or exits;
 * every failure comes back as -1 with a message.
 *
 * Hostile templates and contexts: recursion depth, output size (16 MiB), memory (256 MiB per
 * render), evaluation steps (20 million) and range() lengths (100000, Jinja2's sandbox limit) are
 * bounded; no input crashes it.
 *
 * Context keys a caller should pass to match transformers' apply_chat_template (a JSON object):
 *   messages               list of {"role", "content", ...}; assistant messages may carry
 *                          "tool_calls" [{"type":"function","function":{"name","arguments"}}] and
 *                          "reasoning_content"; tool results use role "tool" (+ "tool_call_id",
 *                          "name" where known). Pass content as given (string, or list of parts).
 *   tools                  the list of OpenAI function-tool objects, or null when there are none
 *                          (transformers always passes the key: `tools is defined` is true, and
 *                          templates test `tools is not none` / `if tools`).
 *   documents              null unless retrieval documents are given (transformers passes it too).
 *   add_generation_prompt  true / false.
 *   bos_token, eos_token   the tokenizer's special token strings (transformers passes every
 *                          special token it knows: also unk_token, pad_token, ... where set).
 *   enable_thinking etc.   extra keyword arguments (chat_template_kwargs) are passed as they are;
 *                          leave a key out rather than passing null when the caller did not set it
 *                          (templates test `enable_thinking is defined`).
 * raise_exception and strftime_now are globals provided here; strftime_now reads the clock given
 * to jinja_render_at (local time, like Python's datetime.now()).
 */
#ifndef ONEBIT_JINJA_H
#define ONEBIT_JINJA_H

#include <stddef.h>
#include <stdint.h>

typedef struct jinja_tmpl jinja_tmpl;

/* Parses a template. 0 and *out set, or -1 with a message "line L col C: ..." in err. */
int jinja_parse(const char *src, size_t len, jinja_tmpl **out, char *err, size_t errcap);

/* Renders with the variables of context_json (a JSON object, see above) at the current time.
 * *out is malloc'ed and NUL-terminated (*out_len bytes before the NUL if out_len is not NULL).
 * 0, or -1 with a message in err (raise_exception's message, type errors, limits). */
int jinja_render(const jinja_tmpl *t, const char *context_json, char **out, size_t *out_len,
                 char *err, size_t errcap);

/* Same, with strftime_now reading the clock at now_epoch (seconds since 1970, UTC). */
int jinja_render_at(const jinja_tmpl *t, const char *context_json, int64_t now_epoch, char **out,
                    size_t *out_len, char *err, size_t errcap);

void jinja_free(jinja_tmpl *t);

#endif
