/*
 * The core schema: which sections and keys the host itself reads, and their
 * types. Plugin `config:` blocks are only checked to be mappings here; their
 * keys belong to the plugin's table (keys.c).
 *
 * To add a key, add a row to the section's table below. A null value is
 * accepted everywhere as "not set" (except for required keys).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf/buf.h"
#include "config/config_private.h"

typedef enum skind {
	SK_STRING,   /* text */
	SK_INT,      /* integer */
	SK_BOOL,     /* true / false */
	SK_SIZE,     /* integer bytes or "1MiB" */
	SK_DURATION, /* seconds or "5s" */
	SK_MAP,      /* any mapping */
	SK_SECTION,  /* mapping with the keys in `keys` */
	SK_LIST,     /* list of `elem` */
} skind;

/* Extra check of a value that has the right type; writes why on failure. */
typedef int (*scheck)(const json_t *v, char *why, size_t whylen);

typedef struct skey skey;
struct skey {
	const char *name;
	skind kind;
	int required;
	skind elem;                  /* SK_LIST: kind of the elements */
	const skey *keys;            /* SK_SECTION, or a list of sections */
	const char *const *choices;  /* strings: the allowed values */
	scheck check;                /* the value, or each list element */
	const char *def;             /* default, as the reference shows it */
	const char *doc;             /* one or two sentences for the reference */
};

static int check_listen(const json_t *v, char *why, size_t whylen);
static int check_listen_opt(const json_t *v, char *why, size_t whylen);
static int check_name(const json_t *v, char *why, size_t whylen);
static int check_nonneg(const json_t *v, char *why, size_t whylen);
static int check_budget(const json_t *v, char *why, size_t whylen);
static int check_stream_memory(const json_t *v, char *why, size_t whylen);

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const formats[] = {"text", "json", NULL};
static const char *const severities[] = {"SEV-1", "SEV-2", "SEV-3", "SEV-4",
					 NULL};
static const char *const modes[] = {"update", "thread", "post", NULL};

static const skey server_keys[] = {
	{.name = "listen", .kind = SK_STRING, .check = check_listen,
	 .def = "127.0.0.1:8080",
	 .doc = "host:port of the REST and admin API, event streams, plugin "
		"hooks (`/hooks/<instance>/...`), incident pages and /health. "
		"Needs a restart."},
	{.name = "metrics_listen", .kind = SK_STRING,
	 .check = check_listen_opt, .def = "127.0.0.1:9090",
	 .doc = "host:port of the Prometheus /metrics (and /health) "
		"listener; empty: none. Needs a restart."},
	{.name = "public_url", .kind = SK_STRING, .def = "(none)",
	 .doc = "Base URL people reach im at; chat messages link to "
		"`<public_url>/incidents/INC-n`. Empty: no links."},
	{.name = "admin_token", .kind = SK_STRING, .def = "(none)",
	 .doc = "Bearer token of the admin API (/api/v1/admin, the CLI's "
		"plugins, config and chatops commands). Empty: loopback "
		"callers only. Secret."},
	{.name = "api_tokens", .kind = SK_LIST, .elem = SK_STRING,
	 .def = "[]",
	 .doc = "Bearer tokens of the incident API, streams and pages (a "
		"browser sends one as the Basic password). None: loopback "
		"callers only. Secret."},
	{.name = "max_body", .kind = SK_SIZE, .def = "1MiB",
	 .doc = "Largest request body; larger ones get 413. Needs a restart."},
	{.name = "request_timeout", .kind = SK_DURATION, .def = "30s",
	 .doc = "A connection idle this long is closed; also the most a "
		"request body, or a kept-alive connection's next request, may "
		"take to arrive. Needs a restart."},
	{.name = "header_timeout", .kind = SK_DURATION, .def = "10s",
	 .doc = "A new connection's request headers must arrive within this "
		"(a client trickling bytes is cut off; request_timeout then "
		"bounds the body). At most 64 unfinished requests per client "
		"address. Needs a restart."},
	{.name = "threads", .kind = SK_INT, .check = check_nonneg,
	 .def = "0",
	 .doc = "HTTP server threads; 0: one per CPU. Needs a restart."},
	{.name = "max_connections", .kind = SK_INT, .check = check_nonneg,
	 .def = "0",
	 .doc = "Connections the API listener holds at most (event stream "
		"clients included); beyond, a new one gets 503 "
		"too_many_connections, counted in "
		"im_http_connections_refused_total. 0: as many as "
		"RLIMIT_NOFILE allows (raised to its hard limit) less 512. "
		"Needs a restart."},
	{.name = "stream_memory", .kind = SK_SIZE, .check = check_stream_memory,
	 .def = "4KiB",
	 .doc = "Memory libmicrohttpd keeps per event-stream connection "
		"(`/api/v1/events`, `/api/v1/ws`); the request line and "
		"headers of a stream request must fit in half of it (larger: "
		"431). Other requests get 64 KiB. From 2KiB to 1MiB. Needs a "
		"restart."},
	{0},
};

