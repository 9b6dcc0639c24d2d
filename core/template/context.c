/* The context a template sees, built from incident CloudEvents, and the
 * sample incidents `im chatops templates validate` renders with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/internal.h"

static const char *const verbs[][2] = {
    {"declare", "declared"},	       {"acknowledge", "acknowledged"},
    {"mitigate", "mitigated"},	       {"resolve", "resolved"},
    {"close", "closed"},	       {"cancel", "canceled"},
    {"duplicate", "marked duplicate"}, {"note", "note added"},
    {"severity", "severity changed"},  {"assign", "commander assigned"},
    {"update", "updated"},	       {NULL, NULL}};

static const char *past_of(const char *verb)
{
	for (size_t i = 0; verbs[i][0]; i++)
		if (!strcmp(verbs[i][0], verb))
			return verbs[i][1];
	return verb;
}

static json_t *copy_or_null(const json_t *v)
{
	return v ? json_deep_copy(v) : json_null();
}

json_t *im_template_context(const json_t *ev, const char *public_url)
{
	const json_t *data = json_object_get(ev, "data");
	json_t *envelope = json_object();
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)ev, k, x)
		if (strcmp(k, "data"))
			json_object_set_new(envelope, k, json_deep_copy(x));
	const char *type = json_string_value(json_object_get(ev, "type"));
	const char *verb = type && !strncmp(type, "im.incident.", 12)
			       ? type + 12
			       : type ? type : "";
	json_t *change = json_object_get(data, "change");
	return json_pack("{s:o,s:o,s:o,s:o,s:s,s:s,s:s?}", "incident",
			 copy_or_null(json_object_get(data, "incident")),
			 "event", envelope, "change",
			 change ? json_deep_copy(change) : json_object(),
			 "actor", copy_or_null(json_object_get(data, "actor")),
			 "verb", verb, "verb_past", past_of(verb),
			 "public_url",
			 public_url && *public_url ? public_url : NULL);
}

json_t *im_template_digest_context(const json_t *events, const char *channel,
				   const char *public_url)
{
	json_t *list = json_array();
	size_t i, n = json_array_size(events);
	const json_t *ev;
	json_array_foreach(events, i, ev)
	{
		json_t *c = im_template_context(ev, public_url);
		json_object_del(c, "public_url");
		json_object_set_new(c, "index", json_integer((json_int_t)i + 1));
		json_object_set_new(c, "last", json_boolean(i + 1 == n));
		json_array_append_new(list, c);
	}
	return json_pack("{s:o,s:I,s:s?,s:s?}", "events", list, "count",
			 (json_int_t)n, "channel", channel, "public_url",
			 public_url && *public_url ? public_url : NULL);
}

/* --- samples ------------------------------------------------------------ */

typedef struct sample_text {
	const char *kind, *sev, *title, *description, *service, *commander,
	    *actor, *note;
} sample_text;

