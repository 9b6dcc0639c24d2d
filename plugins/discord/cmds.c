/* The /incident application command, built from what the command plugins
 * serve (host->command_verbs): each verb is a subcommand, its usage line
 * ("declare <title> [--sev SEV-n] [--service S]") gives the options:
 * <x> and bare words are required, [x] optional, [--flag X] an optional
 * named option; INC-n is the incident, SEV-n a choice of severities,
 * @user a user. The same table turns an interaction's options back into
 * the text the verb parses. sync-commands compares the definitions with
 * what Discord has and writes only when something differs, so repeated
 * runs never spend the 200-creates-a-day budget. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discord.h"

#define CATALOG_TTL_S 10.0
#define MAX_SUBCOMMANDS 25

/* A placeholder's option name and kind: INC-n, SEV-n, @user, <text>. */
static void name_of(const char *ph, size_t len, char *name, size_t nlen,
		    const char **kind)
{
	*kind = "string";
	if (len >= 3 && !strncmp(ph, "INC", 3)) {
		snprintf(name, nlen, "incident");
		*kind = "incident";
		return;
	}
	if (len >= 3 && !strncmp(ph, "SEV", 3)) {
		snprintf(name, nlen, "severity");
		*kind = "severity";
		return;
	}
	if (len && *ph == '@') {
		snprintf(name, nlen, "user");
		*kind = "user";
		return;
	}
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < nlen && o < 32; i++) {
		char c = (char)tolower((unsigned char)ph[i]);
		if (isalnum((unsigned char)c) || c == '_' || c == '-')
			name[o++] = c;
	}
	name[o] = '\0';
	if (!o)
		snprintf(name, nlen, "value");
}

static void add_param(json_t *params, const char *word, size_t len,
		      bool required)
{
	char name[40];
	const char *kind;
	bool flag = len > 2 && word[0] == '-' && word[1] == '-';
	if (flag) {
		size_t n = strcspn(word + 2, " ]");
		const char *ph = word + 2 + n;
		while (ph < word + len && *ph == ' ')
			ph++;
		char ignored[40];
		name_of(word + 2, n, name, sizeof(name), &kind);
		name_of(ph, (size_t)(word + len - ph), ignored, sizeof(ignored),
			&kind);
	} else {
		name_of(word, len, name, sizeof(name), &kind);
	}
	json_array_append_new(params,
			      json_pack("{s:s,s:b,s:b,s:s}", "name", name,
					"positional", !flag, "required",
					required && !flag, "kind", kind));
}

/* The options of one usage line, in order. */
static json_t *parse_usage(const char *usage)
{
	json_t *params = json_array();
	const char *p = usage + strcspn(usage, " "); /* skip the verb */
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		char open = *p, close = open == '[' ? ']' : open == '<' ? '>' : 0;
		const char *start = close ? p + 1 : p;
		const char *end = close ? strchr(start, close) : NULL;
		if (close && !end)
			break;
		if (!close)
			end = start + strcspn(start, " ");
		add_param(params, start, (size_t)(end - start), open != '[');
		p = close ? end + 1 : end;
	}
	return params;
}

const json_t *dsc_catalog(dsc *d)
{
	double now = dsc_mono();
	if (d->catalog && now - d->catalog_at < CATALOG_TTL_S)
		return d->catalog;
	json_t *verbs = NULL;
	if (!IM_HOST_HAS(d->host, command_verbs) ||
	    d->host->command_verbs(d->inst, &verbs) != 0)
		return d->catalog;
	json_t *cat = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(verbs, i, v)
	{
		const char *usage = json_string_value(json_object_get(v, "usage"));
		json_array_append_new(
		    cat, json_pack("{s:O,s:O,s:o}", "verb",
				   json_object_get(v, "verb"), "summary",
				   json_object_get(v, "summary"), "params",
				   parse_usage(usage ? usage : "")));
	}
	json_decref(verbs);
	json_decref(d->catalog);
	d->catalog = cat;
	d->catalog_at = now;
	return cat;
}

static json_t *find_verb(const json_t *cat, const char *verb)
{
	size_t i;
	json_t *v;
	json_array_foreach(cat, i, v) if (!strcmp(
	    json_string_value(json_object_get(v, "verb")), verb)) return v;
	return NULL;
}

/* --- definitions ---------------------------------------------------------- */

static json_t *describe(const char *text, const char *fallback)
{
	return dsc_cut(text && *text ? text : fallback, 100);
}

