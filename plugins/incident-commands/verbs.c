/* The verbs that declare, move and show incidents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ic.h"

typedef struct opts {
	const char *sev;     /* as typed; borrowed from the arguments */
	const char *service;
	char *words;         /* the other arguments joined by spaces */
} opts;

static bool opt_is(const char *arg, const char *name, const char **inline_v)
{
	size_t n = strlen(name);
	if (strncmp(arg, name, n) != 0 || (arg[n] && arg[n] != '='))
		return false;
	*inline_v = arg[n] == '=' ? arg + n + 1 : NULL;
	return true;
}

/* Takes --sev/--severity and --service (also as --sev=X) out of the
 * arguments from `from` on; "--" ends the options. */
static int parse_opts(ic_call *c, size_t from, opts *o)
{
	size_t cap = 1;
	for (size_t i = from; i < c->args.n; i++)
		cap += strlen(c->args.v[i]) + 1;
	*o = (opts){.words = calloc(1, cap)};
	if (!o->words)
		return IM_ENOMEM;
	bool options = true;
	for (size_t i = from; i < c->args.n; i++) {
		const char *a = c->args.v[i], *v = NULL, **slot = NULL;
		if (options && strcmp(a, "--") == 0) {
			options = false;
			continue;
		}
		if (options && (opt_is(a, "--sev", &v) ||
				opt_is(a, "--severity", &v)))
			slot = &o->sev;
		else if (options && opt_is(a, "--service", &v))
			slot = &o->service;
		else if (options && strncmp(a, "--", 2) == 0 && a[2])
			return ic_usage(c, "Unknown option `%s`; the options "
					   "are --sev and --service (put -- "
					   "before a title that starts with "
					   "--).",
					a);
		if (slot && !v && i + 1 >= c->args.n)
			return ic_usage(c, "`%s` needs a value.", a);
		if (slot) {
			*slot = v ? v : c->args.v[++i];
			continue;
		}
		if (*o->words)
			strcat(o->words, " ");
		strcat(o->words, a);
	}
	return 0;
}

/* Checks a typed severity; *name gets "SEV-n". */
static int check_sev(ic_call *c, const char *typed, const char **name)
{
	static const char *const names[] = {"SEV-1", "SEV-2", "SEV-3",
					    "SEV-4"};
	int sev = ic_sev_parse(typed);
	if (!sev)
		return ic_usage(c, "`%s` is not a severity; %s.", typed,
				ic_sev_help);
	*name = names[sev - 1];
	return 0;
}

static bool blank(const char *s)
{
	return !s || s[strspn(s, " \t\r\n")] == '\0';
}

int ic_declare(ic_call *c)
{
	opts o;
	const char *sev = NULL;
	json_t *out = NULL;
	int rc = parse_opts(c, 0, &o);
	if (rc == 0 && blank(o.words))
		rc = ic_usage(c, "Give the incident a title, e.g. `%s declare "
				 "\"Checkout API returns 500\" --sev SEV-2`.",
			      ic_cmd(c));
	if (rc == 0 && o.sev)
		rc = check_sev(c, o.sev, &sev);
	if (rc == 0 && o.service && blank(o.service))
		rc = ic_usage(c, "`--service` needs a service name.");
	if (rc != 0)
		goto done;
	json_t *fields = json_pack("{s:s,s:s*,s:s*}", "title", o.words,
				   "severity", sev, "service", o.service);
	rc = ic_op(c, "declare", json_pack("{s:o}", "fields", fields),
		   "declare the incident", &out);
	if (rc != 0)
		goto done;
	const json_t *inc = json_object_get(out, "incident");
	const char *id = ic_str(inc, "id");
	char link[512];
	bool bound = id && ic_bind(c, id);
	rc = ic_say(c, 0, IM_REPLY_IN_CHANNEL,
		    "**%s: %s** declared by %s.%s%s%s", ic_link(inc, link,
								sizeof(link)),
		    ic_text(inc, "title"), ic_who(c),
		    bound ? "\nThis channel now follows " : "",
		    bound ? id : "",
		    bound ? ": commands here need no incident id." : "");
	if (rc == 0)
		rc = ic_card(c, inc);
done:
	free(o.words);
	json_decref(out);
	return rc;
}

