/* Connector commands that ask the running server about a chat platform:
 * `im connector <instance|platform> status`, `im chatops <platform>
 * list-channels`, `im chatops test <instance>` and `im chatops notify
 * <instance> <INC-id>`. Everything comes from the admin API: the
 * connector's status() (token, scopes, mode, link, channels, last error)
 * and a test send() through POST .../connectors/<id>/notify. Keys a
 * connector's status() adds beyond these are printed as given. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

#define OK_MARK "\xE2\x9C\x93"   /* check mark */
#define FAIL_MARK "\xE2\x9C\x97" /* ballot x */

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static bool flag(const json_t *o, const char *k)
{
	return json_is_true(json_object_get(o, k));
}

/* An instance id or platform name is one path segment. */
static bool name_ok(const char *n)
{
	return n && *n && strlen(n) < 128 &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_.") == strlen(n);
}

/* GET .../connectors/<name>/status; prints the error and returns NULL. */
static json_t *fetch_status(const cli_ctx *ctx, const char *name)
{
	if (!name_ok(name)) {
		fprintf(stderr, "im: '%s' is not an instance id or platform\n",
			name ? name : "");
		return NULL;
	}
	char path[256], err[1024];
	snprintf(path, sizeof(path), "/api/v1/admin/connectors/%s/status",
		 name);
	long status = 0;
	json_t *body = NULL;
	if (cli_admin_call(ctx, "GET", path, NULL, &status, &body, err,
			   sizeof(err)) != 0) {
		fprintf(stderr, "im: %s\n", err);
		return NULL;
	}
	if (status != 200) {
		cli_print_error(cli_current_command, body);
		json_decref(body);
		return NULL;
	}
	return body;
}

static bool healthy(const json_t *st)
{
	const json_t *d = json_object_get(st, "detail");
	if (strcmp(str(st, "state"), "running") || !d)
		return false;
	const json_t *h = json_object_get(d, "healthy");
	return h ? json_is_true(h) : flag(d, "connected");
}

