/* Incidents as chat replies: a linked id, the fields a responder scans
 * first, and the buttons that make sense in the incident's state. */
#include <stdio.h>
#include <string.h>

#include "ic.h"

const char *ic_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

const char *ic_text(const json_t *o, const char *key)
{
	const char *s = ic_str(o, key);
	return s ? s : "?";
}

const char *ic_link(const json_t *inc, char *buf, size_t len)
{
	const char *id = ic_str(inc, "id");
	const char *url = ic_str(inc, "url");
	if (url && *url)
		snprintf(buf, len, "[%s](%s)", id ? id : "?", url);
	else
		snprintf(buf, len, "%s", id ? id : "?");
	return buf;
}

static bool status_is(const json_t *inc, const char *const *states)
{
	const char *st = ic_str(inc, "status");
	for (; st && *states; states++)
		if (strcmp(st, *states) == 0)
			return true;
	return false;
}

static int fields(ic_call *c, const json_t *inc)
{
	const im_host *h = c->self->host;
	const char *sev = ic_str(inc, "severity");
	const char *label = ic_str(inc, "severity_label");
	const char *service = ic_str(inc, "service");
	const char *commander = ic_str(inc, "commander");
	char sevtext[64];
	snprintf(sevtext, sizeof(sevtext), "%s%s%s%s", sev ? sev : "?",
		 label ? " (" : "", label ? label : "", label ? ")" : "");
	const char *st = ic_str(inc, "status");
	int rc = h->reply_field(c->reply, "Status", st ? st : "?", 1);
	if (rc == 0)
		rc = h->reply_field(c->reply, "Severity", sevtext, 1);
	if (rc == 0)
		rc = h->reply_field(c->reply, "Service",
				    service && *service ? service : "—", 1);
	if (rc == 0)
		rc = h->reply_field(c->reply, "Commander",
				    commander && *commander ? commander
							    : "unassigned",
				    1);
	return rc;
}

int ic_card(ic_call *c, const json_t *inc)
{
	static const char *const ackable[] = {"open", NULL};
	static const char *const active[] = {"open", "acknowledged",
					     "mitigated", NULL};
	const im_host *h = c->self->host;
	const char *id = ic_str(inc, "id");
	int rc = fields(c, inc);
	if (rc == 0 && status_is(inc, ackable))
		rc = h->reply_action(c->reply, "im_ack", "Acknowledge", id,
				     "primary");
	if (rc == 0 && status_is(inc, active))
		rc = h->reply_action(c->reply, "im_resolve", "Resolve", id,
				     NULL);
	if (rc == 0 && status_is(inc, active) &&
	    ic_sev_parse(ic_str(inc, "severity")) > 1)
		rc = h->reply_action(c->reply, "im_sev_up", "Raise severity",
				     id, "danger");
	return rc;
}
