/* Argument parsing and dispatch for `im`. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <im/types.h>

#include "app/app.h"
#include "cli/cli.h"
#include "log/log.h"
#include "paths/paths.h"

static const cli_command commands[] = {
    {"serve", cli_serve, "im serve [--config DIR]",
     "run the server on the config folder", 0, 0, ""},
    {"config validate", cli_config_validate,
     "im config validate [--config DIR] [--json]",
     "check the config and plugin settings without starting", 0, 0, ""},
    {"config reference", cli_config_reference,
     "im config reference [--config DIR]",
     "every setting of the core and of the plugins found, as Markdown", 0,
     0, ""},
    {"plugins list", cli_plugins_list, "im plugins list [--json]",
     "plugin instances, their modules and state", 0, 0, ""},
    {"plugins info", cli_plugins_info, "im plugins info NAME [--json]",
     "a plugin module's details and config keys", 1, 1, ""},
    {"plugins reload", cli_plugins_reload, "im plugins reload [--json]",
     "reload the config and plugins of the running server", 0, 0, ""},
    {"declare", cli_declare,
     "im declare --title TEXT [--sev SEV-n] [--service S] [--description D]",
     "declare an incident; prints its id and URL", 0, 1,
     "title=,sev=,severity=,service=,description=,commander=,"
     "idempotency-key="},
    {"incident list", cli_incident_list,
     "im incident list [--status S] [--sev SEV-n] [--service S] [--limit N]",
     "incidents, newest first", 0, 0,
     "status=,sev=,severity=,service=,limit=,cursor=,all"},
    {"incident show", cli_incident_show, "im incident show INC-n",
     "one incident and its timeline", 1, 1, ""},
    {"incident ack", cli_incident_transition,
     "im incident ack INC-n [--note TEXT]", "acknowledge an incident", 1, 1,
     "note=,idempotency-key="},
    {"incident mitigate", cli_incident_transition,
     "im incident mitigate INC-n [--note TEXT]", "mark it mitigated", 1, 1,
     "note=,idempotency-key="},
    {"incident resolve", cli_incident_transition,
     "im incident resolve INC-n [--note TEXT]", "mark it resolved", 1, 1,
     "note=,idempotency-key="},
    {"incident close", cli_incident_transition,
     "im incident close INC-n [--note TEXT]", "close it", 1, 1,
     "note=,idempotency-key="},
    {"incident cancel", cli_incident_transition,
     "im incident cancel INC-n [--note TEXT]", "cancel it (declared by "
     "mistake)", 1, 1, "note=,idempotency-key="},
    {"incident duplicate", cli_incident_transition,
     "im incident duplicate INC-n --of INC-m", "mark it a duplicate", 1, 1,
     "of=,note=,idempotency-key="},
    {"incident note", cli_incident_note, "im incident note INC-n TEXT...",
     "add a note to the timeline", 2, 64, "idempotency-key="},
    {"incident timeline", cli_incident_timeline,
     "im incident timeline INC-n", "the incident's events, oldest first", 1,
     1, ""},
    {"events status", cli_events_status, "im events status [--json]",
     "event bus and stream state", 0, 0, ""},
    {"events tail", cli_events_tail,
     "im events tail [--type GLOB] [--since N] [--incident INC-n] [--count N]",
     "follow incident events as they happen", 0, 0,
     "type=,since=,incident=,count="},
    {"chatops templates list", cli_templates_list,
     "im chatops templates list [--json]",
     "message templates: platform, event, engine, file, override", 0, 0,
     ""},
    {"chatops templates validate", cli_templates_validate,
     "im chatops templates validate [--platform P]",
     "render every template with sample incidents and check platform "
     "limits", 0, 0, "platform="},
    {"chatops templates render", cli_templates_render,
     "im chatops templates render NAME [--incident INC-n | --data FILE]",
     "print a rendered payload for preview", 1, 1, "incident=,data="},
    {"chatops subscriptions list", cli_chatops_subs_list,
     "im chatops subscriptions list [--json]",
     "where notifications go: config, connector routing and added ones", 0,
     0, ""},
    {"chatops subscriptions add", cli_chatops_subs_add,
     "im chatops subscriptions add --connector ID --channel CHANNEL_ID "
     "[--events GLOB,..] [--min-severity SEV-n] [--services S,..] "
     "[--mode update|thread|post]",
     "send notifications to a channel (kept across restarts)", 0, 0,
     "connector=,channel=,events=,min-severity=,services=,mode="},
    {"chatops subscriptions remove", cli_chatops_subs_remove,
     "im chatops subscriptions remove ID", "remove an added subscription",
     1, 1, ""},
    {"chatops configure", cli_chatops_configure,
     "im chatops configure [--batch-window 5s|default]",
     "show or change notification settings at runtime (kept across "
     "restarts)", 0, 0, "batch-window="},
    {"chatops outbox list", cli_chatops_outbox_list,
     "im chatops outbox list [--dead] [--limit N]",
     "queued notifications, or dead letters with their error and hint", 0,
     0, "dead,limit="},
    {"chatops outbox retry", cli_chatops_outbox_retry,
     "im chatops outbox retry ID", "send a dead letter again", 1, 1, ""},
    {"connector", cli_connector_status,
     "im connector <instance|platform> status [--json]",
     "token, scopes, mode, connection and last error of a connector; exit "
     "1 when unhealthy", 2, 2, ""},
    {"connector * sync-commands", cli_connector_action,
     "im connector <instance|platform> sync-commands [--guild ID | "
     "--global] [--dry-run] [--json]",
     "register the chat commands with the platform where it needs them "
     "(changes only)", 0, 0, "guild=,global,dry-run"},
    {"chatops * list-channels", cli_chatops_list_channels,
     "im chatops <platform> list-channels [--instance ID] [--json]",
     "every channel the bot sees: id, name, private, bot member, "
     "subscribed", 0, 0, "instance="},
    {"chatops test", cli_chatops_test, "im chatops test <instance> [--json]",
     "check a connector: connected, permissions, default channel, slash "
     "commands", 1, 1, ""},
    {"chatops notify", cli_chatops_notify,
     "im chatops notify <instance> <INC-id> [--channel C]",
     "send a test notification for an incident through the connector", 2,
     2, "channel="},
    {"version", cli_version, "im version [--json]",
     "print the version and plugin ABI", 0, 0, ""},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const char *cli_current_command;

static void usage(FILE *f, const char *prefix)
{
	fprintf(f, "usage: im <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!prefix || strncmp(commands[i].name, prefix,
				       strlen(prefix)) == 0) {
			if (strlen(commands[i].usage) > 44)
				fprintf(f, "  %s\n  %-44s %s\n",
					commands[i].usage, "",
					commands[i].summary);
			else
				fprintf(f, "  %-44s %s\n", commands[i].usage,
					commands[i].summary);
		}
	char conf[PATH_MAX];
	im_paths_get(IM_PATH_CONFIG, conf, sizeof(conf));
	fprintf(f,
		"\noptions:\n"
		"  --config DIR   config folder (default $IM_CONFIG, else "
		"%s)\n"
		"  --json         machine-readable output\n"
		"  --help         this help\n"
		"\nenvironment: IM_URL, IM_API_TOKEN and IM_ADMIN_TOKEN reach a "
		"running server;\n"
		"LOG_LEVEL, CHATOPS_DEBUG, IM_PLUGIN_PATH.\n",
		conf);
}

/* Finds the longest command name made of the leading words. */
/* Whether the first k+1 words spell command `name`, whose words may be
 * "*" (any one word: "chatops * list-channels" takes the platform). */
