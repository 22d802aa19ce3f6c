/* cli.h — shared pieces of the onebit command line (opts.c: option parsing, loading, exit codes) and
 * the subcommands (run.c, tools.c, serve.c), dispatched by main.c. */
#ifndef OB_CLI_H
#define OB_CLI_H

#include <signal.h>
#include <stdio.h>

#include "onebit.h"

#define CLI_MAX_STOP 16

typedef struct cli_opts {
    const char *model, *prompt, *prompt_file, *system, *backend, *tokens, *out;
    const char *grammar_file, *json_schema_file; /* run: constrained output (--json: any JSON object) */
    int max_tokens, n_ctx, n_threads, think, raw, no_special, decode, verbose, stats, json;
    int reps, pp, tg;
    int n_stop;
    const char *stop[CLI_MAX_STOP + 1];
    ob_sampling sampling;
} cli_opts;

/* Set by Ctrl-C once cli_install_sigint ran; a generation callback returns it to stop. */
extern volatile sig_atomic_t cli_interrupted;
void cli_install_sigint(void);

void cli_opts_init(cli_opts *o);
int cli_parse(int argc, char **argv, cli_opts *o, const char *usage);
int cli_load(const cli_opts *o, ob_model **m);
int cli_exit_code(ob_status st);
int cli_fail(ob_status st, const char *what);
char *cli_read_all(FILE *f, size_t *len);
char *cli_prompt_text(const cli_opts *o, size_t *len);
/* The GBNF text or JSON Schema --grammar-file / --json-schema / --json ask for (malloc'ed, checked);
 * 0 with both NULL when none was given, else an exit code after the message. */
int cli_constraint(const cli_opts *o, char **grammar, char **json_schema);
ob_status cli_tokenize(const ob_model *m, const char *text, size_t len, int special, ob_token **out, size_t *n);
ob_status cli_tokenize_prompt(const ob_model *m, const char *text, size_t len, int special, ob_token **out,
                              size_t *n);

int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_convert(int argc, char **argv);

#endif