typedef struct transition {
	const char *verb; /* ours */
	const char *op;   /* the repository's */
	const char *done; /* past tense */
	bool note;        /* takes a note */
	bool ends;        /* the incident is over: its channel is free again */
} transition;

static const transition transitions[] = {
    {"ack", "acknowledge", "acknowledged", false, false},
    {"mitigate", "mitigate", "mitigated", false, false},
    {"resolve", "resolve", "resolved", true, false},
    {"close", "close", "closed", false, true},
    {"cancel", "cancel", "canceled", false, true},
};

static int say_transition(ic_call *c, const json_t *out, const transition *t,
			  const char *note, const char *unbound)
{
	const json_t *inc = json_object_get(out, "incident");
	char link[512];
	return ic_say(c, 0, IM_REPLY_IN_CHANNEL, "**%s: %s** %s by %s%s%s%s%s%s",
		      ic_link(inc, link, sizeof(link)), ic_text(inc, "title"),
		      t->done, ic_who(c), *note ? ": " : ".", note,
		      unbound ? "\nThis channel no longer follows " : "",
		      unbound ? unbound : "", unbound ? "." : "");
}

static int transitioned(ic_call *c, const json_t *out, const void *ctx,
			const char *note)
{
	return say_transition(c, out, ctx, note ? note : "", NULL);
}

int ic_transition(ic_call *c)
{
	const transition *t = NULL;
	for (size_t i = 0; i < sizeof(transitions) / sizeof(*transitions); i++)
		if (strcmp(transitions[i].verb, c->verb->name) == 0)
			t = &transitions[i];
	if (!t)
		return ic_usage(c, "`%s` is not a transition.", c->verb->name);
	char id[32], what[64];
	size_t next;
	int rc = ic_target(c, 0, id, sizeof(id), &next);
	if (rc != 0)
		return rc;
	if (!t->note && next < c->args.n)
		return ic_usage(c, "`%s` takes only an incident id, not `%s`; "
				   "add notes with `%s update`.",
				t->verb, c->args.v[next], ic_cmd(c));
	char *note = ic_args_join(&c->args, next);
	if (!note)
		return IM_ENOMEM;
	snprintf(what, sizeof(what), "%s %s", t->verb, id);
	json_t *args = json_pack("{s:s,s:s,s:s*}", "id", id, "verb", t->op,
				 "note", *note ? note : NULL);
	/* Freeing the channel of an incident that is over needs the
	 * write's outcome here; the others answer once the write is
	 * durable, without waiting for it. */
	json_t *out = NULL;
	if (!t->ends)
		rc = ic_op_then(c, "transition", args, what, transitioned, t,
				note);
	else if ((rc = ic_op(c, "transition", args, what, &out)) == 0)
		rc = say_transition(c, out, t, note,
				    ic_unbind(c, id) ? id : NULL);
	free(note);
	json_decref(out);
	return rc;
}

static int noted(ic_call *c, const json_t *out, const void *ctx,
		 const char *text)
{
	char link[512];
	return ic_say(c, 0, IM_REPLY_IN_CHANNEL, "**%s** update from %s: %s",
		      ic_link(json_object_get(out, "incident"), link,
			      sizeof(link)),
		      ic_who(c), text);
}

int ic_update(ic_call *c)
{
	char id[32], what[64];
	size_t next;
	int rc = ic_target(c, 1, id, sizeof(id), &next);
	if (rc != 0)
		return rc;
	char *text = ic_args_join(&c->args, next);
	if (!text)
		return IM_ENOMEM;
	if (blank(text)) {
		rc = ic_usage(c, "What is the update? Add the text, e.g. `%s "
				 "update %s rolled back to v41`.",
			      ic_cmd(c), id);
		goto done;
	}
	snprintf(what, sizeof(what), "add the update to %s", id);
	rc = ic_op_then(c, "note",
			json_pack("{s:s,s:s}", "id", id, "text", text), what,
			noted, NULL, text);
done:
	free(text);
	return rc;
}