static const skey storage_keys[] = {
	{.name = "path", .kind = SK_STRING, .def = "./var/im.db",
	 .doc = "The SQLite database (WAL mode; keep its folder writable "
		"for the -wal and -shm files). Needs a restart."},
	{0},
};

static const skey log_keys[] = {
	{.name = "level", .kind = SK_STRING, .choices = levels,
	 .def = "info", .doc = "Least severe level logged; LOG_LEVEL "
			       "overrides it."},
	{.name = "format", .kind = SK_STRING, .choices = formats,
	 .def = "text", .doc = "One line of text, or one JSON object, per "
			       "log record."},
	{0},
};

static const skey instance_keys[] = {
	{.name = "id", .kind = SK_STRING, .required = 1, .check = check_name,
	 .doc = "Instance name: in URLs (`/hooks/<id>/`), logs, metrics and "
		"subscriptions."},
	{.name = "module", .kind = SK_STRING, .required = 1,
	 .check = check_name,
	 .doc = "Plugin module: `<module>.so` in a plugin folder."},
	{.name = "required", .kind = SK_BOOL, .def = "false",
	 .doc = "true: the server does not start (or reload) without this "
		"instance running; false: it runs without it and says why."},
	{.name = "config", .kind = SK_MAP, .def = "{}",
	 .doc = "The instance's settings: the module's keys, listed under "
		"Plugins below."},
	{0},
};

static const skey plugins_keys[] = {
	{.name = "dirs", .kind = SK_LIST, .elem = SK_STRING, .def = "[]",
	 .doc = "Extra plugin folders (relative to the config folder), "
		"searched after IM_PLUGIN_PATH and before the bundled "
		"plugins' folder."},
	{.name = "instances", .kind = SK_LIST, .elem = SK_SECTION,
	 .keys = instance_keys, .def = "[]",
	 .doc = "Plugin instances to run; instances of one id in several "
		"files are merged."},
	{0},
};

static const skey chatops_keys[] = {
	{.name = "batch_window", .kind = SK_DURATION, .def = "5s",
	 .doc = "Non-critical notifications to one channel within this "
		"window go out as one digest."},
	{.name = "critical_severities", .kind = SK_LIST, .elem = SK_STRING,
	 .choices = severities, .def = "[SEV-1, SEV-2]",
	 .doc = "Severities whose notifications skip the batch window and "
		"go first."},
	{.name = "templates_dir", .kind = SK_STRING, .def = "templates",
	 .doc = "Template overrides, relative to the config folder; a file "
		"`<platform>/<event>.mustache` there wins over the default."},
	/* How long a chat command may run before the first answer says
	 * "still working" (the platform's own limit is 3 s). */
	{.name = "command_budget", .kind = SK_DURATION, .def = "1s",
	 .check = check_budget,
	 .doc = "A chat command answers within this time; a slower one "
		"answers \"working on it\" and follows up with the result."},
	/* verb -> list of user or group ids allowed to run it. */
	{.name = "permissions", .kind = SK_MAP, .def = "{}",
	 .doc = "verb -> list of user or group ids allowed to run it "
		"({resolve: [U123, S456]}); a verb not listed is open to "
		"everyone."},
	/* Notification pipeline (core/notify). */
	{.name = "delivery_workers", .kind = SK_INT, .check = check_nonneg,
	 .def = "32",
	 .doc = "Threads sending notifications (1-256). Needs a restart."},
	{.name = "digest_max", .kind = SK_INT, .check = check_nonneg,
	 .def = "50", .doc = "Most events in one digest (1-1000)."},
	{.name = "max_attempts", .kind = SK_INT, .check = check_nonneg,
	 .def = "50",
	 .doc = "Tries before a notification becomes a dead letter "
		"(`im chatops outbox list --dead`)."},
	/* instance -> {per_channel, burst, global} */
	{.name = "rate_limits", .kind = SK_MAP, .def = "(connector's)",
	 .doc = "connector instance -> {per_channel: msgs/s, burst, global: "
		"msgs/s}; defaults come from the connector, and a platform's "
		"Retry-After always wins."},
	{0},
};

