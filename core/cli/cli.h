/*
 * core/cli - the `im` command line. Thin: parse arguments, then call the
 * running server's admin API or read the config and plugins locally.
 * Exit codes: 0 success, 1 failure, 2 usage error.
 */
#ifndef IM_CORE_CLI_H
#define IM_CORE_CLI_H

#include <stdbool.h>

#include <jansson.h>

#include "config/config.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_ctx {
	const char *config_dir; /* --config, IM_CONFIG or ./conf.d */
	bool json;              /* --json */
	int argc;               /* positional arguments after the command */
	char **argv;
} cli_ctx;

typedef struct cli_command {
	const char *name;    /* "plugins list" */
	int (*run)(cli_ctx *ctx);
	const char *usage;   /* "im plugins list [--json]" */
	const char *summary;
	int min_args, max_args;
} cli_command;

int im_cli_main(int argc, char **argv);

/* client.c: calls the admin API of the running server. Returns 0 with the
 * HTTP status and parsed JSON body (*out, may be NULL), or IM_EIO when the
 * server cannot be reached (err says where it looked and what to do). */
int cli_admin_call(const cli_ctx *ctx, const char *method, const char *path,
		   const char *body, long *status, json_t **out, char *err,
		   size_t errlen);
/* Loads the config of ctx->config_dir, printing the error on failure. */
im_config *cli_load_config(const cli_ctx *ctx, bool quiet);
/* Prints {"error":{"message":...}} or a plain line to stderr. */
void cli_print_error(const char *what, const json_t *body);

/* Command implementations. */
int cli_serve(cli_ctx *ctx);
int cli_version(cli_ctx *ctx);
int cli_config_validate(cli_ctx *ctx);
int cli_plugins_list(cli_ctx *ctx);
int cli_plugins_info(cli_ctx *ctx);
int cli_plugins_reload(cli_ctx *ctx);

#endif
