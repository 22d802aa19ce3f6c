/* think.c — drops the empty thinking block that Qwen3 (and models trained on its template) put at
 * the start of an answer in non-thinking mode, "<think>\n\n</think>\n\n", from a stream of
 * generated text. Used by `onebit run`/`chat` output and the server's chat `content`. Only that
 * exact block at the very start is removed: a block with reasoning in it passes unchanged (a later
 * change returns it as reasoning_content), and so does everything after the start. It holds back at
 * most the block's length while it cannot yet tell. */
#include <string.h>

#include "onebit.h"

static const char EMPTY_THINK[] = "<think>\n\n</think>\n\n";
#define EMPTY_THINK_LEN (sizeof EMPTY_THINK - 1)

void ob_think_strip_init(ob_think_strip *f, ob_text_fn fn, void *user) {
    memset(f, 0, sizeof *f);
    f->fn = fn;
    f->user = user;
}

/* Gives up matching: the bytes held back so far (a prefix of the block) go out first. */
static int give_up(ob_think_strip *f) {
    size_t held = f->matched;
    f->done = 1;
    f->matched = 0;
    return held ? f->fn(EMPTY_THINK, held, f->user) : 0;
}

int ob_think_strip_push(const char *text, size_t len, void *user) {
    ob_think_strip *f = user;
    if (!f->done) {
        size_t k = EMPTY_THINK_LEN - f->matched;
        if (k > len) k = len;
        if (memcmp(text, EMPTY_THINK + f->matched, k) == 0) {
            f->matched += k;
            text += k;
            len -= k;
            if (f->matched < EMPTY_THINK_LEN) return 0; /* all of it may still be the block */
            f->done = 1;                                /* the whole block: dropped */
            f->matched = 0;
        } else {
            int rc = give_up(f);
            if (rc) return rc;
        }
    }
    return len ? f->fn(text, len, f->user) : 0;
}

int ob_think_strip_flush(ob_think_strip *f) {
    return f->done ? 0 : give_up(f);
}