static const skey subscription_keys[] = {
	{.name = "connector", .kind = SK_STRING,
	 .doc = "Connector instance id that posts (required)."},
	{.name = "channel", .kind = SK_STRING,
	 .doc = "Channel id on that platform (such as C0123ABC: ids, not "
		"names) (required)."},
	{.name = "events", .kind = SK_LIST, .elem = SK_STRING,
	 .def = "[im.incident.*]",
	 .doc = "Event type patterns to post (im.incident.declare, "
		"im.incident.*)."},
	{.name = "min_severity", .kind = SK_STRING, .choices = severities,
	 .def = "SEV-4", .doc = "Least severe incidents posted."},
	{.name = "services", .kind = SK_LIST, .elem = SK_STRING, .def = "[]",
	 .doc = "Only incidents of these services; empty: all."},
	{.name = "mode", .kind = SK_STRING, .choices = modes,
	 .def = "update",
	 .doc = "update: edit the incident's message in place; thread: "
		"reply in its thread; post: a new message each time."},
	{0},
};

static const skey top_keys[] = {
	{.name = "server", .kind = SK_SECTION, .keys = server_keys,
	 .doc = "Listeners, tokens and HTTP limits."},
	{.name = "storage", .kind = SK_SECTION, .keys = storage_keys,
	 .doc = "Where incidents, the timeline and the outbox are kept."},
	{.name = "log", .kind = SK_SECTION, .keys = log_keys,
	 .doc = "Logging. CHATOPS_DEBUG=true also logs redacted platform "
		"request bodies."},
	{.name = "plugins", .kind = SK_SECTION, .keys = plugins_keys,
	 .doc = "Plugin folders and the instances to run."},
	{.name = "chatops", .kind = SK_SECTION, .keys = chatops_keys,
	 .doc = "Chat commands, notification delivery and templates."},
	{.name = "subscriptions", .kind = SK_LIST, .elem = SK_SECTION,
	 .keys = subscription_keys,
	 .doc = "Which incident events post to which channel (also managed "
		"with `im chatops subscriptions add` and `remove`)."},
	{0},
};

static int check_listen(const json_t *v, char *why, size_t whylen)
{
	const char *s = json_string_value(v), *colon = strrchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : 0;
	int ok = colon && colon[1] && strlen(colon + 1) <= 5 &&
		 strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
		 atoi(colon + 1) <= 65535;
	if (ok && hl && s[0] == '[')
		ok = s[hl - 1] == ']';
	else if (ok)
		ok = memchr(s, ':', hl) == NULL;
	for (size_t i = 0; ok && i < hl; i++)
		ok = !isspace((unsigned char)s[i]);
	if (!ok)
		imc_err(why, whylen,
			"expected host:port such as 127.0.0.1:8080, got "
			"\"%.80s\"", s);
	return ok ? 0 : IM_ECONFIG;
}

/* An empty metrics_listen turns the metrics listener off. */
static int check_listen_opt(const json_t *v, char *why, size_t whylen)
{
	return *json_string_value(v) ? check_listen(v, why, whylen) : 0;
}