static const sample_text samples[] = {
    {"normal", "SEV-2", "Checkout API returns 500 errors",
     "Error rate above 5% on checkout since 10:02 UTC; EU card payments "
     "fail.",
     "checkout", "alice", "Alice Example", "Rolled back release 4.12.0."},
    {"long", "SEV-1", NULL, NULL, "payments-gateway-eu-west-1",
     "incident-commander-on-call-primary", "Bob Example", NULL},
    {"unicode", "SEV-3",
     "Paiements indisponibles \xf0\x9f\x92\xb3\xf0\x9f\x94\xa5 \xe2\x80\x94 "
     "\xd8\xae\xd8\xaf\xd9\x85\xd8\xa9 \xd8\xa7\xd9\x84\xd8\xaf\xd9\x81\xd8"
     "\xb9 \xd9\x85\xd8\xb9\xd8\xb7\xd9\x84\xd8\xa9 \xe2\x80\x94 \xd7\xa9\xd7"
     "\x99\xd7\xa8\xd7\x95\xd7\xaa \xd7\x9c\xd7\x9e\xd7\x98\xd7\x94 \xe2\x80"
     "\x94 \xe6\xb1\xba\xe6\xb8\x88\xe5\x81\x9c\xe6\xad\xa2 \xf0\x9f\x91\xa9"
     "\xf0\x9f\x8f\xbd\xe2\x80\x8d\xf0\x9f\x92\xbb",
     "Zo\xc3\xab\xe2\x80\x99s cache: na\xc3\xafve fa\xc3\xa7" "ade; "
     "\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac; "
     "\xd7\xa2\xd7\x91\xd7\xa8\xd7\x99\xd7\xaa \xe2\x80\xaereversed\xe2\x80"
     "\xac; e\xcc\x81; \xf0\x9f\x8f\xb3\xef\xb8\x8f\xe2\x80\x8d\xf0\x9f\x8c"
     "\x88",
     "paiements-\xe2\x82\xac", "Zo\xc3\xab \xf0\x9f\xa7\x91\xe2\x80\x8d\xf0"
     "\x9f\x9a\x92", "\xd8\xb3\xd8\xa7\xd8\xb1\xd8\xa9",
     "\xe2\x9c\x85 \xd7\xaa\xd7\x95\xd7\xa7\xd7\x9f"},
    {"hostile", "SEV-4", NULL,
     "<@U123> @here [click](https://evil.example) `code` ~~x~~ # heading\n"
     "- item\n> quote | pipe {{incident.id}} </script> \\\"},{\"a\":\"",
     "svc\"},{\"x\":1}", "<!here> @everyone", "@everyone <!channel>",
     "*bold* _it_ <!subteam^S1|ops> @here"},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

/* The hostile title carries a NUL byte, hence the explicit length. */
static const char hostile_title[] = "<!channel> *x* @everyone \"},{ \0";

static json_t *long_text(const char *seed)
{
	/* 10,000 characters, multi-byte ones included, so cuts must land
	 * on character boundaries. */
	size_t cap = 10000 * 4 + 64, n = 0, chars = 0, sl = strlen(seed);
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	while (chars < 10000) {
		for (size_t i = 0; i < sl && chars < 10000; i++) {
			buf[n++] = seed[i];
			if (i + 1 == sl ||
			    ((unsigned char)seed[i + 1] & 0xC0) != 0x80)
				chars++;
		}
	}
	json_t *s = json_stringn(buf, n);
	free(buf);
	return s;
}

static json_t *sample_incident(const sample_text *t, const char *status,
			       const char *public_url)
{
	json_t *title = t->title ? json_string(t->title)
		       : !strcmp(t->kind, "hostile")
			   ? json_stringn(hostile_title, sizeof(hostile_title) - 1)
			   : long_text("Tr\xc3\xa8s long incident "
				       "\xf0\x9f\x9a\xa8 \xe2\x80\x94 ");
	json_t *desc = t->description
			   ? json_string(t->description)
			   : long_text("Database failover loop; \xc3\xa9tat "
				       "d\xc3\xa9grad\xc3\xa9 \xe2\x9a\xa0\xef"
				       "\xb8\x8f. ");
	json_t *inc = json_pack(
	    "{s:s,s:i,s:o,s:o,s:s,s:s,s:s,s:s,s:s,s:n,s:s,s:s}", "id",
	    "INC-42", "number", 42, "title", title, "description", desc,
	    "severity", t->sev, "severity_label",
	    !strcmp(t->sev, "SEV-1")   ? "critical"
	    : !strcmp(t->sev, "SEV-2") ? "major"
	    : !strcmp(t->sev, "SEV-3") ? "minor"
				       : "informational",
	    "status", status, "service", t->service, "commander", t->commander,
	    "duplicate_of", "created_at", "2026-11-27T10:00:00.000Z",
	    "updated_at", "2026-11-27T10:04:00.000Z");
	if (inc && public_url && *public_url) {
		char url[600];
		snprintf(url, sizeof(url), "%s/incidents/INC-42", public_url);
		json_object_set_new(inc, "url", json_string(url));
	}
	return inc;
}

static const char *status_after(const char *event)
{
	static const char *const map[][2] = {
	    {"acknowledge", "acknowledged"}, {"mitigate", "mitigated"},
	    {"resolve", "resolved"},	     {"close", "closed"},
	    {"cancel", "canceled"},	     {"duplicate", "duplicate"},
	    {NULL, NULL}};
	for (size_t i = 0; map[i][0]; i++)
		if (!strcmp(map[i][0], event))
			return map[i][1];
	return "open";
}

static json_t *sample_change(const char *event, const sample_text *t,
			     json_t *inc)
{
	const char *to = status_after(event);
	if (!strcmp(event, "note"))
		return json_pack("{s:s}", "text", t->note ? t->note
							 : t->kind);
	if (!strcmp(event, "severity"))
		return json_pack("{s:s,s:s}", "from", "SEV-3", "to", t->sev);
	if (!strcmp(event, "assign"))
		return json_pack("{s:n,s:s}", "from", "to", t->commander);
	if (!strcmp(event, "update"))
		return json_pack("{s:{s:s,s:O}}", "title", "from",
				 "Checkout slow", "to",
				 json_object_get(inc, "title"));
	if (!strcmp(to, "open"))
		return json_object();
	json_t *c = json_pack("{s:s,s:s}", "from", "open", "to", to);
	if (t->note)
		json_object_set_new(c, "note", json_string(t->note));
	if (!strcmp(event, "duplicate"))
		json_object_set_new(c, "duplicate_of", json_string("INC-41"));
	return c;
}

static json_t *sample_event(const char *event, const sample_text *t,
			    const char *public_url, int seq)
{
	json_t *inc = sample_incident(t, status_after(event), public_url);
	if (!strcmp(event, "duplicate"))
		json_object_set_new(inc, "duplicate_of", json_string("INC-41"));
	json_t *change = sample_change(event, t, inc);
	char type[96];
	snprintf(type, sizeof(type), "im.incident.%s", event);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:{s:o,s:o,s:{s:s,"
			 "s:s,s:s}}}",
			 "specversion", "1.0", "id",
			 "6f1c2b1e-6a3d-4c55-9a7e-0d3c1b2a4f10", "source",
			 "im/incidents", "type", type, "time",
			 "2026-11-27T10:04:00.000Z", "subject", "INC-42",
			 "datacontenttype", "application/json", "sequence",
			 seq, "data", "incident", inc, "change", change,
			 "actor", "id", "U024BE7LH", "name", t->actor, "via",
			 "chat");
}

json_t *im_template_sample(const char *event, const char *kind,
			   const char *public_url)
{
	const sample_text *t = NULL;
	for (size_t i = 0; samples[i].kind && !t; i++)
		if (!strcmp(samples[i].kind, kind))
			t = &samples[i];
	if (!t || !event)
		return NULL;
	if (strcmp(event, "digest")) {
		json_t *ev = sample_event(event, t, public_url, 42);
		json_t *ctx = ev ? im_template_context(ev, public_url) : NULL;
		json_decref(ev);
		return ctx;
	}
	static const char *const batch[] = {"declare", "acknowledge", "note",
					    "severity", "resolve"};
	json_t *events = json_array();
	for (size_t i = 0; i < sizeof(batch) / sizeof(batch[0]); i++)
		json_array_append_new(events, sample_event(batch[i], t,
							   public_url,
							   40 + (int)i));
	json_t *ctx = im_template_digest_context(events, "C0123ABC",
						 public_url);
	json_decref(events);
	return ctx;
}
