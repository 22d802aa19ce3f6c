/* hello.c — the smallest program on the onebit library: loads a GGUF model, renders one user
 * message with the model's chat template (plain text when it has none), and streams a greedy
 * reply of at most 32 tokens to stdout.
 *
 *   cc hello.c $(pkg-config --cflags --libs onebit) -o hello && ./hello model.gguf "Hello"
 */
#include <onebit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_text(const char *text, size_t len, void *user) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static int fail(const char *what, ob_status st) {
    fprintf(stderr, "hello: %s: %s (%s)\n", what, ob_last_error(), ob_status_str(st));
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT\n", argv[0]);
        return 2;
    }
    ob_model_params mp = ob_model_default_params();
    ob_model *model = NULL;
    ob_status st = ob_model_load_file(argv[1], &mp, &model);
    if (st) return fail("loading the model", st);

    ob_chat_message msg = {"user", argv[2]};
    char *prompt = NULL;
    st = ob_chat_render(model, &msg, 1, 1, 0, &prompt);
    if (st == OB_ERR_UNSUPPORTED) { /* no chat template: plain completion */
        prompt = malloc(strlen(argv[2]) + 1);
        if (prompt) strcpy(prompt, argv[2]);
        st = prompt ? OB_OK : OB_ERR_NOMEM;
    }
    if (st) { ob_model_free(model); return fail("rendering the prompt", st); }

    size_t cap = strlen(prompt) + 16, n = 0;
    ob_token *toks = malloc(cap * sizeof *toks);
    st = toks ? ob_tokenize_prompt(model, prompt, strlen(prompt), 1, toks, cap, &n) : OB_ERR_NOMEM;
    free(prompt);
    if (st) { free(toks); ob_model_free(model); return fail("tokenizing", st); }

    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = 512;
    ob_context *ctx = NULL;
    st = ob_context_new(model, &cp, &ctx);
    if (st) { free(toks); ob_model_free(model); return fail("creating a context", st); }

    ob_generate_params gp = {0};
    gp.sampling = ob_sampling_default();
    gp.sampling.temperature = 0; /* greedy */
    gp.max_tokens = 32;
    gp.on_text = print_text;
    ob_generate_result res;
    st = ob_generate(ctx, toks, n, &gp, &res);
    putchar('\n');
    free(toks);
    ob_context_free(ctx);
    ob_model_free(model);
    if (st) return fail("generating", st);
    fprintf(stderr, "hello: %d prompt tokens, %d generated\n", res.n_prompt, res.n_generated);
    return 0;
}