/* Instance ids and module names end up in URLs and file names. */
static int check_name(const json_t *v, char *why, size_t whylen)
{
	const char *s = json_string_value(v);
	size_t n = strlen(s);
	if (n && n <= 64 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789_-") == n)
		return 0;
	imc_err(why, whylen,
		"\"%.80s\" is not a valid name; use 1 to 64 letters, digits, "
		"'_' or '-'", s);
	return IM_ECONFIG;
}

static int check_nonneg(const json_t *v, char *why, size_t whylen)
{
	if (json_integer_value(v) >= 0)
		return 0;
	imc_err(why, whylen, "expected 0 or more, got %" JSON_INTEGER_FORMAT,
		json_integer_value(v));
	return IM_ECONFIG;
}

/* Below 2 KiB no stream request's headers fit (every client would get
 * 431); above 1 MiB, 10,000 clients would want gigabytes. */
static int check_stream_memory(const json_t *v, char *why, size_t whylen)
{
	unsigned long long b = 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		b = (unsigned long long)json_integer_value(v);
	else if (json_is_string(v) &&
		 im_config_parse_size(json_string_value(v), &b) != 0)
		return 0; /* the unit check names it */
	if (b >= 2048 && b <= 1024 * 1024)
		return 0;
	imc_err(why, whylen, "must be from 2KiB to 1MiB, got %llu bytes", b);
	return IM_ECONFIG;
}

/* The first answer must reach the platform within its 3 s: the budget
 * leaves room for the way there. */
static int check_budget(const json_t *v, char *why, size_t whylen)
{
	double s = -1;
	if (json_is_number(v))
		s = json_number_value(v);
	else if (json_is_string(v) &&
		 im_config_parse_duration(json_string_value(v), &s) != 0)
		return 0; /* the unit check names it */
	if (s > 0 && s <= 2.5)
		return 0;
	imc_err(why, whylen,
		"must be more than 0 and at most 2.5s (the platforms give a "
		"command 3 s), got %g s",
		s);
	return IM_ECONFIG;
}

static const char *skey_name_at(const void *table, size_t i)
{
	return ((const skey *)table)[i].name;
}

static const char *choice_at(const void *table, size_t i)
{
	return ((const char *const *)table)[i];
}

static int check_keys(const im_config *cfg, const skey *keys,
		      const json_t *obj, const char *path, char *err,
		      size_t errlen);

typedef struct sctx {
	const im_config *cfg;
	char *err;
	size_t errlen;
} sctx;

/* Whether v has the JSON type `kind` asks for (units checked after). */
static int type_ok(skind kind, const json_t *v)
{
	switch (kind) {
	case SK_STRING:
		return json_is_string(v);
	case SK_INT:
		return json_is_integer(v);
	case SK_BOOL:
		return json_is_boolean(v);
	case SK_SIZE:
		return json_is_integer(v) || json_is_string(v);
	case SK_DURATION:
		return json_is_number(v) || json_is_string(v);
	case SK_LIST:
		return json_is_array(v);
	default:
		return json_is_object(v);
	}
}

static const char *kind_name(skind kind)
{
	static const char *const names[] = {
		[SK_STRING] = "a string", [SK_INT] = "an integer",
		[SK_BOOL] = "true or false",
		[SK_SIZE] = "a size such as 1048576, 512KiB or 1MiB",
		[SK_DURATION] = "a duration such as 250ms, 5s, 2m or 1h",
		[SK_MAP] = "a mapping", [SK_SECTION] = "a mapping",
		[SK_LIST] = "a list"};
	return names[kind];
}

/* Units and choices of a value whose JSON type is right. */
static int check_content(const skey *k, skind kind, const json_t *v,
			 char *why, size_t whylen)
{
	unsigned long long b;
	double d;
	if (kind == SK_SIZE && (json_is_string(v)
				? im_config_parse_size(json_string_value(v), &b)
				: json_integer_value(v) < 0))
		goto bad_unit;
	if (kind == SK_DURATION && (json_is_string(v)
				    ? im_config_parse_duration(
					      json_string_value(v), &d)
				    : json_number_value(v) < 0))
		goto bad_unit;
	if (kind == SK_STRING && k->choices) {
		for (size_t i = 0; k->choices[i]; i++)
			if (!strcmp(k->choices[i], json_string_value(v)))
				goto extra;
		char list[256];
		imc_join_names(list, sizeof list, k->choices, choice_at);
		imc_err(why, whylen, "expected one of %s, got \"%.80s\"", list,
			json_string_value(v));
		return IM_ECONFIG;
	}
extra:
	return k->check ? k->check(v, why, whylen) : 0;
bad_unit:
	if (json_is_string(v))
		imc_err(why, whylen, "expected %s, got \"%.80s\"",
			kind_name(kind), json_string_value(v));
	else
		imc_err(why, whylen, "expected %s, got a negative number",
			kind_name(kind));
	return IM_ECONFIG;
}

static int check_value(const sctx *c, const skey *k, skind kind,
		       const json_t *v, const char *path);

static int check_unique_ids(const sctx *c, const json_t *arr,
			    const char *path)
{
	size_t i, j;
	const json_t *a, *b;
	json_array_foreach(arr, i, a) {
		const char *ia = json_string_value(json_object_get(a, "id"));
		for (j = 0; ia && j < i; j++) {
			b = json_array_get(arr, j);
			const char *ib = json_string_value(json_object_get(b, "id"));
			if (ib && !strcmp(ia, ib))
				return imc_fail(c->cfg, c->err, c->errlen, path,
						"duplicate instance id %s", ia);
		}
	}
	return 0;
}

static int check_list(const sctx *c, const skey *k, const json_t *arr,
		      const char *path)
{
	int inst = !strcmp(path, IMC_INSTANCES);
	size_t i;
	const json_t *e;
	json_array_foreach(arr, i, e) {
		char idx[32], *label = inst ? imc_id_text(json_object_get(e, "id"))
					    : NULL;
		snprintf(idx, sizeof idx, "%zu", i);
		char *ep = imc_path_index(path, label ? label : idx);
		int rc = !ep ? IM_ENOMEM
		       : json_is_null(e)
			   ? imc_fail(c->cfg, c->err, c->errlen, ep,
				      "expected %s, got null",
				      kind_name(k->elem))
			   : check_value(c, k, k->elem, e, ep);
		if (!ep)
			imc_err(c->err, c->errlen, "out of memory");
		free(ep);
		free(label);
		if (rc)
			return rc;
	}
	return inst ? check_unique_ids(c, arr, path) : 0;
}

static int check_value(const sctx *c, const skey *k, skind kind,
		       const json_t *v, const char *path)
{
	char why[512];
	if (json_is_null(v))
		return 0;
	if (!type_ok(kind, v)) {
		int num = json_is_number(v) || json_is_boolean(v);
		return imc_fail(c->cfg, c->err, c->errlen, path,
				"expected %s, got %s%s", kind_name(kind),
				imc_type_name(v),
				kind == SK_STRING && num ? "; put it in quotes"
							 : "");
	}
	if (kind == SK_SECTION)
		return check_keys(c->cfg, k->keys, v, path, c->err, c->errlen);
	if (kind == SK_LIST)
		return check_list(c, k, v, path);
	if (check_content(k, kind, v, why, sizeof why))
		return imc_fail(c->cfg, c->err, c->errlen, path, "%s", why);
	return 0;
}

static const skey *find_skey(const skey *keys, const char *name)
{
	for (; keys->name; keys++)
		if (!strcmp(keys->name, name))
			return keys;
	return NULL;
}

static int check_keys(const im_config *cfg, const skey *keys,
		      const json_t *obj, const char *path, char *err,
		      size_t errlen)
{
	sctx c = {.cfg = cfg, .err = err, .errlen = errlen};
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)obj, name, v) {
		const skey *k = find_skey(keys, name);
		char *kp = imc_path_key(path, name), known[512];
		int rc;
		if (!kp) {
			imc_err(err, errlen, "out of memory");
			return IM_ENOMEM;
		}
		if (k) {
			rc = check_value(&c, k, k->kind, v, kp);
		} else {
			imc_join_names(known, sizeof known, keys, skey_name_at);
			rc = imc_fail(cfg, err, errlen, kp,
				      "unknown key; known keys: %s", known);
		}
		free(kp);
		if (rc)
			return rc;
	}
	for (; keys->name; keys++) {
		const json_t *kv = json_object_get(obj, keys->name);
		if (keys->required && (!kv || json_is_null(kv)))
			return imc_fail(cfg, err, errlen, path,
					"missing required key %s", keys->name);
	}
	return 0;
}