static json_t *option_def(const json_t *p)
{
	const char *name = json_string_value(json_object_get(p, "name"));
	const char *kind = json_string_value(json_object_get(p, "kind"));
	char desc[100];
	if (!strcmp(kind, "incident"))
		snprintf(desc, sizeof(desc), "incident id, e.g. INC-7 (default: "
					     "this channel's incident)");
	else if (!strcmp(kind, "severity"))
		snprintf(desc, sizeof(desc), "severity, SEV-1 (highest) to "
					     "SEV-4");
	else if (!strcmp(kind, "user"))
		snprintf(desc, sizeof(desc), "who");
	else
		snprintf(desc, sizeof(desc), "%s", name);
	json_t *o = json_pack("{s:i,s:s,s:s,s:b}", "type",
			      !strcmp(kind, "user") ? 6 : 3, "name", name,
			      "description", desc, "required",
			      json_is_true(json_object_get(p, "required")));
	if (!strcmp(kind, "severity")) {
		json_t *ch = json_array();
		for (int s = 1; s <= 4; s++) {
			char v[8];
			snprintf(v, sizeof(v), "SEV-%d", s);
			json_array_append_new(ch, json_pack("{s:s,s:s}", "name",
							    v, "value", v));
		}
		json_object_set_new(o, "choices", ch);
	}
	return o;
}

json_t *dsc_command_defs(dsc *d)
{
	pthread_mutex_lock(&d->mu);
	json_t *cat = json_deep_copy(dsc_catalog(d));
	pthread_mutex_unlock(&d->mu);
	json_t *subs = json_array();
	size_t i, j;
	json_t *v, *p;
	json_array_foreach(cat, i, v)
	{
		if (json_array_size(subs) == MAX_SUBCOMMANDS)
			break;
		json_t *opts = json_array();
		/* Discord wants required options before optional ones. */
		for (int pass = 0; pass < 2; pass++)
			json_array_foreach(json_object_get(v, "params"), j, p)
			    if (json_is_true(json_object_get(p, "required")) ==
				(pass == 0)) json_array_append_new(opts,
								   option_def(p));
		const char *verb = json_string_value(json_object_get(v, "verb"));
		json_array_append_new(
		    subs,
		    json_pack("{s:i,s:s,s:o,s:o}", "type", 1, "name", verb,
			      "description",
			      describe(json_string_value(
					   json_object_get(v, "summary")),
				       verb),
			      "options", opts));
	}
	json_decref(cat);
	return json_pack("[{s:s,s:i,s:s,s:o}]", "name", "incident", "type", 1,
			 "description", "Declare and run incidents", "options",
			 subs);
}

/* --- interaction options -> text ----------------------------------------- */

static const json_t *option(const json_t *opts, const char *name)
{
	size_t i;
	json_t *o;
	json_array_foreach(opts, i, o) if (!strcmp(
	    json_string_value(json_object_get(o, "name")), name)) return o;
	return NULL;
}

