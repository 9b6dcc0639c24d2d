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

int ic_op(ic_call *c, const char *op, json_t *args, const char *what,
	  json_t **out)
{
	const im_invocation *inv = c->inv;
	*out = NULL;
	if (!args)
		return ic_say(c, IM_ENOMEM, IM_REPLY_EPHEMERAL,
			      "Could not %s: out of memory.", what);
	json_t *actor = json_pack("{s:s?,s:s?,s:s?}", "id", inv->user_id,
				  "name", inv->user_name, "via",
				  inv->platform);
	if (!actor || json_object_set_new(args, "actor", actor) != 0) {
		json_decref(args);
		return ic_say(c, IM_ENOMEM, IM_REPLY_EPHEMERAL,
			      "Could not %s: out of memory.", what);
	}
	json_t *ans = NULL;
	int rc = c->self->host->incident_op(c->self->inst, op, args, &ans);
	json_decref(args);
	if (rc == 0 && json_is_object(ans) && !json_object_get(ans, "error")) {
		*out = ans;
		return 0;
	}
	rc = relay(c, rc, ans, what);
	json_decref(ans);
	return rc;
}