int im_config_check_core(const im_config *cfg, char *err, size_t errlen)
{
	if (!cfg) {
		imc_err(err, errlen, "no configuration");
		return IM_EINVAL;
	}
	return check_keys(cfg, top_keys, cfg->root, "", err, errlen);
}

/* --- the reference (im config reference) ------------------------------ */

static const char *short_kind(const skey *k)
{
	static const char *const names[] = {
	    [SK_STRING] = "string", [SK_INT] = "integer", [SK_BOOL] = "bool",
	    [SK_SIZE] = "size",     [SK_DURATION] = "duration",
	    [SK_MAP] = "mapping",   [SK_SECTION] = "mapping",
	    [SK_LIST] = "list"};
	if (k->kind == SK_LIST && k->elem == SK_SECTION)
		return "list of mappings";
	if (k->kind == SK_LIST)
		return "list of strings";
	return names[k->kind];
}

void im_config_md_row(im_buf *b, const char *const *cells, size_t n)
{
	im_buf_puts(b, "|");
	for (size_t i = 0; i < n; i++) {
		im_buf_puts(b, " ");
		/* Pipes escaped and newlines folded, so any text stays in
		 * its cell; < and > outside `code` shown, not taken as HTML. */
		bool code = false;
		for (const char *s = cells[i]; s && *s; s++) {
			if (*s == '`')
				code = !code;
			if (*s == '|')
				im_buf_puts(b, "\\|");
			else if (*s == '<' && !code)
				im_buf_puts(b, "&lt;");
			else if (*s == '>' && !code)
				im_buf_puts(b, "&gt;");
			else
				im_buf_putc(b, *s == '\n' ? ' ' : *s);
		}
		im_buf_puts(b, " |");
	}
	im_buf_puts(b, "\n");
}

