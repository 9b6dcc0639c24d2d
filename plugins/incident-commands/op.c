/* Calls into the host's incident repository and the replies every verb
 * shares: errors relayed with their reason, usage hints. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ic.h"

const char ic_sev_help[] = "use SEV-1 (critical), SEV-2 (major), SEV-3 "
			   "(minor) or SEV-4 (informational)";

static int vsay(ic_call *c, int visibility, const char *fmt, va_list ap)
{
	char *text = NULL;
	if (vasprintf(&text, fmt, ap) < 0)
		return IM_ENOMEM;
	const im_host *h = c->self->host;
	int rc = h->reply_text(c->reply, text);
	if (rc == 0)
		rc = h->reply_visibility(c->reply, visibility);
	free(text);
	return rc;
}

int ic_say(ic_call *c, int rc, int visibility, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int src = vsay(c, visibility, fmt, ap);
	va_end(ap);
	return rc != 0 ? rc : src;
}

int ic_usage(ic_call *c, const char *fmt, ...)
{
	char *what = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&what, fmt, ap);
	va_end(ap);
	if (n < 0)
		return IM_ENOMEM;
	ic_say(c, 0, IM_REPLY_EPHEMERAL, "%s\nUsage: `%s %s`", what,
	       ic_cmd(c), c->verb->usage);
	free(what);
	return IM_EINVAL;
}

const char *ic_cmd(const ic_call *c)
{
	const char *cmd = c->inv->command;
	return cmd && *cmd ? cmd : "/incident";
}

const char *ic_who(const ic_call *c)
{
	const im_invocation *inv = c->inv;
	if (inv->user_name && *inv->user_name)
		return inv->user_name;
	return inv->user_id && *inv->user_id ? inv->user_id : "someone";
}

int ic_sev_parse(const char *s)
{
	static const char *const labels[] = {"critical", "major", "minor",
					     "informational"};
	if (!s)
		return 0;
	const char *p = s;
	if (strncasecmp(p, "sev", 3) == 0) {
		p += 3;
		if (*p == '-' || *p == '_')
			p++;
	}
	if (p[0] >= '1' && p[0] <= '4' && p[1] == '\0')
		return p[0] - '0';
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, labels[i]) == 0)
			return i + 1;
	return 0;
}

static int relay(ic_call *c, int rc, const json_t *out, const char *what)
{
	const json_t *e = json_object_get(out, "error");
	const char *msg = ic_str(e, "message");
	const char *code = ic_str(e, "code");
	json_int_t status = json_integer_value(json_object_get(e, "status"));
	if (status >= 500 || !msg)
		IM_WARN(c->self->host, c->self->inst,
			"incident operation for %s failed (%d): %s", what, rc,
			msg ? msg : "no reason given");
	if (!msg)
		return ic_say(c, rc ? rc : IM_EIO, IM_REPLY_EPHEMERAL,
			      "Could not %s: the server did not say why (%d). "
			      "Try again, or ask an admin to check the log.",
			      what, rc);
	bool missing = code && strcmp(code, "not_found") == 0;
	return ic_say(c, rc ? rc : IM_EIO, IM_REPLY_EPHEMERAL,
		      "Could not %s: %s%s%s%s", what, msg,
		      missing ? "\n`" : "", missing ? ic_cmd(c) : "",
		      missing ? " list` shows the open incidents." : "");
}

static bool ok_answer(int rc, const json_t *ans)
{
	return rc == 0 && json_is_object(ans) && !json_object_get(ans, "error");
}

/* args with the invoking user as the actor; false (args released, user
 * told) when out of memory. */
static bool with_actor(ic_call *c, json_t *args, const char *what)
{
	const im_invocation *inv = c->inv;
	json_t *actor = args ? json_pack("{s:s?,s:s?,s:s?}", "id",
					 inv->user_id, "name", inv->user_name,
					 "via", inv->platform)
			     : NULL;
	if (!actor || json_object_set_new(args, "actor", actor) != 0) {
		json_decref(args);
		ic_say(c, IM_ENOMEM, IM_REPLY_EPHEMERAL,
		       "Could not %s: out of memory.", what);
		return false;
	}
	return true;
}

int ic_op(ic_call *c, const char *op, json_t *args, const char *what,
	  json_t **out)
{
	*out = NULL;
	if (!with_actor(c, args, what))
		return IM_ENOMEM;
	json_t *ans = NULL;
	int rc = c->self->host->incident_op(c->self->inst, op, args, &ans);
	json_decref(args);
	if (ok_answer(rc, ans)) {
		*out = ans;
		return 0;
	}
	rc = relay(c, rc, ans, what);
	json_decref(ans);
	return rc;
}

/* --- writes answered once durable (incident_op_then) -------------------- */

/* What the reply needs once the write is done: the invocation is gone by
 * then, so the parts replies use are copied. */
typedef struct later {
	const ic *self;
	const im_command_verb *verb;
	ic_done_fn done;
	const void *ctx;
	char *text;
	char *strings[5]; /* platform, channel, user id, user name, command */
	char what[96];
} later;

static void later_free(later *l)
{
	for (size_t i = 0; i < 5; i++)
		free(l->strings[i]);
	free(l->text);
	free(l);
}

static later *later_new(ic_call *c, const char *what, ic_done_fn done,
			const void *ctx, const char *text)
{
	later *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	const im_invocation *inv = c->inv;
	const char *from[5] = {inv->platform, inv->channel, inv->user_id,
			       inv->user_name, inv->command};
	bool ok = true;
	for (size_t i = 0; i < 5; i++)
		if (from[i] && !(l->strings[i] = strdup(from[i])))
			ok = false;
	if (text && !(l->text = strdup(text)))
		ok = false;
	if (!ok) {
		later_free(l);
		return NULL;
	}
	l->self = c->self;
	l->verb = c->verb;
	l->done = done;
	l->ctx = ctx;
	snprintf(l->what, sizeof(l->what), "%s", what);
	return l;
}

static int later_then(void *ud, im_reply *reply, int rc, const json_t *out)
{
	later *l = ud;
	im_invocation inv = {.struct_size = sizeof(inv),
			     .platform = l->strings[0],
			     .channel = l->strings[1],
			     .user_id = l->strings[2],
			     .user_name = l->strings[3],
			     .command = l->strings[4]};
	ic_call c = {.self = l->self, .verb = l->verb, .inv = &inv,
		     .reply = reply};
	int r = !reply		      ? rc
		: ok_answer(rc, out) ? l->done(&c, out, l->ctx, l->text)
				      : relay(&c, rc, out, l->what);
	later_free(l);
	return r;
}

int ic_op_then(ic_call *c, const char *op, json_t *args, const char *what,
	       ic_done_fn done, const void *ctx, const char *text)
{
	const im_host *h = c->self->host;
	if (!IM_HOST_HAS(h, incident_op_then)) {
		json_t *out = NULL;
		int rc = ic_op(c, op, args, what, &out);
		if (rc == 0)
			rc = done(c, out, ctx, text);
		json_decref(out);
		return rc;
	}
	if (!with_actor(c, args, what))
		return IM_ENOMEM;
	later *l = later_new(c, what, done, ctx, text);
	if (!l) {
		json_decref(args);
		return ic_say(c, IM_ENOMEM, IM_REPLY_EPHEMERAL,
			      "Could not %s: out of memory.", what);
	}
	int rc = h->incident_op_then(c->self->inst, op, args, c->reply,
				     later_then, l);
	json_decref(args);
	return rc;
}
