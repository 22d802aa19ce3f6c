/* template.c — `onebit template`: prints the prompt the model's own chat template renders for a
 * conversation given as JSON, exactly the text run/chat/serve would tokenize. For checking a
 * model's template and for tooling; loads the tokenizer and metadata only (no weights). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char TEMPLATE_USAGE[] =
    "usage: onebit template -m FILE --messages FILE.json [--tools FILE.json] [--no-think | --think]\n"
    "                       [--no-generation-prompt]\n"
    "Prints the prompt the model's chat template (tokenizer.chat_template) renders for the messages:\n"
    "a JSON array in the OpenAI shape ([{\"role\": \"user\", \"content\": \"Hi\"}, ...]; tool_calls and\n"
    "role \"tool\" messages are passed to the template as they are). '-' reads the messages from stdin.\n"
    "  --tools FILE.json         a JSON array of tools (OpenAI function tools), passed as `tools`\n"
    "  --no-think, --think       enable_thinking=false / true (default: left to the template)\n"
    "  --no-generation-prompt    no assistant header at the end (add_generation_prompt=false)\n"
    "Exit codes: 0 ok, 1 the template failed (its message), 2 usage, 3 unreadable file,\n"
    "4 invalid model or no chat template.\n";

static char *read_path(const char *path, const char *what) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "onebit: cannot open %s '%s'\n", what, path);
        return NULL;
    }
    size_t len;
    char *s = cli_read_all(f, &len);
    if (f != stdin) fclose(f);
    if (!s) fprintf(stderr, "onebit: cannot read %s '%s'\n", what, path);
    else if (strlen(s) != len) {
        fprintf(stderr, "onebit: %s '%s' contains a NUL byte\n", what, path);
        free(s);
        s = NULL;
    }
    return s;
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *messages = NULL, *tools = NULL;
    int think = -1, gen = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(TEMPLATE_USAGE, stdout); return 0; }
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && v) { model = v; i++; }
        else if (!strcmp(a, "--messages") && v) { messages = v; i++; }
        else if (!strcmp(a, "--tools") && v) { tools = v; i++; }
        else if (!strcmp(a, "--no-think")) think = 0;
        else if (!strcmp(a, "--think")) think = 1;
        else if (!strcmp(a, "--no-generation-prompt")) gen = 0;
        else {
            fprintf(stderr, "onebit: %s option '%s' (see onebit template --help)\n", v || a[0] != '-' ? "unknown" : "incomplete", a);
            return 2;
        }
    }
    if (!model || !messages) {
        fprintf(stderr, "onebit: template needs -m FILE and --messages FILE.json\n\n%s", TEMPLATE_USAGE);
        return 2;
    }
    char *msgs = read_path(messages, "messages file"), *tl = NULL;
    if (!msgs) return 3;
    if (tools && !(tl = read_path(tools, "tools file"))) {
        free(msgs);
        return 3;
    }
    ob_model *m = NULL;
    ob_model_params mp = ob_model_default_params();
    mp.vocab_only = 1;
    ob_status st = ob_model_load_file(model, &mp, &m);
    int r = 0;
    if (st) {
        char what[600];
        snprintf(what, sizeof what, "cannot load '%s'", model);
        r = cli_fail(st, what);
    } else {
        char *out = NULL;
        st = ob_chat_render_json(m, msgs, tl, gen, think, &out);
        if (st == OB_ERR_ARG) {
            fprintf(stderr, "onebit: %s\n", ob_last_error());
            r = 1;
        } else if (st) {
            r = cli_fail(st, "chat template");
        } else {
            fwrite(out, 1, strlen(out), stdout);
            free(out);
        }
        ob_model_free(m);
    }
    free(msgs);
    free(tl);
    return r;
}