static void join(const json_t *list, char *out, size_t len)
{
	size_t i, off = 0;
	const json_t *v;
	out[0] = '\0';
	json_array_foreach(list, i, v)
	{
		int n = snprintf(out + off, len - off, "%s%s", i ? ", " : "",
				 json_string_value(v));
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
}

static size_t members(const json_t *channels)
{
	size_t i, n = 0;
	const json_t *c;
	json_array_foreach(channels, i, c) n += flag(c, "is_member");
	return n;
}

static void print_token(const json_t *d)
{
	if (!json_object_get(d, "token_valid"))
		return;
	if (flag(d, "token_valid"))
		printf("  %-12s valid: team %s (%s), bot @%s (%s)\n", "token",
		       str(d, "team"), str(d, "team_id"), str(d, "bot_user"),
		       str(d, "bot_user_id"));
	else
		printf("  %-12s INVALID: %s\n", "token", str(d, "token_error"));
	const json_t *miss = json_object_get(d, "missing_scopes");
	char buf[1024];
	if (json_array_size(miss)) {
		join(miss, buf, sizeof(buf));
		printf("  %-12s missing %s\n", "scopes", buf);
		join(json_object_get(d, "scopes"), buf, sizeof(buf));
		printf("  %-12s granted %s\n", "", *buf ? buf : "(none)");
	} else if (json_is_array(miss)) {
		printf("  %-12s all %zu required granted\n", "scopes",
		       json_array_size(json_object_get(d, "required_scopes")));
	}
}

/* Keys printed above; the rest of a platform's status goes out as is. */
static bool known_key(const char *k)
{
	static const char *const keys[] = {
	    "platform", "mode", "token_valid", "team", "team_id", "bot_user",
	    "bot_user_id", "token_error", "scopes", "missing_scopes",
	    "required_scopes", "connected", "connection", "commands",
	    "channels", "channels_error", "last_error", "last_error_at",
	    "problems", "healthy", "api_base_url", "default_channel",
	    "commands_url", "signing_secret_set", "private_channels_listed",
	    "bot_id", "url", "connected_since", "commands_ok",
	    "commands_error", NULL};
	for (const char *const *p = keys; *p; p++)
		if (!strcmp(k, *p))
			return true;
	return false;
}

static void iso_time(json_int_t t, const char *prefix, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[32];
	if (gmtime_r(&tt, &tm) && strftime(buf, sizeof(buf),
					   "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "%s%s", prefix, buf);
}

static void print_status(const json_t *st)
{
	const json_t *d = json_object_get(st, "detail");
	printf("%s (%s): %s\n", str(st, "id"), str(st, "platform"),
	       str(st, "state"));
	if (*str(st, "reason"))
		printf("  %-12s %s\n", "reason", str(st, "reason"));
	if (!d)
		return;
	print_token(d);
	if (*str(d, "mode"))
		printf("  %-12s %s\n", "mode", str(d, "mode"));
	if (*str(d, "api_base_url"))
		printf("  %-12s %s\n", "api", str(d, "api_base_url"));
	char since[64] = "";
	json_int_t t = json_integer_value(json_object_get(d, "connected_since"));
	if (t > 0)
		iso_time(t, " since ", since, sizeof(since));
	printf("  %-12s %s%s%s\n", "connection",
	       *str(d, "connection") ? str(d, "connection")
				     : flag(d, "connected") ? "connected"
							    : "not connected",
	       flag(d, "connected") ? "" : " (down)", since);
	if (*str(d, "commands"))
		printf("  %-12s %s\n", "commands", str(d, "commands"));
	const json_t *ch = json_object_get(d, "channels");
	if (json_is_array(ch))
		printf("  %-12s %zu visible, bot member of %zu\n", "channels",
		       json_array_size(ch), members(ch));
	else if (*str(d, "channels_error"))
		printf("  %-12s cannot list: %s\n", "channels",
		       str(d, "channels_error"));
	if (*str(d, "default_channel"))
		printf("  %-12s %s\n", "default", str(d, "default_channel"));
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)d, k, v)
	{
		if (known_key(k) || json_is_object(v) || json_is_array(v))
			continue;
		char *s = json_is_string(v) ? strdup(json_string_value(v))
					    : json_dumps(v, JSON_ENCODE_ANY);
		printf("  %-12s %s\n", k, s ? s : "?");
		free(s);
	}
	char at[64] = "";
	t = json_integer_value(json_object_get(d, "last_error_at"));
	if (t > 0)
		iso_time(t, " at ", at, sizeof(at));
	printf("  %-12s %s%s\n", "last error",
	       *str(d, "last_error") ? str(d, "last_error") : "none", at);
	size_t i;
	json_array_foreach(json_object_get(d, "problems"), i, v)
	    printf("  problem: %s\n", json_string_value(v));
}

int cli_connector_status(cli_ctx *ctx)
{
	if (strcmp(ctx->argv[1], "status") != 0) {
		fprintf(stderr, "usage: im connector <instance|platform> status "
				"[--json]\n");
		return CLI_USAGE;
	}
	json_t *st = fetch_status(ctx, ctx->argv[0]);
	if (!st)
		return CLI_FAIL;
	bool ok = healthy(st);
	if (ctx->json) {
		cli_print_json(st);
	} else {
		print_status(st);
		printf("%s\n", ok ? "healthy" : "UNHEALTHY");
	}
	json_decref(st);
	return ok ? CLI_OK : CLI_FAIL;
}

/* --- actions ------------------------------------------------------------ */

/* `im connector <name> <action> [--options]`: POST .../actions/<action>
 * with the options as JSON ("dry-run" -> "dry_run"). The connector answers
 * {"ok":bool,"lines":["..."]} (anything else is printed as JSON). */
int cli_connector_action(cli_ctx *ctx)
{
	const char *name = cli_command_word ? cli_command_word : "";
	/* The action is the command's last word ("connector * sync-commands"). */
	const char *sp = cli_current_command ? strrchr(cli_current_command, ' ')
					     : NULL;
	const char *action = sp ? sp + 1 : "";
	if (!name_ok(name) || !name_ok(action)) {
		fprintf(stderr, "im: '%s' is not an instance id or platform\n",
			name);
		return CLI_USAGE;
	}
	json_t *args = json_object();
	static const char *const opts[] = {"guild", "global", "dry-run", NULL};
	for (const char *const *o = opts; *o; o++) {
		const char *v = cli_opt_get(ctx, *o);
		if (!v)
			continue;
		char key[32];
		snprintf(key, sizeof(key), "%s", *o);
		for (char *p = key; *p; p++)
			if (*p == '-')
				*p = '_';
		json_object_set_new(args, key,
				    *v ? json_string(v) : json_true());
	}
	char *body = json_dumps(args, JSON_COMPACT);
	json_decref(args);
	char path[320], err[1024];
	snprintf(path, sizeof(path), "/api/v1/admin/connectors/%s/actions/%s",
		 name, action);
	long status = 0;
	json_t *out = NULL;
	int rc = cli_admin_call(ctx, "POST", path, body, &status, &out, err,
				sizeof(err));
	free(body);
	if (rc != 0) {
		fprintf(stderr, "im: %s\n", err);
		return CLI_FAIL;
	}
	if (status != 200) {
		cli_print_error(cli_current_command, out);
		json_decref(out);
		return CLI_FAIL;
	}
	const json_t *lines = json_object_get(out, "lines");
	const json_t *ok = json_object_get(out, "ok");
	if (ctx->json || !json_is_array(lines)) {
		cli_print_json(out);
	} else {
		size_t i;
		const json_t *l;
		json_array_foreach(lines, i, l)
		    printf("%s\n", json_string_value(l));
	}
	rc = !ok || json_is_true(ok) ? CLI_OK : CLI_FAIL;
	json_decref(out);
	return rc;
}

/* --- list-channels ------------------------------------------------------ */

/* Channel ids the pipeline delivers to for `instance` (NULL if unknown). */
static json_t *subscribed(const cli_ctx *ctx, const char *instance)
{
	long status = 0;
	json_t *body = NULL, *ids = json_object();
	char err[1024];
	if (cli_admin_call(ctx, "GET", "/api/v1/admin/subscriptions", NULL,
			   &status, &body, err, sizeof(err)) != 0 ||
	    status != 200) {
		json_decref(body);
		json_decref(ids);
		return NULL;
	}
	size_t i;
	const json_t *s;
	json_array_foreach(json_object_get(body, "items"), i, s)
	    if (!strcmp(str(s, "connector"), instance))
		json_object_set_new(ids, str(s, "channel"), json_true());
	json_decref(body);
	return ids;
}

int cli_chatops_list_channels(cli_ctx *ctx)
{
	/* "chatops <platform> list-channels": the platform is the 2nd word. */
	const char *platform = cli_command_word ? cli_command_word : "";
	const char *inst = cli_opt_get(ctx, "instance");
	json_t *st = fetch_status(ctx, inst && *inst ? inst : platform);
	if (!st)
		return CLI_FAIL;
	const json_t *d = json_object_get(st, "detail");
	const json_t *ch = json_object_get(d, "channels");
	int rc = CLI_OK;
	if (!json_is_array(ch)) {
		fprintf(stderr, "im: %s (%s): cannot list channels: %s\n",
			str(st, "id"), str(st, "state"),
			*str(d, "channels_error") ? str(d, "channels_error")
			: *str(st, "reason")	  ? str(st, "reason")
			: *str(d, "token_error")  ? str(d, "token_error")
						  : "the connector did not say");
		json_decref(st);
		return CLI_FAIL;
	}
	json_t *subs = subscribed(ctx, str(st, "id"));
	json_t *out = json_array();
	size_t i;
	const json_t *c;
	json_array_foreach(ch, i, c)
	{
		bool sub = subs ? json_object_get(subs, str(c, "id")) != NULL
				: flag(c, "configured");
		json_t *o = json_pack("{s:s,s:s,s:b,s:b,s:b}", "id", str(c, "id"),
				      "name", str(c, "name"), "private",
				      flag(c, "private"), "bot_member",
				      flag(c, "is_member"), "subscribed", sub);
		/* Platforms whose channels belong to groups name the group. */
		if (o && *str(c, "team_name"))
			json_object_set_new(o, "team", json_string(str(c, "team_name")));
		json_array_append_new(out, o);
	}
	if (ctx->json) {
		cli_print_json(out);
	} else {
		int w = 14;
		json_array_foreach(out, i, c) if ((int)strlen(str(c, "id")) > w)
		    w = (int)strlen(str(c, "id"));
		printf("%-*s %-28s %-8s %-11s %s\n", w, "ID", "NAME", "PRIVATE",
		       "BOT MEMBER", "SUBSCRIBED");
		json_array_foreach(out, i, c)
		{
			char name[300];
			snprintf(name, sizeof(name), "%s%s#%s", str(c, "team"),
				 *str(c, "team") ? " " : "", str(c, "name"));
			printf("%-*s %-28s %-8s %-11s %s\n", w, str(c, "id"),
			       name, flag(c, "private") ? "yes" : "no",
			       flag(c, "bot_member") ? "yes" : "no",
			       flag(c, "subscribed") ? "yes" : "no");
		}
		printf("%zu channels (%s)%s\n", json_array_size(out),
		       str(st, "id"),
		       flag(d, "private_channels_listed") || !json_object_get(
								 d, "private_channels_listed")
			   ? ""
			   : "; private channels need groups:read");
	}
	json_decref(out);
	json_decref(subs);
	json_decref(st);
	return rc;
}

/* --- test ---------------------------------------------------------------- */

typedef struct checks {
	json_t *list; /* [{"check","ok","detail"}] */
	bool failed;
} checks;

static void check(checks *c, bool ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void check(checks *c, bool ok, const char *name, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(c->list, json_pack("{s:s,s:b,s:s}", "check",
						 name, "ok", ok, "detail", buf));
	c->failed |= !ok;
}

static const json_t *channel(const json_t *d, const char *id)
{
	size_t i;
	const json_t *c;
	json_array_foreach(json_object_get(d, "channels"), i, c)
	    if (!strcmp(str(c, "id"), id)) return c;
	return NULL;
}

static void check_default_channel(checks *c, const json_t *d)
{
	const char *def = str(d, "default_channel");
	const json_t *ch = *def ? channel(d, def) : NULL;
	if (!*def)
		check(c, !json_object_get(d, "channels"),
		      "default channel accessible",
		      "no default_channel set: set it to a channel id");
	else if (!ch)
		check(c, false, "default channel accessible",
		      "%s not found: use the channel id (C0123ABC), not its "
		      "name; private channels need the bot invited",
		      def);
	else if (!flag(ch, "is_member"))
		check(c, false, "default channel accessible",
		      "the bot is not in #%s (%s): invite the bot with "
		      "/invite @%s",
		      str(ch, "name"), def, str(d, "bot_user"));
	else
		check(c, true, "default channel accessible", "#%s (%s)",
		      str(ch, "name"), def);
}

/* Where the platform must send commands: the config's server.public_url, else
 * the address the CLI reaches the server at. */
static void public_url(const cli_ctx *ctx, char *out, size_t len)
{
	im_config *cfg = cli_load_config(ctx, true);
	const char *u = cfg ? im_config_string(cfg, "server.public_url", "")
			    : "";
	if (u && *u)
		snprintf(out, len, "%s", u);
	else
		cli_base_url(ctx, out, len);
	im_config_free(cfg);
	size_t n = strlen(out);
	while (n && out[n - 1] == '/')
		out[--n] = '\0';
}

static void check_commands(checks *c, const cli_ctx *ctx, const json_t *d)
{
	if (!d || !*str(d, "mode"))
		return;
	char url[512];
	/* A connector that judges its own command set-up says so in
	 * commands_ok, with commands_error when not. */
	const json_t *ok = json_object_get(d, "commands_ok");
	if (ok) {
		public_url(ctx, url, sizeof(url));
		check(c, json_is_true(ok), "commands configured", "%s%s%s",
		      *str(d, "commands_error") ? str(d, "commands_error")
						: "endpoint ",
		      *str(d, "commands_error") ? "" : url,
		      *str(d, "commands_error") ? "" : str(d, "commands_url"));
		return;
	}
	bool scope = true, up = flag(d, "connected");
	size_t i;
	const json_t *m;
	json_array_foreach(json_object_get(d, "missing_scopes"), i, m)
	    scope &= strcmp(json_string_value(m), "commands") != 0;
	const char *no_scope = "the app lacks the commands scope: add it and "
			       "reinstall the app";
	if (!strcmp(str(d, "mode"), "socket")) {
		check(c, scope && up, "slash commands configured", "%s",
		      !scope ? no_scope
		      : up   ? "served over Socket Mode"
			     : "Socket Mode is not connected");
	} else {
		bool secret = flag(d, "signing_secret_set");
		public_url(ctx, url, sizeof(url));
		check(c, scope && secret, "slash commands configured",
		      "%s%s%s", !scope	 ? no_scope
				: !secret ? "no signing_secret set"
					  : "Request URL ",
		      scope && secret ? url : "",
		      scope && secret ? str(d, "commands_url") : "");
	}
}

int cli_chatops_test(cli_ctx *ctx)
{
	json_t *st = fetch_status(ctx, ctx->argv[0]);
	if (!st)
		return CLI_FAIL;
	const json_t *d = json_object_get(st, "detail");
	checks c = {.list = json_array()};
	if (strcmp(str(st, "state"), "running"))
		check(&c, false, "running", "%s: %s", str(st, "state"),
		      str(st, "reason"));
	check(&c, flag(d, "connected"), "connected", "%s%s%s",
	      *str(d, "connection") ? str(d, "connection") : "no link",
	      *str(d, "team") ? ", team " : "", str(d, "team"));
	if (json_object_get(d, "missing_scopes")) {
		char buf[512];
		join(json_object_get(d, "missing_scopes"), buf, sizeof(buf));
		check(&c, !*buf && flag(d, "token_valid"),
		      "permissions verified", "%s%s",
		      !flag(d, "token_valid") ? "token invalid"
		      : *buf		       ? "missing scopes: "
					       : "all required scopes granted",
		      buf);
	} else if (d) {
		check(&c, flag(d, "token_valid") || flag(d, "healthy"),
		      "permissions verified", "%s",
		      *str(d, "token_error") ? str(d, "token_error") : "ok");
	}
	if (json_object_get(d, "default_channel") ||
	    json_object_get(d, "channels"))
		check_default_channel(&c, d);
	check_commands(&c, ctx, d);
	if (ctx->json) {
		json_t *o = json_pack("{s:s,s:b,s:O}", "instance", str(st, "id"),
				      "ok", !c.failed, "checks", c.list);
		cli_print_json(o);
		json_decref(o);
	} else {
		size_t i;
		const json_t *k;
		printf("%s (%s)\n", str(st, "id"), str(st, "platform"));
		json_array_foreach(c.list, i, k)
		    printf("  %s %s: %s\n", flag(k, "ok") ? OK_MARK : FAIL_MARK,
			   str(k, "check"), str(k, "detail"));
		printf("%s\n", c.failed ? "FAILED" : "all checks passed");
	}
	json_decref(c.list);
	json_decref(st);
	return c.failed ? CLI_FAIL : CLI_OK;
}

/* --- notify ------------------------------------------------------------- */

int cli_chatops_notify(cli_ctx *ctx)
{
	const char *inst = ctx->argv[0], *inc = ctx->argv[1];
	if (!name_ok(inst)) {
		fprintf(stderr, "im: '%s' is not an instance id\n", inst);
		return CLI_USAGE;
	}
	const char *ch = cli_opt_get(ctx, "channel");
	json_t *req = json_pack("{s:s,s:s?}", "incident", inc, "channel",
				ch && *ch ? ch : NULL);
	char *body = json_dumps(req, JSON_COMPACT), path[256], err[1024];
	json_decref(req);
	snprintf(path, sizeof(path), "/api/v1/admin/connectors/%s/notify",
		 inst);
	long status = 0;
	json_t *out = NULL;
	int rc = cli_admin_call(ctx, "POST", path, body, &status, &out, err,
				sizeof(err));
	free(body);
	if (rc != 0) {
		fprintf(stderr, "im: %s\n", err);
		return CLI_FAIL;
	}
	bool ok = status == 200 && flag(out, "ok");
	if (ctx->json)
		cli_print_json(out);
	else if (ok)
		printf("sent %s to %s (message %s)\n", inc, inst,
		       str(out, "message_id"));
	else if (json_object_get(out, "verdict"))
		fprintf(stderr, "im: %s to %s failed (%s): %s: %s\n", inc, inst,
			str(out, "verdict"), str(out, "error"), str(out, "hint"));
	else
		cli_print_error("chatops notify", out);
	json_decref(out);
	return ok ? CLI_OK : CLI_FAIL;
}
