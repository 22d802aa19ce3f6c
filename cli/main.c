/* main.c — the `onebit` command line: run, chat, info, tokenize, template, logits, bench, serve,
 * quantize, convert.
 *
 * The only place (with the server) that prints and exits. Each subcommand parses its own flags,
 * calls the library, and maps failures to an exit code:
 *   0 ok, 1 failure, 2 usage error, 3 file cannot be read, 4 invalid or unsupported model,
 *   5 prompt does not fit the context, 6 out of memory, 130 interrupted.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char MAIN_USAGE[] =
    "onebit " ONEBIT_VERSION " — run low-bit language models (GGUF) on your own machine\n"
    "\n"
    "usage: onebit COMMAND [options]       (onebit COMMAND --help for details)\n"
    "  run       generate a reply to one prompt\n"
    "  chat      interactive chat\n"
    "  info      show a model's metadata, tensors and sizes\n"
    "  tokenize  text to token ids (--decode: ids to text)\n"
    "  template  the prompt the model's chat template renders for messages in JSON\n"
    "  logits    raw logits of a token list, for tests\n"
    "  bench     prompt and generation speed (pp/tg, like llama-bench)\n"
    "  serve     OpenAI-compatible HTTP server and web app\n"
    "  quantize  a copy of a GGUF model with its weight matrices in another type (q1_0, q4_K, ...)\n"
    "  convert   a Hugging Face checkpoint folder (safetensors) to GGUF\n"
    "\n"
    "exit codes: 0 ok, 1 failure, 2 usage, 3 unreadable file, 4 invalid or unsupported model,\n"
    "            5 prompt too long for the context, 6 out of memory, 130 interrupted\n";

int main(int argc, char **argv) {
    if (argc < 2) { fputs(MAIN_USAGE, stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { fputs(MAIN_USAGE, stdout); return 0; }
    if (!strcmp(cmd, "--version")) { puts("onebit " ONEBIT_VERSION); return 0; }
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "chat")) return cmd_chat(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "logits")) return cmd_logits(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(cmd, "template")) return cmd_template(argc - 2, argv + 2);
    if (!strcmp(cmd, "quantize")) return cmd_quantize(argc - 2, argv + 2);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc - 2, argv + 2);
    fprintf(stderr, "onebit: unknown command '%s'\n\n%s", cmd, MAIN_USAGE);
    return 2;
}
