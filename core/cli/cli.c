/* Argument parsing and dispatch for `im`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <im/types.h>

#include "app/app.h"
#include "cli/cli.h"
#include "log/log.h"

static const cli_command commands[] = {
    {"serve", cli_serve, "im serve [--config DIR]",
     "run the server on the config folder", 0, 0},
    {"config validate", cli_config_validate,
     "im config validate [--config DIR] [--json]",
     "check the config and plugin settings without starting", 0, 0},
    {"plugins list", cli_plugins_list, "im plugins list [--json]",
     "plugin instances, their modules and state", 0, 0},
    {"plugins info", cli_plugins_info, "im plugins info NAME [--json]",
     "a plugin module's details and config keys", 1, 1},
    {"plugins reload", cli_plugins_reload, "im plugins reload [--json]",
     "reload the config and plugins of the running server", 0, 0},
    {"version", cli_version, "im version [--json]",
     "print the version and plugin ABI", 0, 0},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f, const char *prefix)
{
	fprintf(f, "usage: im <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!prefix || strncmp(commands[i].name, prefix,
				       strlen(prefix)) == 0)
			fprintf(f, "  %-44s %s\n", commands[i].usage,
				commands[i].summary);
	fprintf(f,
		"\noptions:\n"
		"  --config DIR   config folder (default $IM_CONFIG or "
		"./conf.d)\n"
		"  --json         machine-readable output\n"
		"  --help         this help\n"
		"\nenvironment: IM_URL and IM_ADMIN_TOKEN reach a running "
		"server's admin API;\n"
		"LOG_LEVEL, CHATOPS_DEBUG, IM_PLUGIN_PATH.\n");
}

/* Finds the longest command name made of the leading words. */
static const cli_command *lookup(char **words, int n, int *used)
{
	const cli_command *best = NULL;
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char buf[128] = "";
		for (int k = 0; k < n && k < 3; k++) {
			if (k)
				strcat(buf, " ");
			if (strlen(buf) + strlen(words[k]) + 2 > sizeof(buf))
				break;
			strcat(buf, words[k]);
			if (strcmp(buf, commands[i].name) == 0 &&
			    (!best || k + 1 > *used)) {
				best = &commands[i];
				*used = k + 1;
			}
		}
	}
	return best;
}

int im_cli_main(int argc, char **argv)
{
	cli_ctx ctx = {0};
	char **pos = calloc((size_t)argc + 1, sizeof(*pos));
	int npos = 0;
	bool help = false;
	if (!pos)
		return CLI_FAIL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			help = true;
		} else if (!strcmp(a, "--json")) {
			ctx.json = true;
		} else if (!strcmp(a, "--version")) {
			pos[npos++] = "version";
		} else if (!strcmp(a, "--config") || !strcmp(a, "-c")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "im: --config needs a folder\n");
				free(pos);
				return CLI_USAGE;
			}
			ctx.config_dir = argv[++i];
		} else if (!strncmp(a, "--config=", 9)) {
			ctx.config_dir = a + 9;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "im: unknown option %s (see im --help)\n",
				a);
			free(pos);
			return CLI_USAGE;
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (!ctx.config_dir)
		ctx.config_dir = getenv("IM_CONFIG");
	if (!ctx.config_dir || !*ctx.config_dir)
		ctx.config_dir = "conf.d";
	int used = 0;
	const cli_command *cmd = npos ? lookup(pos, npos, &used) : NULL;
	int rc;
	if (!cmd) {
		if (npos && !help)
			fprintf(stderr, "im: unknown command '%s'\n\n", pos[0]);
		usage(help ? stdout : stderr, npos ? pos[0] : NULL);
		rc = help ? CLI_OK : CLI_USAGE;
	} else if (help) {
		printf("usage: %s\n\n%s\n", cmd->usage, cmd->summary);
		rc = CLI_OK;
	} else if (npos - used < cmd->min_args || npos - used > cmd->max_args) {
		fprintf(stderr, "usage: %s\n", cmd->usage);
		rc = CLI_USAGE;
	} else {
		ctx.argc = npos - used;
		ctx.argv = pos + used;
		rc = cmd->run(&ctx);
	}
	free(pos);
	return rc;
}

int cli_version(cli_ctx *ctx)
{
	if (ctx->json)
		printf("{\"version\":\"%s\",\"abi\":\"%d.%d\"}\n", IM_VERSION,
		       IM_ABI_MAJOR, IM_ABI_MINOR);
	else
		printf("im %s (plugin ABI %d.%d)\n", IM_VERSION, IM_ABI_MAJOR,
		       IM_ABI_MINOR);
	return CLI_OK;
}

int cli_serve(cli_ctx *ctx)
{
	im_log_init_env();
	im_serve_opts o = {.config_dir = ctx->config_dir};
	return im_serve(&o);
}