int ic_lookup_only(ic_call *c, const char *verb, char *id, size_t idlen,
		   json_t **out)
{
	char what[64];
	size_t next;
	*out = NULL;
	int rc = ic_target(c, 0, id, idlen, &next);
	if (rc != 0)
		return rc;
	if (next < c->args.n)
		return ic_usage(c, "`%s` takes only an incident id, not `%s`.",
				verb, c->args.v[next]);
	snprintf(what, sizeof(what), "look up %s", id);
	return ic_op(c, "get", json_pack("{s:s}", "id", id), what, out);
}

int ic_status(ic_call *c)
{
	char id[32];
	json_t *out = NULL;
	int rc = ic_lookup_only(c, "status", id, sizeof(id), &out);
	if (rc != 0)
		return rc;
	const json_t *inc = json_object_get(out, "incident");
	const char *desc = ic_str(inc, "description");
	char link[512];
	rc = ic_say(c, 0, IM_REPLY_EPHEMERAL,
		    "**%s: %s**%s%s\nDeclared %s, last change %s.",
		    ic_link(inc, link, sizeof(link)), ic_text(inc, "title"),
		    desc && *desc ? "\n" : "", desc ? desc : "",
		    ic_text(inc, "created_at"), ic_text(inc, "updated_at"));
	if (rc == 0)
		rc = ic_card(c, inc);
	json_decref(out);
	return rc;
}

#define LIST_LIMIT 20

static int list_reply(ic_call *c, const json_t *ans, const opts *o)
{
	const json_t *items = json_object_get(ans, "items");
	size_t n = json_array_size(items), i;
	const json_t *inc;
	char *text = NULL, *prev, link[512];
	bool filtered = o->sev || o->service;
	if (n == 0)
		return ic_say(c, 0, IM_REPLY_EPHEMERAL, "No open incidents%s.",
			      filtered ? " match" : "");
	if (asprintf(&text, "**Open incidents%s** (%s%zu):",
		     filtered ? " that match" : "",
		     json_is_string(json_object_get(ans, "next_cursor"))
			 ? "newest "
			 : "",
		     n) < 0)
		return IM_ENOMEM;
	json_array_foreach(items, i, inc)
	{
		const char *svc = ic_str(inc, "service");
		const char *cmdr = ic_str(inc, "commander");
		prev = text;
		if (asprintf(&text, "%s\n• **%s** %s · %s · %s%s%s%s%s", prev,
			     ic_link(inc, link, sizeof(link)),
			     ic_text(inc, "severity"), ic_text(inc, "status"),
			     ic_text(inc, "title"), svc ? " · " : "",
			     svc ? svc : "", cmdr ? " · commander " : "",
			     cmdr ? cmdr : "") < 0) {
			free(prev);
			return IM_ENOMEM;
		}
		free(prev);
	}
	int rc = ic_say(c, 0, IM_REPLY_EPHEMERAL, "%s", text);
	free(text);
	return rc;
}

int ic_list(ic_call *c)
{
	opts o;
	const char *sev = NULL;
	json_t *out = NULL;
	int rc = parse_opts(c, 0, &o);
	if (rc == 0 && *o.words)
		rc = ic_usage(c, "`list` shows the open incidents; it takes no "
				 "`%s`.",
			      o.words);
	if (rc == 0 && o.sev)
		rc = check_sev(c, o.sev, &sev);
	if (rc == 0)
		rc = ic_op(c, "list",
			   json_pack("{s:s,s:i,s:s*,s:s*}", "status",
				     "open,acknowledged,mitigated", "limit",
				     LIST_LIMIT, "severity", sev, "service",
				     o.service),
			   "list the incidents", &out);
	if (rc == 0)
		rc = list_reply(c, out, &o);
	free(o.words);
	json_decref(out);
	return rc;
}
