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

typedef struct cli_opt {
	const char *name;  /* without the leading "--" */
	const char *value; /* NULL for a flag */
} cli_opt;

typedef struct cli_ctx {
	const char *config_dir; /* --config, IM_CONFIG or ./conf.d */
	bool json;              /* --json */
	int argc;               /* positional arguments after the command */
	char **argv;
	cli_opt opts[16];       /* the command's own options */
	int nopts;
} cli_ctx;

typedef struct cli_command {
	const char *name;    /* "plugins list" */
	int (*run)(cli_ctx *ctx);
	const char *usage;   /* "im plugins list [--json]" */
	const char *summary;
	int min_args, max_args;
	/* Options the command takes, comma-separated; a trailing '=' means
	 * it takes a value: "sev=,title=,follow". */
	const char *opts;
} cli_command;

/* Value of --name (NULL when absent); for flags, "" when present. */
const char *cli_opt_get(const cli_ctx *ctx, const char *name);

int im_cli_main(int argc, char **argv);

/* client.c: calls the admin API of the running server. Returns 0 with the
 * HTTP status and parsed JSON body (*out, may be NULL), or IM_EIO when the
 * server cannot be reached (err says where it looked and what to do). */
int cli_admin_call(const cli_ctx *ctx, const char *method, const char *path,
		   const char *body, long *status, json_t **out, char *err,
		   size_t errlen);
/* Same for the REST API: token IM_API_TOKEN, else the admin token.
 * `idem` (may be NULL) is sent as Idempotency-Key. */
int cli_api_call(const cli_ctx *ctx, const char *method, const char *path,
		 const char *body, const char *idem, long *status,
		 json_t **out, char *err, size_t errlen);
/* Base URL of the server the CLI talks to ("http://127.0.0.1:8080"). */
void cli_base_url(const cli_ctx *ctx, char *url, size_t len);
/* Loads the config of ctx->config_dir, printing the error on failure. */
im_config *cli_load_config(const cli_ctx *ctx, bool quiet);
/* Prints JSON indented, in key order ("null" for NULL), for --json. */
void cli_print_json(const json_t *v);
/* Percent-encodes all but RFC 3986 unreserved characters and those in
 * `keep` (may be NULL), e.g. "*," for type globs in a query. */
void cli_url_encode(const char *in, const char *keep, char *out, size_t len);
/* Prints {"error":{"message":...}} or a plain line to stderr. */
void cli_print_error(const char *what, const json_t *body);

/* Command implementations. */
int cli_serve(cli_ctx *ctx);
int cli_version(cli_ctx *ctx);
int cli_config_validate(cli_ctx *ctx);
int cli_config_reference(cli_ctx *ctx);
int cli_plugins_list(cli_ctx *ctx);
int cli_plugins_info(cli_ctx *ctx);
int cli_plugins_reload(cli_ctx *ctx);
/* incidents.c */
int cli_declare(cli_ctx *ctx);
int cli_incident_list(cli_ctx *ctx);
int cli_incident_show(cli_ctx *ctx);
int cli_incident_transition(cli_ctx *ctx); /* ack|mitigate|resolve|close|cancel|duplicate */
int cli_incident_note(cli_ctx *ctx);
int cli_incident_timeline(cli_ctx *ctx);
/* events.c */
int cli_events_status(cli_ctx *ctx);
int cli_events_tail(cli_ctx *ctx);
/* templates.c */
int cli_templates_list(cli_ctx *ctx);
int cli_templates_validate(cli_ctx *ctx);
int cli_templates_render(cli_ctx *ctx);
/* chatops.c: notification subscriptions, settings and outbox */
int cli_chatops_subs_list(cli_ctx *ctx);
int cli_chatops_subs_add(cli_ctx *ctx);
int cli_chatops_subs_remove(cli_ctx *ctx);
int cli_chatops_configure(cli_ctx *ctx);
int cli_chatops_outbox_list(cli_ctx *ctx);
int cli_chatops_outbox_retry(cli_ctx *ctx);
/* connector.c: connector status and chat-platform checks */
int cli_connector_status(cli_ctx *ctx);
int cli_chatops_list_channels(cli_ctx *ctx);
/* `im connector <instance> <action>`: a connector's own action. */
int cli_connector_action(cli_ctx *ctx);
int cli_chatops_test(cli_ctx *ctx);
int cli_chatops_notify(cli_ctx *ctx);
/* The command name being run ("incident ack"), for shared handlers. */
extern const char *cli_current_command;
/* The word a "*" of the command's name matched ("chatops * list-channels"). */
extern const char *cli_command_word;

#endif
