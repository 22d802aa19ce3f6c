/* chat.h — chat prompt rendering with Qwen3's template semantics (ChatML).
 *
 * Renders exactly what Qwen3's Jinja chat template renders for plain text conversations:
 * system message, multi-turn, earlier assistant turns with their <think> blocks stripped as the
 * template does, and enable_thinking=False adding an empty think block to the generation prompt.
 * This is not a Jinja interpreter.
 */
#ifndef OB_CHAT_H
#define OB_CHAT_H

#include <stddef.h>
#include "onebit.h"

typedef enum { CHAT_TMPL_QWEN3 = 0, CHAT_TMPL_CHATML = 1 } chat_template_kind;

/* Chooses the template from the GGUF's tokenizer.chat_template text (NULL or unknown: ChatML). */
chat_template_kind chat_detect(const char *jinja_template);

/* Renders into a malloc'ed string. 0, or -1 with err (bad role, NULL content, out of memory). */
int chat_render(chat_template_kind kind, const ob_chat_message *msgs, size_t n,
                int add_generation_prompt, int enable_thinking, char **out, char *err,
                size_t errlen);

#endif
