/* chat.h — chat prompts from the model's own Jinja template (tokenizer.chat_template).
 *
 * The template is parsed once when the model loads and rendered by our interpreter (jinja.c) with
 * the variables Hugging Face transformers' apply_chat_template passes (messages, tools,
 * add_generation_prompt, bos_token, eos_token, and enable_thinking when the caller sets it), so a
 * new family needs no hand-written template. This module builds that context and checks the
 * messages; it never tokenizes. Not a template engine itself.
 */
#ifndef OB_CHAT_H
#define OB_CHAT_H

#include <stddef.h>

#include "jinja.h"
#include "onebit.h"

/* JSON text of a message list ([{"role": ..., "content": ...}, ...]) into a malloc'ed string.
 * Roles must be system, user, assistant or tool and content non-NULL. 0, or -1 with err. */
int chat_messages_json(const ob_chat_message *msgs, size_t n, char **out, char *err, size_t errlen);

/* Renders a parsed template. messages_json: a JSON array of message objects (content may be any
 * JSON the template handles: tool_calls, reasoning_content ...); tools_json: a JSON array or NULL;
 * enable_thinking: 0/1, or -1 to leave it undefined (the template's default); bos/eos: the special
 * tokens' text ("" when the model has none). *out is malloc'ed. 0, or -1 with err (the
 * template's own raise_exception message, a type error, a limit). */
int chat_render(const jinja_tmpl *t, const char *bos, const char *eos, const char *messages_json,
                const char *tools_json, int add_generation_prompt, int enable_thinking, char **out, char *err,
                size_t errlen);

#endif
