/* The verbs that change an incident's severity and commander. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ic.h"

static const char *const sev_names[] = {"SEV-?", "SEV-1 (critical)",
					"SEV-2 (major)", "SEV-3 (minor)",
					"SEV-4 (informational)"};

static const char *sev_long(int sev)
{
	return sev >= 1 && sev <= 4 ? sev_names[sev] : sev_names[0];
}

/* The channel hears of a new severity (text: "SEV-n", ctx: the verb's
 * past tense). */
static int sev_set(ic_call *c, const json_t *out, const void *ctx,
		   const char *name)
{
	char link[512];
	int sev = ic_sev_parse(name);
	const json_t *inc = json_object_get(out, "incident");
	const json_t *ev = json_object_get(out, "event");
	const json_t *change =
	    json_object_get(json_object_get(ev, "data"), "change");
	if (!json_is_object(ev))
		return ic_say(c, 0, IM_REPLY_EPHEMERAL,
			      "%s is already %s; nothing changed.",
			      ic_text(inc, "id"), sev_long(sev));
	return ic_say(c, 0, IM_REPLY_IN_CHANNEL,
		      "**%s: %s** %s to %s by %s (was %s).",
		      ic_link(inc, link, sizeof(link)), ic_text(inc, "title"),
		      (const char *)ctx, sev_long(sev), ic_who(c),
		      ic_text(change, "from"));
}

/* Sets the severity of `id` to `sev` and tells the channel. */
static int set_sev(ic_call *c, const char *id, int sev, const char *verb)
{
	char what[64], name[8];
	snprintf(name, sizeof(name), "SEV-%d", sev);
	snprintf(what, sizeof(what), "change the severity of %s", id);
	return ic_op_then(c, "patch",
			  json_pack("{s:s,s:{s:s}}", "id", id, "fields",
				    "severity", name),
			  what, sev_set, verb, name);
}

int ic_sev(ic_call *c)
{
	char id[32];
	size_t next;
	int rc = ic_target(c, 1, id, sizeof(id), &next);
	if (rc != 0)
		return rc;
	if (next >= c->args.n)
		return ic_usage(c, "Which severity? %s.", ic_sev_help);
	if (next + 1 < c->args.n)
		return ic_usage(c, "`sev` takes one severity, not `%s`.",
				c->args.v[next + 1]);
	int sev = ic_sev_parse(c->args.v[next]);
	if (!sev)
		return ic_usage(c, "`%s` is not a severity; %s.",
				c->args.v[next], ic_sev_help);
	return set_sev(c, id, sev, "set");
}

int ic_raise(ic_call *c)
{
	char id[32];
	json_t *out = NULL;
	int rc = ic_lookup_only(c, "raise", id, sizeof(id), &out);
	if (rc != 0)
		return rc;
	int sev = ic_sev_parse(
	    ic_str(json_object_get(out, "incident"), "severity"));
	json_decref(out);
	if (sev == 1)
		return ic_say(c, 0, IM_REPLY_EPHEMERAL,
			      "%s is already SEV-1 (critical), the highest "
			      "severity; nothing changed.",
			      id);
	if (sev < 1)
		return ic_say(c, IM_EIO, IM_REPLY_EPHEMERAL,
			      "%s has no severity I know; set one with `%s "
			      "sev %s SEV-n`.",
			      id, ic_cmd(c), id);
	return set_sev(c, id, sev - 1, "raised");
}

/* "@U123", "<@U123>", "<@U123|ada>", "<@!123>" -> "@U123"; a plain name
 * stays as typed. Returns NULL (and answers) when it is no person. */
static char *commander(ic_call *c, const char *who)
{
	size_t n = strlen(who);
	if (who[0] == '<' && n > 2 && who[n - 1] == '>') {
		const char *p = who + 1;
		if (*p != '@' || p[1] == '&' || p[1] == '>') {
			ic_usage(c, "`%s` is a channel or a group, not a "
				    "person; mention one person.",
				 who);
			return NULL;
		}
		p += p[1] == '!' ? 2 : 1;
		size_t len = strcspn(p, "|>");
		char *out = malloc(len + 2);
		if (out)
			snprintf(out, len + 2, "@%.*s", (int)len, p);
		return out;
	}
	if (strchr(who, '@') != strrchr(who, '@')) {
		ic_usage(c, "One commander at a time: `%s` names several.",
			 who);
		return NULL;
	}
	return strdup(who);
}

static int assigned(ic_call *c, const json_t *out, const void *ctx,
		    const char *who)
{
	char link[512];
	const json_t *inc = json_object_get(out, "incident");
	if (!json_is_object(json_object_get(out, "event")))
		return ic_say(c, 0, IM_REPLY_EPHEMERAL,
			      "%s already leads %s; nothing changed.", who,
			      ic_text(inc, "id"));
	return ic_say(c, 0, IM_REPLY_IN_CHANNEL,
		      "**%s: %s** is now led by %s (assigned by %s).",
		      ic_link(inc, link, sizeof(link)), ic_text(inc, "title"),
		      who, ic_who(c));
}

int ic_assign(ic_call *c)
{
	char id[32], what[64];
	size_t next;
	int rc = ic_target(c, 1, id, sizeof(id), &next);
	if (rc != 0)
		return rc;
	char *typed = ic_args_join(&c->args, next);
	if (!typed)
		return IM_ENOMEM;
	char *who = NULL;
	if (!*typed || strcmp(typed, "@") == 0) {
		rc = ic_usage(c, "Who should lead %s? Mention them, e.g. `%s "
				 "assign %s @ada`.",
			      id, ic_cmd(c), id);
		goto done;
	}
	who = commander(c, typed);
	if (!who) {
		rc = IM_EINVAL;
		goto done;
	}
	snprintf(what, sizeof(what), "assign %s", id);
	rc = ic_op_then(c, "patch",
			json_pack("{s:s,s:{s:s}}", "id", id, "fields",
				  "commander", who),
			what, assigned, NULL, who);
done:
	free(typed);
	free(who);
	return rc;
}
