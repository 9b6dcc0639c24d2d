/* `im declare` and `im incident ...`: thin clients of /api/v1/incidents.
 * Validation the server does anyway is only repeated here where a usage
 * error (exit 2) should be caught before anything is sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "incident/incident.h"

#define PATH_MAX_LEN 2048

static const char *error_text(const json_t *body)
{
	const json_t *e = json_object_get(body, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	return msg ? msg : json_string_value(e);
}

/* Calls the API. On success *out holds the answer (caller frees). On any
 * failure the reason is already printed (`im: ...`, and the server's JSON
 * on stdout with --json) and CLI_FAIL returned. `body` is borrowed. */
static int api(const cli_ctx *ctx, const char *method, const char *path,
	       const json_t *body, json_t **out)
{
	char err[1024];
	long status = 0;
	json_t *ans = NULL;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	const char *idem = cli_opt_get(ctx, "idempotency-key");
	int rc = cli_api_call(ctx, method, path, text, idem, &status, &ans,
			      err, sizeof(err));
	free(text);
	*out = NULL;
	if (rc != 0) {
		fprintf(stderr, "im: %s\n", err);
		return CLI_FAIL;
	}
	if (status >= 200 && status < 300) {
		*out = ans;
		return CLI_OK;
	}
	if (ctx->json && ans)
		cli_print_json(ans);
	const char *msg = error_text(ans);
	if (msg)
		fprintf(stderr, "im: %s\n", msg);
	else
		fprintf(stderr, "im: the server answered HTTP %ld\n", status);
	json_decref(ans);
	return CLI_FAIL;
}

/* "/api/v1/incidents/<id>[/<what>]", the id URL-encoded. */
static void inc_path(const char *id, const char *what, char *out, size_t len)
{
	char enc[256];
	cli_url_encode(id, NULL, enc, sizeof(enc));
	snprintf(out, len, "/api/v1/incidents/%s%s%s", enc, what ? "/" : "",
		 what ? what : "");
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* --- declare --------------------------------------------------------- */

static bool is_blank(const char *s)
{
	return !s || !*s || strspn(s, " \t\r\n") == strlen(s);
}

static int usage_sev(const char *given)
{
	fprintf(stderr,
		"im: unknown severity '%s'; use SEV-1 (critical), SEV-2 "
		"(major), SEV-3 (minor) or SEV-4 (informational)\n",
		given);
	return CLI_USAGE;
}

/* The title from --title or the one positional argument, not both. */
static int declare_title(const cli_ctx *ctx, const char **title)
{
	const char *opt = cli_opt_get(ctx, "title");
	const char *pos = ctx->argc ? ctx->argv[0] : NULL;
	if (opt && pos) {
		fprintf(stderr, "im: give the title once, either --title or "
				"as the argument\n");
		return CLI_USAGE;
	}
	*title = opt ? opt : pos;
	if (is_blank(*title)) {
		fprintf(stderr,
			"im: declare needs a title: im declare --sev SEV-2 "
			"--title \"checkout is down\"\n");
		return CLI_USAGE;
	}
	return CLI_OK;
}

static void set_opt(json_t *o, const cli_ctx *ctx, const char *opt,
		    const char *key)
{
	const char *v = cli_opt_get(ctx, opt);
	if (v)
		json_object_set_new(o, key, json_string(v));
}

static void print_declared(const cli_ctx *ctx, const json_t *inc)
{
	const char *id = str(inc, "id");
	const char *url = str(inc, "url");
	char fallback[1024], base[768];
	if (!url) {
		/* No server.public_url: point at the API resource. */
		cli_base_url(ctx, base, sizeof(base));
		snprintf(fallback, sizeof(fallback), "%s/api/v1/incidents/%s",
			 base, id ? id : "");
		url = fallback;
	}
	printf("%s declared: %s\n", id ? id : "?", url);
}

int cli_declare(cli_ctx *ctx)
{
	const char *title;
	int rc = declare_title(ctx, &title);
	if (rc != CLI_OK)
		return rc;
	const char *sev = cli_opt_get(ctx, "sev");
	if (!sev)
		sev = cli_opt_get(ctx, "severity");
	int n = sev ? im_inc_sev_parse(sev) : 0;
	if (sev && n == 0)
		return usage_sev(sev);
	json_t *body = json_pack("{s:s}", "title", title);
	if (!body)
		return CLI_FAIL;
	if (sev)
		json_object_set_new(body, "severity",
				    json_string(im_inc_sev_name(n)));
	set_opt(body, ctx, "service", "service");
	set_opt(body, ctx, "description", "description");
	set_opt(body, ctx, "commander", "commander");
	json_t *ans;
	rc = api(ctx, "POST", "/api/v1/incidents", body, &ans);
	json_decref(body);
	if (rc != CLI_OK)
		return rc;
	if (ctx->json)
		cli_print_json(ans);
	else
		print_declared(ctx, json_object_get(ans, "incident"));
	json_decref(ans);
	return CLI_OK;
}

/* --- list ------------------------------------------------------------ */

static bool parse_time(const char *iso, time_t *t)
{
	struct tm tm = {0};
	if (!iso || !strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm))
		return false;
	*t = timegm(&tm);
	return true;
}