static void append_value(FILE *f, const json_t *o, const char *kind)
{
	const json_t *v = json_object_get(o, "value");
	if (kind && !strcmp(kind, "user") && json_is_string(v))
		fprintf(f, " <@%s>", json_string_value(v));
	else if (json_is_string(v))
		fprintf(f, " %s", json_string_value(v));
	else if (json_is_integer(v))
		fprintf(f, " %lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		fprintf(f, " %s", json_is_true(v) ? "true" : "false");
}

char *dsc_command_text(dsc *d, const json_t *data)
{
	const json_t *opts = json_object_get(data, "options");
	const json_t *sub = json_array_get(opts, 0);
	if (!sub || json_integer_value(json_object_get(sub, "type")) != 1)
		return strdup("");
	const char *verb = json_string_value(json_object_get(sub, "name"));
	if (!verb)
		return strdup("");
	const json_t *sopts = json_object_get(sub, "options");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fputs(verb, f);
	pthread_mutex_lock(&d->mu);
	const json_t *v = find_verb(dsc_catalog(d), verb);
	size_t i;
	json_t *p, *o;
	if (v) {
		/* Positional values in usage order, then the flags. */
		for (int pass = 0; pass < 2; pass++)
			json_array_foreach(json_object_get(v, "params"), i, p)
			{
				bool pos = json_is_true(
				    json_object_get(p, "positional"));
				const char *name = json_string_value(
				    json_object_get(p, "name"));
				const json_t *given = option(sopts, name);
				if (!given || pos != (pass == 0))
					continue;
				if (!pos)
					fprintf(f, " --%s", name);
				append_value(f, given,
					     json_string_value(
						 json_object_get(p, "kind")));
			}
	} else {
		json_array_foreach(sopts, i, o)
		    append_value(f, o, NULL);
	}
	pthread_mutex_unlock(&d->mu);
	fclose(f);
	return buf;
}

/* --- comparison ------------------------------------------------------------ */

/* What Discord echoes back that we did not send is left out, and its
 * defaults are filled, so equal definitions compare equal. */
static json_t *canon(const json_t *c)
{
	json_t *o = json_object();
	json_object_set(o, "name", json_object_get(c, "name"));
	json_t *t = json_object_get(c, "type");
	json_object_set_new(o, "type",
			    json_integer(t ? json_integer_value(t) : 1));
	json_object_set(o, "description", json_object_get(c, "description"));
	if (json_is_true(json_object_get(c, "required")))
		json_object_set_new(o, "required", json_true());
	json_t *ch = json_object_get(c, "choices");
	if (json_array_size(ch)) {
		json_t *cc = json_array();
		size_t i;
		json_t *x;
		json_array_foreach(ch, i, x) json_array_append_new(
		    cc, json_pack("{s:O,s:O}", "name", json_object_get(x, "name"),
				  "value", json_object_get(x, "value")));
		json_object_set_new(o, "choices", cc);
	}
	json_t *opts = json_object_get(c, "options");
	if (json_array_size(opts)) {
		json_t *oo = json_array();
		size_t i;
		json_t *x;
		json_array_foreach(opts, i, x) json_array_append_new(oo, canon(x));
		json_object_set_new(o, "options", oo);
	}
	return o;
}

static const json_t *named(const json_t *list, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(list, i, c)
	{
		const char *n = json_string_value(json_object_get(c, "name"));
		if (n && !strcmp(n, name))
			return c;
	}
	return NULL;
}

json_t *dsc_commands_diff(const json_t *want, const json_t *have)
{
	json_t *out = json_pack("{s:[],s:[],s:[],s:[]}", "created", "changed",
				"unchanged", "removed");
	size_t i;
	json_t *c;
	json_array_foreach(want, i, c)
	{
		const char *name = json_string_value(json_object_get(c, "name"));
		const json_t *h = named(have, name);
		json_t *a = canon(c), *b = h ? canon(h) : NULL;
		const char *k = !h ? "created" : json_equal(a, b) ? "unchanged"
								   : "changed";
		json_array_append_new(json_object_get(out, k), json_string(name));
		json_decref(a);
		json_decref(b);
	}
	json_array_foreach(have, i, c)
	{
		const char *name = json_string_value(json_object_get(c, "name"));
		if (name && !named(want, name))
			json_array_append_new(json_object_get(out, "removed"),
					      json_string(name));
	}
	return out;
}

/* --- sync-commands ------------------------------------------------------- */

static void scope_path(const dsc *d, const char *scope, char *path,
		       size_t len)
{
	if (!strcmp(scope, "global"))
		snprintf(path, len, "/applications/%s/commands",
			 d->cfg.application_id);
	else
		snprintf(path, len, "/applications/%s/guilds/%s/commands",
			 d->cfg.application_id, scope);
}

static json_t *scopes_of(const dsc *d, const json_t *args)
{
	const char *guild = json_string_value(json_object_get(args, "guild"));
	if (guild && *guild)
		return json_pack("[s]", guild);
	if (json_is_true(json_object_get(args, "global")) ||
	    !json_array_size(d->cfg.guild_ids))
		return json_pack("[s]", "global");
	return json_deep_copy(d->cfg.guild_ids);
}

static void say(json_t *lines, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(json_t *lines, const char *fmt, ...)
{
	char buf[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(lines, json_string(buf));
}

static void say_failure(dsc *d, json_t *lines, const char *where,
			const dsc_res *res)
{
	if (res->status == 403)
		say(lines,
		    "%s: 403 %s (%d): the bot was invited without the "
		    "applications.commands scope; reinvite it with "
		    "https://discord.com/oauth2/authorize?client_id=%s&scope="
		    "bot+applications.commands",
		    where, res->message, res->code, d->cfg.application_id);
	else if (res->status == 401)
		say(lines, "%s: 401: the bot token was rejected; set bot_token "
			   "and reload",
		    where);
	else
		say(lines, "%s: %s%s (HTTP %ld, code %d)", where,
		    res->local ? "not sent: " : "", res->message, res->status,
		    res->code);
}

static const char *label(const char *scope, char *buf, size_t len)
{
	if (!strcmp(scope, "global"))
		snprintf(buf, len, "global");
	else
		snprintf(buf, len, "guild %s", scope);
	return buf;
}

static void list_line(json_t *lines, const char *where, const json_t *diff,
		      const char *k)
{
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(diff, k), i, n)
	    say(lines, "%s: /%s %s", where, json_string_value(n), k);
}

/* GET what Discord has for `scope`: 0 with *have, else res says why. */
static int fetch(dsc *d, const char *scope, json_t **have, dsc_res *res)
{
	char path[256];
	scope_path(d, scope, path, sizeof(path));
	int rc = dsc_call(d->rest, "GET", "commands", scope, path, NULL, true,
			  5, res);
	*have = rc == 0 ? json_incref(res->json) : NULL;
	return rc;
}

int dsc_sync_commands(dsc *d, const json_t *args, json_t **out)
{
	bool dry = json_is_true(json_object_get(args, "dry_run"));
	json_t *scopes = scopes_of(d, args);
	json_t *want = dsc_command_defs(d), *lines = json_array();
	json_t *result = json_object();
	bool ok = true, any_global = false, any_guild = false;
	size_t i;
	json_t *s;
	json_array_foreach(scopes, i, s)
	{
		const char *scope = json_string_value(s);
		char where[64], path[256];
		label(scope, where, sizeof(where));
		dsc_res res;
		json_t *have = NULL;
		if (fetch(d, scope, &have, &res) != 0) {
			say_failure(d, lines, where, &res);
			dsc_res_clear(&res);
			ok = false;
			continue;
		}
		dsc_res_clear(&res);
		json_t *diff = dsc_commands_diff(want, have);
		json_decref(have);
		json_object_set(result, scope, diff);
		bool change = json_array_size(json_object_get(diff, "created")) ||
			      json_array_size(json_object_get(diff, "changed")) ||
			      json_array_size(json_object_get(diff, "removed"));
		list_line(lines, where, diff, "created");
		list_line(lines, where, diff, "changed");
		list_line(lines, where, diff, "unchanged");
		list_line(lines, where, diff, "removed");
		if (!change) {
			say(lines, "%s: nothing to change (no write spent)",
			    where);
		} else if (dry) {
			say(lines, "%s: dry run, nothing written", where);
		} else {
			scope_path(d, scope, path, sizeof(path));
			if (dsc_call(d->rest, "PUT", "commands", scope, path,
				     want, true, 5, &res) != 0) {
				say_failure(d, lines, where, &res);
				ok = false;
			} else {
				say(lines, "%s: registered", where);
				any_global |= !strcmp(scope, "global");
				any_guild |= strcmp(scope, "global") != 0;
			}
			dsc_res_clear(&res);
		}
		json_decref(diff);
	}
	if (any_guild)
		say(lines, "guild commands appear at once");
	if (any_global)
		say(lines, "global commands may take up to an hour to appear "
			   "everywhere");
	json_decref(scopes);
	json_decref(want);
	*out = json_pack("{s:b,s:o,s:o,s:b}", "ok", ok, "lines", lines,
			 "scopes", result, "dry_run", dry);
	return 0;
}

json_t *dsc_commands_state(dsc *d)
{
	json_t *scopes = scopes_of(d, NULL), *want = dsc_command_defs(d);
	json_t *out = json_object();
	size_t i;
	json_t *s;
	json_array_foreach(scopes, i, s)
	{
		const char *scope = json_string_value(s);
		dsc_res res;
		json_t *have = NULL;
		if (fetch(d, scope, &have, &res) == 0) {
			json_object_set_new(out, scope,
					    dsc_commands_diff(want, have));
		} else {
			char why[300];
			snprintf(why, sizeof(why), "%s (HTTP %ld, code %d)",
				 res.message, res.status, res.code);
			json_object_set_new(out, scope,
					    json_pack("{s:s,s:I}", "error", why,
						      "http_status",
						      (json_int_t)res.status));
		}
		json_decref(have);
		dsc_res_clear(&res);
	}
	json_decref(scopes);
	json_decref(want);
	return out;
}