static bool spells(const char *name, char **words, int k, const char **star)
{
	const char *p = name;
	for (int i = 0; i <= k; i++) {
		size_t len = strcspn(p, " ");
		if (len == 1 && *p == '*')
			*star = words[i];
		else if (strlen(words[i]) != len || strncmp(p, words[i], len))
			return false;
		p += len;
		if (i < k && *p++ != ' ')
			return false;
	}
	return *p == '\0';
}

const char *cli_command_word;

static const cli_command *lookup(char **words, int n, int *used)
{
	const cli_command *best = NULL;
	*used = 0;
	for (size_t i = 0; i < N_COMMANDS; i++) {
		for (int k = 0; k < n && k < 3; k++) {
			const char *star = NULL;
			if (spells(commands[i].name, words, k, &star) &&
			    k + 1 > *used) {
				best = &commands[i];
				*used = k + 1;
				cli_command_word = star;
			}
		}
	}
	return best;
}

/* Looks `name` up in a spec "a=,b,c=": 0 unknown, 1 flag, 2 takes a value. */
static int opt_kind(const char *spec, const char *name, size_t len)
{
	const char *p = spec;
	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		bool val = n && p[n - 1] == '=';
		size_t nl = val ? n - 1 : n;
		if (nl == len && strncmp(p, name, len) == 0)
			return val ? 2 : 1;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

const char *cli_opt_get(const cli_ctx *ctx, const char *name)
{
	for (int i = ctx->nopts - 1; i >= 0; i--)
		if (strcmp(ctx->opts[i].name, name) == 0)
			return ctx->opts[i].value ? ctx->opts[i].value : "";
	return NULL;
}

typedef struct parsed {
	char **pos;
	int npos;
	bool help;
} parsed;

/* Global options anywhere; a command's own options once it is known. */
static int parse_args(int argc, char **argv, cli_ctx *ctx, parsed *p,
		      const cli_command **cmd, int *used)
{
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			p->help = true;
		} else if (!strcmp(a, "--json")) {
			ctx->json = true;
		} else if (!strcmp(a, "--version") && !*cmd) {
			p->pos[p->npos++] = "version";
		} else if (!strcmp(a, "--config") || !strcmp(a, "-c")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "im: --config needs a folder\n");
				return CLI_USAGE;
			}
			ctx->config_dir = argv[++i];
		} else if (!strncmp(a, "--config=", 9)) {
			ctx->config_dir = a + 9;
		} else if (a[0] == '-' && a[1] == '-' && a[2]) {
			char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			if (!*cmd)
				*cmd = lookup(p->pos, p->npos, used);
			int kind = *cmd ? opt_kind((*cmd)->opts, name, len) : 0;
			if (kind == 0) {
				fprintf(stderr,
					"im: unknown option --%.*s%s%s (see "
					"im %s --help)\n",
					(int)len, name, *cmd ? " for " : "",
					*cmd ? (*cmd)->name : "",
					*cmd ? (*cmd)->name : "");
				return CLI_USAGE;
			}
			if (ctx->nopts >= 16)
				return CLI_USAGE;
			cli_opt *o = &ctx->opts[ctx->nopts++];
			if (eq)
				*eq = '\0';
			o->name = name;
			o->value = NULL;
			if (kind == 2) {
				if (eq)
					o->value = eq + 1;
				else if (i + 1 < argc)
					o->value = argv[++i];
				else {
					fprintf(stderr,
						"im: --%s needs a value\n",
						name);
					return CLI_USAGE;
				}
			} else if (eq) {
				fprintf(stderr, "im: --%s takes no value\n",
					name);
				return CLI_USAGE;
			}
		} else if (a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) {
			fprintf(stderr, "im: unknown option %s (see im --help)\n",
				a);
			return CLI_USAGE;
		} else {
			p->pos[p->npos++] = a;
		}
	}
	if (!*cmd)
		*cmd = lookup(p->pos, p->npos, used);
	return CLI_OK;
}

