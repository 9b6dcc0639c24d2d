/* `im chatops subscriptions list|add|remove`, `im chatops configure` and
 * `im chatops outbox list|retry`: thin clients of the running server's
 * admin API (core/notify/admin.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

/* Calls the admin API; on success *out holds the answer (caller frees).
 * Prints why and returns CLI_FAIL otherwise. */
static int call(const cli_ctx *ctx, const char *method, const char *path,
		const json_t *body, long want, json_t **out)
{
	char err[1024], *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	long status = 0;
	*out = NULL;
	int rc = cli_admin_call(ctx, method, path, text, &status, out, err,
				sizeof(err));
	free(text);
	if (rc != 0) {
		fprintf(stderr, "im: %s\n", err);
		return CLI_FAIL;
	}
	if (status != want) {
		cli_print_error(cli_current_command, *out);
		json_decref(*out);
		*out = NULL;
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* "a,b" -> ["a","b"] */
static json_t *list_opt(const char *v)
{
	json_t *a = json_array();
	char *copy = strdup(v ? v : ""), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		if (*t)
			json_array_append_new(a, json_string(t));
	}
	free(copy);
	return a;
}

static void join(const json_t *arr, char *buf, size_t len, const char *none)
{
	size_t i, off = 0;
	const json_t *v;
	buf[0] = '\0';
	json_array_foreach(arr, i, v)
	{
		int n = snprintf(buf + off, len - off, "%s%s", i ? "," : "",
				 json_string_value(v));
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (!*buf)
		snprintf(buf, len, "%s", none);
}

/* ["SEV-1","SEV-2","SEV-3"] -> "SEV-1..3"; other sets as a list. */
static void severities(const json_t *arr, char *buf, size_t len)
{
	size_t n = json_array_size(arr);
	const char *last = json_string_value(json_array_get(arr, n - 1));
	bool from_one =
	    n && last && strlen(last) == 5 && (size_t)(last[4] - '0') == n &&
	    !strcmp(json_string_value(json_array_get(arr, 0)), "SEV-1");
	if (from_one && n > 1)
		snprintf(buf, len, "SEV-1..%c", last[4]);
	else
		join(arr, buf, len, "-");
}

int cli_chatops_subs_list(cli_ctx *ctx)
{
	json_t *ans;
	if (call(ctx, "GET", "/api/v1/admin/subscriptions", NULL, 200, &ans))
		return CLI_FAIL;
	const json_t *items = json_object_get(ans, "items");
	if (ctx->json) {
		cli_print_json(ans);
		json_decref(ans);
		return CLI_OK;
	}
	printf("%-5s %-8s %-14s %-14s %-22s %-12s %-6s %s\n", "ID", "SOURCE",
	       "CONNECTOR", "CHANNEL", "EVENTS", "SEVERITIES", "MODE",
	       "SERVICES");
	size_t i;
	const json_t *s;
	json_array_foreach(items, i, s)
	{
		char id[24], ev[128], sev[64], svc[128];
		const json_t *jid = json_object_get(s, "id");
		snprintf(id, sizeof(id), "%s", "-");
		if (json_is_integer(jid))
			snprintf(id, sizeof(id), "%lld",
				 (long long)json_integer_value(jid));
		join(json_object_get(s, "events"), ev, sizeof(ev), "-");
		severities(json_object_get(s, "severities"), sev, sizeof(sev));
		join(json_object_get(s, "services"), svc, sizeof(svc), "all");
		printf("%-5s %-8s %-14s %-14s %-22s %-12s %-6s %s%s\n", id,
		       str(s, "source"), str(s, "connector"), str(s, "channel"),
		       ev, sev, str(s, "mode"), svc,
		       json_is_true(json_object_get(s, "active"))
			   ? ""
			   : " (inactive)");
	}
	json_array_foreach(items, i, s)
	{
		if (json_object_get(s, "problem"))
			printf("  %s%s%s %s: %s\n",
			       json_object_get(s, "where") ? str(s, "where")
							   : "",
			       json_object_get(s, "where") ? ": " : "",
			       str(s, "connector"), str(s, "channel"),
			       str(s, "problem"));
	}
	json_decref(ans);
	return CLI_OK;
}

int cli_chatops_subs_add(cli_ctx *ctx)
{
	const char *conn = cli_opt_get(ctx, "connector");
	const char *ch = cli_opt_get(ctx, "channel");
	if (!conn || !ch || !*conn || !*ch) {
		fprintf(stderr,
			"usage: im chatops subscriptions add --connector "
			"ID --channel CHANNEL_ID [--events GLOB,...] "
			"[--min-severity SEV-n] [--services S,...] "
			"[--mode update|thread|post]\n");
		return CLI_USAGE;
	}
	json_t *body = json_pack("{s:s,s:s}", "connector", conn, "channel", ch);
	const char *v;
	if ((v = cli_opt_get(ctx, "events")))
		json_object_set_new(body, "events", list_opt(v));
	if ((v = cli_opt_get(ctx, "services")))
		json_object_set_new(body, "services", list_opt(v));
	if ((v = cli_opt_get(ctx, "min-severity")))
		json_object_set_new(body, "min_severity", json_string(v));
	if ((v = cli_opt_get(ctx, "mode")))
		json_object_set_new(body, "mode", json_string(v));
	json_t *ans;
	int rc =
	    call(ctx, "POST", "/api/v1/admin/subscriptions", body, 201, &ans);
	json_decref(body);
	if (rc)
		return rc;
	if (ctx->json)
		cli_print_json(ans);
	else
		printf(
		    "subscription %lld added: %s %s\n",
		    (long long)json_integer_value(json_object_get(ans, "id")),
		    conn, ch);
	json_decref(ans);
	return CLI_OK;
}

static int parse_id(const char *s, long long *id)
{
	char *end;
	*id = strtoll(s, &end, 10);
	if (end == s || *end || *id <= 0) {
		fprintf(stderr, "im: '%s' is not an id (see the list)\n", s);
		return CLI_USAGE;
	}
	return CLI_OK;
}

int cli_chatops_subs_remove(cli_ctx *ctx)
{
	long long id;
	if (parse_id(ctx->argv[0], &id))
		return CLI_USAGE;
	char path[96];
	snprintf(path, sizeof(path), "/api/v1/admin/subscriptions/%lld", id);
	json_t *ans;
	if (call(ctx, "DELETE", path, NULL, 200, &ans))
		return CLI_FAIL;
	if (ctx->json)
		cli_print_json(ans);
	else
		printf("subscription %lld removed\n", id);
	json_decref(ans);
	return CLI_OK;
}

int cli_chatops_configure(cli_ctx *ctx)
{
	const char *w = cli_opt_get(ctx, "batch-window");
	json_t *ans, *body = w ? json_pack("{s:s}", "batch_window", w) : NULL;
	int rc = call(ctx, w ? "PUT" : "GET", "/api/v1/admin/chatops", body,
		      200, &ans);
	json_decref(body);
	if (rc)
		return rc;
	if (ctx->json) {
		cli_print_json(ans);
	} else {
		char crit[64];
		join(json_object_get(ans, "critical_severities"), crit,
		     sizeof(crit), "none");
		printf("batch window:        %gs (%s)\n"
		       "critical severities: %s\n"
		       "delivery workers:    %lld\n",
		       json_number_value(json_object_get(ans, "batch_window")),
		       !strcmp(str(ans, "batch_window_source"), "runtime")
			   ? "set by im chatops configure; --batch-window "
			     "default goes back to the config"
			   : "from the config",
		       crit,
		       (long long)json_integer_value(
			   json_object_get(ans, "delivery_workers")));
	}
	json_decref(ans);
	return CLI_OK;
}

int cli_chatops_outbox_list(cli_ctx *ctx)
{
	const char *limit = cli_opt_get(ctx, "limit");
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/admin/outbox?dead=%d&limit=%d",
		 cli_opt_get(ctx, "dead") ? 1 : 0, limit ? atoi(limit) : 100);
	json_t *ans;
	if (call(ctx, "GET", path, NULL, 200, &ans))
		return CLI_FAIL;
	if (ctx->json) {
		cli_print_json(ans);
		json_decref(ans);
		return CLI_OK;
	}
	printf("%-7s %-12s %-14s %-22s %-8s %-8s %-7s %s\n", "ID", "INSTANCE",
	       "CHANNEL", "EVENT", "INCIDENT", "ATTEMPTS", "STATE", "ERROR");
	size_t i;
	const json_t *r;
	json_array_foreach(json_object_get(ans, "items"), i, r)
	{
		printf("%-7lld %-12s %-14s %-22s %-8s %-8lld %-7s %s\n",
		       (long long)json_integer_value(json_object_get(r, "id")),
		       str(r, "instance"), str(r, "channel"), str(r, "event"),
		       str(r, "incident"),
		       (long long)json_integer_value(
			   json_object_get(r, "attempts")),
		       str(r, "state"), str(r, "error"));
		if (json_is_string(json_object_get(r, "hint")))
			printf("        hint: %s\n", str(r, "hint"));
	}
	const json_t *c = json_object_get(ans, "counts");
	long long pending = 0;
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)json_object_get(c, "pending"), k, v)
	{
		pending += json_integer_value(v);
	}
	printf("%lld pending, %lld dead letters\n", pending,
	       (long long)json_integer_value(json_object_get(c, "dead")));
	json_decref(ans);
	return CLI_OK;
}

int cli_chatops_outbox_retry(cli_ctx *ctx)
{
	long long id;
	if (parse_id(ctx->argv[0], &id))
		return CLI_USAGE;
	char path[96];
	snprintf(path, sizeof(path), "/api/v1/admin/outbox/%lld/retry", id);
	json_t *ans;
	if (call(ctx, "POST", path, NULL, 200, &ans))
		return CLI_FAIL;
	if (ctx->json)
		cli_print_json(ans);
	else
		printf("outbox row %lld queued again\n", id);
	json_decref(ans);
	return CLI_OK;
}