static void md_keys(im_buf *b, const char *prefix, const skey *keys)
{
	im_buf_puts(b, "| key | type | default | description |\n"
		       "|---|---|---|---|\n");
	for (const skey *k = keys; k->name; k++) {
		im_buf doc = IM_BUF_INIT, name = IM_BUF_INIT;
		im_buf_puts(&doc, k->doc ? k->doc : "");
		if (k->choices) {
			im_buf_puts(&doc, " One of:");
			for (const char *const *c = k->choices; *c; c++)
				im_buf_printf(&doc, " `%s`", *c);
			im_buf_puts(&doc, ".");
		}
		im_buf_printf(&name, "`%s%s`", prefix, k->name);
		const char *cells[] = {
		    im_buf_str(&name), short_kind(k),
		    k->required ? "required" : k->def ? k->def : "",
		    im_buf_str(&doc)};
		im_config_md_row(b, cells, 4);
		im_buf_free(&doc);
		im_buf_free(&name);
	}
}

void im_config_reference_core(im_buf *b)
{
	for (const skey *s = top_keys; s->name; s++) {
		im_buf_printf(b, "### `%s`\n\n%s\n\n", s->name,
			      s->doc ? s->doc : "");
		char prefix[64] = "";
		if (s->kind == SK_LIST)
			im_buf_printf(b, "A list; each entry has:\n\n");
		else
			snprintf(prefix, sizeof(prefix), "%s.", s->name);
		md_keys(b, prefix, s->keys);
		for (const skey *k = s->keys; k->name; k++)
			if (k->kind == SK_LIST && k->elem == SK_SECTION) {
				im_buf_printf(b, "\nEach entry of `%s.%s`:\n\n",
					      s->name, k->name);
				md_keys(b, "", k->keys);
			}
		im_buf_puts(b, "\n");
	}
}