int im_cli_main(int argc, char **argv)
{
	static char default_config[PATH_MAX];
	cli_ctx ctx = {0};
	parsed p = {.pos = calloc((size_t)argc + 1, sizeof(char *))};
	const cli_command *cmd = NULL;
	int used = 0;
	if (!p.pos)
		return CLI_FAIL;
	int rc = parse_args(argc, argv, &ctx, &p, &cmd, &used);
	if (rc != CLI_OK) {
		free(p.pos);
		return rc;
	}
	if (!ctx.config_dir)
		ctx.config_dir = getenv("IM_CONFIG");
	if (!ctx.config_dir || !*ctx.config_dir) {
		im_paths_get(IM_PATH_CONFIG, default_config,
			     sizeof(default_config));
		ctx.config_dir = default_config;
	}
	if (!cmd) {
		bool group = false;
		for (size_t i = 0; p.npos && i < N_COMMANDS && !group; i++)
			group = strncmp(commands[i].name, p.pos[0],
					strlen(p.pos[0])) == 0 &&
				commands[i].name[strlen(p.pos[0])] == ' ';
		if (p.npos && !p.help && group && p.npos > 1)
			fprintf(stderr, "im: unknown command '%s %s'\n\n",
				p.pos[0], p.pos[1]);
		else if (p.npos && !p.help && !group)
			fprintf(stderr, "im: unknown command '%s'\n\n",
				p.pos[0]);
		usage(p.help ? stdout : stderr, p.npos ? p.pos[0] : NULL);
		rc = p.help ? CLI_OK : CLI_USAGE;
	} else if (p.help) {
		/* "im chatops <platform> list-channels" as typed. */
		const char *ph = strchr(cmd->usage, '<');
		const char *pe = ph ? strchr(ph, '>') : NULL;
		if (cli_command_word && pe && ph - cmd->usage < 64)
			printf("usage: %.*s%s%s\n\n%s\n",
			       (int)(ph - cmd->usage), cmd->usage,
			       cli_command_word, pe + 1, cmd->summary);
		else
			printf("usage: %s\n\n%s\n", cmd->usage, cmd->summary);
		rc = CLI_OK;
	} else if (p.npos - used < cmd->min_args ||
		   p.npos - used > cmd->max_args) {
		fprintf(stderr, "usage: %s\n", cmd->usage);
		rc = CLI_USAGE;
	} else {
		ctx.argc = p.npos - used;
		ctx.argv = p.pos + used;
		cli_current_command = cmd->name;
		rc = cmd->run(&ctx);
	}
	free(p.pos);
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