/* "42s", "5m", "2h", "3d". */
static void age_text(const char *iso, char *buf, size_t len)
{
	time_t t;
	if (!parse_time(iso, &t)) {
		snprintf(buf, len, "?");
		return;
	}
	double d = difftime(time(NULL), t);
	long s = d > 0 ? (long)d : 0;
	if (s < 60)
		snprintf(buf, len, "%lds", s);
	else if (s < 3600)
		snprintf(buf, len, "%ldm", s / 60);
	else if (s < 86400)
		snprintf(buf, len, "%ldh", s / 3600);
	else
		snprintf(buf, len, "%ldd", s / 86400);
}

/* Display width of UTF-8 text, one column per code point. */
static int width_of(const char *s)
{
	int w = 0;
	for (; s && *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* Bytes taken by the first `n` code points of `s`. */
static size_t prefix_bytes(const char *s, int n)
{
	const unsigned char *p = (const void *)s;
	for (; *p; p++)
		if ((*p & 0xc0) != 0x80 && n-- == 0)
			break;
	return (size_t)(p - (const unsigned char *)s);
}

/* Control characters (a newline in a title) would break the table. */
static void put_clean(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		putchar((unsigned char)s[i] < 0x20 ? ' ' : s[i]);
}

/* Prints `s` in exactly `w` columns: padded, or cut with "...". */
static void cell(const char *s, int w, bool last)
{
	s = s ? s : "-";
	int sw = width_of(s);
	bool cut = sw > w;
	int keep = !cut ? sw : w > 3 ? w - 3 : w;
	put_clean(s, prefix_bytes(s, keep));
	if (cut && w > 3)
		fputs("...", stdout);
	if (!last)
		printf("%*s", (cut ? 0 : w - sw) + 2, "");
}

static int term_width(void)
{
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_col >= 40)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	int n = c ? atoi(c) : 0;
	return n >= 40 ? n : 120;
}

enum { C_ID, C_SEV, C_STATUS, C_AGE, C_SERVICE, C_CMDR, C_TITLE, N_COLS };

static const char *const heads[N_COLS] = {"ID",      "SEV",       "STATUS",
					  "AGE",     "SERVICE",   "COMMANDER",
					  "TITLE"};

static void row_cells(const json_t *inc, const char *c[N_COLS], char *age,
		      size_t agelen)
{
	age_text(str(inc, "created_at"), age, agelen);
	c[C_ID] = str(inc, "id");
	c[C_SEV] = str(inc, "severity");
	c[C_STATUS] = str(inc, "status");
	c[C_AGE] = age;
	c[C_SERVICE] = str(inc, "service");
	c[C_CMDR] = str(inc, "commander");
	c[C_TITLE] = str(inc, "title");
}

/* Column widths from the data; service and commander are capped and the
 * title gets what the terminal has left. */
static void col_widths(const json_t *items, int w[N_COLS])
{
	static const int cap[N_COLS] = {12, 5, 12, 4, 20, 16, 0};
	for (int k = 0; k < N_COLS; k++)
		w[k] = width_of(heads[k]);
	size_t i;
	const json_t *inc;
	json_array_foreach(items, i, inc)
	{
		const char *c[N_COLS];
		char age[24];
		row_cells(inc, c, age, sizeof(age));
		for (int k = 0; k < C_TITLE; k++) {
			int cw = width_of(c[k] ? c[k] : "-");
			if (cw > w[k])
				w[k] = cw < cap[k] ? cw : cap[k];
		}
	}
	int used = 0;
	for (int k = 0; k < C_TITLE; k++)
		used += w[k] + 2;
	w[C_TITLE] = term_width() - used;
	if (w[C_TITLE] < 10)
		w[C_TITLE] = 10;
}

static void print_table(const json_t *items)
{
	int w[N_COLS];
	col_widths(items, w);
	for (int k = 0; k < N_COLS; k++)
		cell(heads[k], w[k], k == N_COLS - 1);
	putchar('\n');
	size_t i;
	const json_t *inc;
	json_array_foreach(items, i, inc)
	{
		const char *c[N_COLS];
		char age[24];
		row_cells(inc, c, age, sizeof(age));
		for (int k = 0; k < N_COLS; k++)
			cell(c[k], w[k], k == N_COLS - 1);
		putchar('\n');
	}
}

static void add_query(char *q, size_t len, const char *name, const char *val)
{
	if (!val)
		return;
	char enc[512];
	size_t n = strlen(q);
	cli_url_encode(val, NULL, enc, sizeof(enc));
	snprintf(q + n, len - n, "%s%s=%s", strchr(q, '?') ? "&" : "?", name,
		 enc);
}

static void list_path(const cli_ctx *ctx, const char *cursor, char *p,
		      size_t len)
{
	const char *sev = cli_opt_get(ctx, "sev");
	snprintf(p, len, "/api/v1/incidents");
	add_query(p, len, "status", cli_opt_get(ctx, "status"));
	add_query(p, len, "severity", sev ? sev : cli_opt_get(ctx, "severity"));
	add_query(p, len, "service", cli_opt_get(ctx, "service"));
	add_query(p, len, "limit", cli_opt_get(ctx, "limit"));
	add_query(p, len, "cursor", cursor);
}

/* Fetches one page, or with --all every page into one answer. */
static int fetch_list(const cli_ctx *ctx, json_t **out)
{
	char path[PATH_MAX_LEN];
	bool all = cli_opt_get(ctx, "all") != NULL;
	list_path(ctx, cli_opt_get(ctx, "cursor"), path, sizeof(path));
	int rc = api(ctx, "GET", path, NULL, out);
	while (rc == CLI_OK && all) {
		const char *next = str(*out, "next_cursor");
		if (!next)
			break;
		json_t *page;
		list_path(ctx, next, path, sizeof(path));
		rc = api(ctx, "GET", path, NULL, &page);
		if (rc != CLI_OK)
			break;
		json_array_extend(json_object_get(*out, "items"),
				  json_object_get(page, "items"));
		/* A page without a cursor is the last one. */
		json_t *nc = json_object_get(page, "next_cursor");
		json_object_set(*out, "next_cursor", nc ? nc : json_null());
		json_decref(page);
	}
	if (rc != CLI_OK) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

int cli_incident_list(cli_ctx *ctx)
{
	json_t *ans;
	int rc = fetch_list(ctx, &ans);
	if (rc != CLI_OK)
		return rc;
	const json_t *items = json_object_get(ans, "items");
	const char *next = str(ans, "next_cursor");
	if (ctx->json)
		cli_print_json(ans);
	else if (json_array_size(items) == 0)
		printf("no incidents\n");
	else
		print_table(items);
	/* On stderr, so a pipe gets only the table. */
	if (!ctx->json && next)
		fprintf(stderr, "more: repeat with --cursor %s, or use --all\n",
			next);
	json_decref(ans);
	return CLI_OK;
}

/* --- show and timeline ----------------------------------------------- */

/* "INC-7" as given, or "7" -> "INC-7". */
static void norm_id(const char *arg, char *out, size_t len)
{
	bool digits = *arg && strspn(arg, "0123456789") == strlen(arg);
	snprintf(out, len, "%s%s", digits ? "INC-" : "", arg);
}

/* A value of a change: strings bare, null as "none", others as JSON. */
static void put_value(const json_t *v)
{
	if (!v || json_is_null(v)) {
		fputs("none", stdout);
	} else if (json_is_string(v)) {
		fputs(json_string_value(v), stdout);
	} else {
		char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		fputs(t ? t : "?", stdout);
		free(t);
	}
}

static void put_from_to(const json_t *o)
{
	put_value(json_object_get(o, "from"));
	fputs(" -> ", stdout);
	put_value(json_object_get(o, "to"));
}

/* A transition or severity change is {"from","to",..}; an update holds
 * {"title":{"from","to"}}; notes carry "note" or "text". */
static void print_change(const json_t *change)
{
	const char *key;
	const json_t *v;
	if (json_object_get(change, "to")) {
		fputs("  ", stdout);
		put_from_to(change);
	}
	json_object_foreach((json_t *)change, key, v)
	{
		if (!strcmp(key, "from") || !strcmp(key, "to"))
			continue;
		if (!strcmp(key, "note") || !strcmp(key, "text")) {
			printf("  \"%s\"", json_string_value(v) ?
			       json_string_value(v) : "");
			continue;
		}
		printf("  %s: ", key);
		if (json_is_object(v) && json_object_get(v, "to"))
			put_from_to(v);
		else
			put_value(v);
	}
}

/* time  type  actor  changes, one line per event. */
static void print_event(const json_t *ev)
{
	const char *type = str(ev, "type");
	const char *t = str(ev, "time");
	const json_t *data = json_object_get(ev, "data");
	const json_t *actor = json_object_get(data, "actor");
	const char *who = str(actor, "name");
	if (!who)
		who = str(actor, "id");
	if (type && !strncmp(type, "im.incident.", 12))
		type += 12;
	if (t && strlen(t) >= 19)
		printf("  %.10s %.8s", t, t + 11);
	else
		printf("  %-19s", t ? t : "?");
	const json_t *change = json_object_get(data, "change");
	/* Pad the actor only when something follows it on the line. */
	printf(json_object_size(change) ? "  %-11s  %-10s" : "  %-11s  %s",
	       type ? type : "?", who ? who : "-");
	print_change(change);
	putchar('\n');
}

static void print_timeline(const json_t *items)
{
	size_t i;
	const json_t *ev;
	json_array_foreach(items, i, ev)
	    print_event(ev);
}

static void field(const char *name, const char *v)
{
	if (v && *v)
		printf("%-13s %s\n", name, v);
}

static void print_incident(const json_t *inc)
{
	char age[24], sev[48];
	age_text(str(inc, "created_at"), age, sizeof(age));
	snprintf(sev, sizeof(sev), "%s (%s)", str(inc, "severity"),
		 str(inc, "severity_label") ? str(inc, "severity_label") : "");
	printf("%s  %s\n", str(inc, "id"), str(inc, "title"));
	field("Severity:", sev);
	field("Status:", str(inc, "status"));
	field("Service:", str(inc, "service"));
	field("Commander:", str(inc, "commander"));
	field("Duplicate of:", str(inc, "duplicate_of"));
	printf("%-13s %s (%s ago)\n", "Declared:", str(inc, "created_at"), age);
	field("Updated:", str(inc, "updated_at"));
	field("URL:", str(inc, "url"));
	field("Description:", str(inc, "description"));
}

int cli_incident_show(cli_ctx *ctx)
{
	char id[128], path[PATH_MAX_LEN];
	json_t *inc, *tl;
	norm_id(ctx->argv[0], id, sizeof(id));
	inc_path(id, NULL, path, sizeof(path));
	int rc = api(ctx, "GET", path, NULL, &inc);
	if (rc != CLI_OK)
		return rc;
	inc_path(id, "timeline", path, sizeof(path));
	rc = api(ctx, "GET", path, NULL, &tl);
	if (rc != CLI_OK) {
		json_decref(inc);
		return rc;
	}
	if (ctx->json) {
		json_t *both = json_pack("{s:O,s:O}", "incident", inc,
					 "timeline", json_object_get(tl, "items"));
		cli_print_json(both);
		json_decref(both);
	} else {
		print_incident(inc);
		printf("\nTimeline:\n");
		print_timeline(json_object_get(tl, "items"));
	}
	json_decref(inc);
	json_decref(tl);
	return CLI_OK;
}

int cli_incident_timeline(cli_ctx *ctx)
{
	char id[128], path[PATH_MAX_LEN];
	json_t *tl;
	norm_id(ctx->argv[0], id, sizeof(id));
	inc_path(id, "timeline", path, sizeof(path));
	int rc = api(ctx, "GET", path, NULL, &tl);
	if (rc != CLI_OK)
		return rc;
	if (ctx->json)
		cli_print_json(tl);
	else
		print_timeline(json_object_get(tl, "items"));
	json_decref(tl);
	return CLI_OK;
}

/* --- writes ---------------------------------------------------------- */

/* POSTs `body` to /api/v1/incidents/<id>/<what> and reports the result. */
static int post_action(cli_ctx *ctx, const char *arg, const char *what,
		       const json_t *body)
{
	char id[128], path[PATH_MAX_LEN];
	json_t *ans;
	norm_id(arg, id, sizeof(id));
	inc_path(id, what, path, sizeof(path));
	int rc = api(ctx, "POST", path, body, &ans);
	if (rc != CLI_OK)
		return rc;
	const json_t *inc = json_object_get(ans, "incident");
	if (ctx->json)
		cli_print_json(ans);
	else if (!strcmp(what, "note"))
		printf("note added to %s\n", str(inc, "id"));
	else
		printf("%s is now %s\n", str(inc, "id"), str(inc, "status"));
	json_decref(ans);
	return CLI_OK;
}

int cli_incident_transition(cli_ctx *ctx)
{
	/* "incident ack" -> "ack": the table names the verb. */
	const char *verb = strchr(cli_current_command, ' ');
	verb = verb ? verb + 1 : cli_current_command;
	const char *of = cli_opt_get(ctx, "of");
	if (!strcmp(verb, "duplicate") && is_blank(of)) {
		fprintf(stderr, "im: say which incident it duplicates: im "
				"incident duplicate INC-n --of INC-m\n");
		return CLI_USAGE;
	}
	json_t *body = json_object();
	if (!body)
		return CLI_FAIL;
	set_opt(body, ctx, "note", "note");
	if (of && !strcmp(verb, "duplicate")) {
		char ofid[128];
		norm_id(of, ofid, sizeof(ofid));
		json_object_set_new(body, "duplicate_of", json_string(ofid));
	}
	int rc = post_action(ctx, ctx->argv[0], verb, body);
	json_decref(body);
	return rc;
}

int cli_incident_note(cli_ctx *ctx)
{
	size_t len = 1;
	for (int i = 1; i < ctx->argc; i++)
		len += strlen(ctx->argv[i]) + 1;
	char *text = calloc(1, len);
	if (!text)
		return CLI_FAIL;
	for (int i = 1; i < ctx->argc; i++) {
		if (i > 1)
			strcat(text, " ");
		strcat(text, ctx->argv[i]);
	}
	int rc;
	if (is_blank(text)) {
		fprintf(stderr, "usage: im incident note INC-n TEXT...\n");
		rc = CLI_USAGE;
	} else {
		json_t *body = json_pack("{s:s}", "text", text);
		rc = body ? post_action(ctx, ctx->argv[0], "note", body)
			  : CLI_FAIL;
		json_decref(body);
	}
	free(text);
	return rc;
}
