/* Inbound activities as chat commands; see activity.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "activity.h"

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && *s ? s : NULL;
}

static const char *path(const json_t *o, const char *a, const char *b)
{
	return str(json_object_get(o, a), b);
}

/* Teams sends message text as (light) HTML: drops tags (the bot mention
 * <at>im</at> with them), decodes the entities it uses, folds
 * whitespace, and removes a leading "incident" word. */
static char *plain_text(const char *in)
{
	static const struct {
		const char *ent, *ch;
	} ents[] = {{"&amp;", "&"},   {"&lt;", "<"},   {"&gt;", ">"},
		    {"&quot;", "\""}, {"&#39;", "'"},  {"&apos;", "'"},
		    {"&nbsp;", " "}};
	size_t n = strlen(in);
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = in; *p;) {
		if (!strncmp(p, "<at>", 4)) { /* a mention: drop it whole */
			const char *end = strstr(p, "</at>");
			p = end ? end + 5 : p + strlen(p);
			continue;
		}
		if (*p == '<') { /* another tag: drop the tag, keep text */
			const char *end = strchr(p, '>');
			p = end ? end + 1 : p + strlen(p);
			*o++ = ' ';
			continue;
		}
		size_t k = 0;
		if (*p == '&')
			while (k < sizeof ents / sizeof ents[0] &&
			       strncmp(p, ents[k].ent, strlen(ents[k].ent)))
				k++;
		if (*p == '&' && k < sizeof ents / sizeof ents[0]) {
			*o++ = ents[k].ch[0];
			p += strlen(ents[k].ent);
			continue;
		}
		*o++ = (*p == '\r' || *p == '\n' || *p == '\t') ? ' ' : *p;
		p++;
	}
	*o = '\0';
	/* Fold runs of spaces, trim. */
	char *w = out;
	for (char *r = out; *r; r++)
		if (*r != ' ' || (w > out && w[-1] != ' '))
			*w++ = *r;
	while (w > out && w[-1] == ' ')
		w--;
	*w = '\0';
	if (!strncasecmp(out, "incident", 8) &&
	    (out[8] == ' ' || out[8] == '\0')) {
		const char *rest = out + 8 + (out[8] == ' ');
		memmove(out, rest, strlen(rest) + 1);
	}
	return out;
}

static char *make_ref(const json_t *a)
{
	json_t *r = json_pack("{s:s?,s:s?,s:s?}", "service_url",
			      str(a, "serviceUrl"), "conversation",
			      path(a, "conversation", "id"), "activity_id",
			      str(a, "replyToId") ? str(a, "replyToId")
						  : str(a, "id"));
	char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
	json_decref(r);
	return s;
}

void tms_inv_clear(tms_inv *t)
{
	free(t->text);
	free(t->action_id);
	free(t->response_ref);
	memset(t, 0, sizeof(*t));
}

/* data {"action":"ack","incident":"INC-7"} -> im_ack / INC-7. */
static tms_kind button(const json_t *data, const char *verb, tms_inv *t,
		       tms_kind kind)
{
	const char *act = str(data, "action") ? str(data, "action") : verb;
	if (!act || strlen(act) > 64)
		return kind == TMS_EXECUTE ? TMS_BAD_INVOKE : TMS_IGNORE;
	size_t n = strlen(act) + 4;
	if (!(t->action_id = malloc(n)))
		return TMS_IGNORE;
	snprintf(t->action_id, n, "im_%s", act);
	t->inv.action_id = t->action_id;
	t->inv.action_value = str(data, "incident") ? str(data, "incident") : "";
	return kind;
}

tms_kind tms_inv_from(const json_t *a, const char *instance, tms_inv *t)
{
	memset(t, 0, sizeof(*t));
	const char *type = str(a, "type");
	if (!json_is_object(a) || !type)
		return TMS_IGNORE;
	const json_t *cd = json_object_get(a, "channelData");
	const json_t *from = json_object_get(a, "from");
	t->inv = (im_invocation){
	    .struct_size = sizeof(im_invocation),
	    .platform = "teams",
	    .instance = instance,
	    .team = path(cd, "team", "id") ? path(cd, "team", "id")
					   : path(cd, "tenant", "id"),
	    .channel = path(cd, "channel", "id")
			   ? path(cd, "channel", "id")
			   : path(a, "conversation", "id"),
	    /* The Entra object id names the person across teams. */
	    .user_id = str(from, "aadObjectId") ? str(from, "aadObjectId")
						: str(from, "id"),
	    .user_name = str(from, "name"),
	    .command = "/incident",
	};
	if (!t->inv.user_id || !t->inv.channel)
		return TMS_IGNORE;
	tms_kind kind = TMS_IGNORE;
	if (!strcmp(type, "invoke")) {
		const char *name = str(a, "name");
		if (!name || strcmp(name, "adaptiveCard/action"))
			return TMS_BAD_INVOKE;
		const json_t *action =
		    json_object_get(json_object_get(a, "value"), "action");
		kind = button(json_object_get(action, "data"),
			      str(action, "verb"), t, TMS_EXECUTE);
	} else if (!strcmp(type, "message")) {
		const json_t *value = json_object_get(a, "value");
		if (json_is_object(value)) {
			kind = button(value, NULL, t, TMS_SUBMIT);
		} else if (str(a, "text")) {
			if (!(t->text = plain_text(str(a, "text"))))
				return TMS_IGNORE;
			t->inv.text = t->text;
			kind = TMS_COMMAND;
		}
	}
	if (kind != TMS_IGNORE && kind != TMS_BAD_INVOKE) {
		if (!(t->response_ref = make_ref(a))) {
			tms_inv_clear(t);
			return TMS_IGNORE;
		}
		t->inv.response_ref = t->response_ref;
	}
	return kind;
}

json_t *tms_invoke_answer(const char *text, bool error)
{
	if (error)
		return json_pack("{s:i,s:s,s:{s:s,s:s}}", "statusCode", 400,
				 "type", "application/vnd.microsoft.error",
				 "value", "code", "BadRequest", "message",
				 text ? text : "");
	return json_pack("{s:i,s:s,s:s}", "statusCode", 200, "type",
			 "application/vnd.microsoft.activity.message",
			 "value", text ? text : "");
}

/* "im_ack" + "INC-7" -> {"action":"ack","incident":"INC-7"}, the data the
 * card templates' buttons carry. */
static json_t *button_data(const char *id, const char *value)
{
	const char *act = id && !strncmp(id, "im_", 3) ? id + 3 : id;
	return json_pack("{s:s,s:s}", "action", act ? act : "", "incident",
			 value ? value : "");
}

json_t *tms_reply_activity(const json_t *reply)
{
	const char *text = str(reply, "text");
	const json_t *fields = json_object_get(reply, "fields");
	const json_t *actions = json_object_get(reply, "actions");
	json_t *a = json_pack("{s:s,s:s,s:s}", "type", "message", "textFormat",
			      "markdown", "text", text ? text : "");
	if (!a || (!json_array_size(fields) && !json_array_size(actions)))
		return a;
	/* Fields and buttons need a card: an Adaptive Card 1.5 with the
	 * text, a FactSet and Action.Submit buttons. */
	json_t *body = json_array(), *facts = json_array(), *acts = json_array();
	json_array_append_new(body, json_pack("{s:s,s:s,s:b}", "type",
					      "TextBlock", "text",
					      text ? text : "", "wrap", 1));
	size_t i;
	const json_t *v;
	json_array_foreach(fields, i, v)
	    json_array_append_new(facts,
				  json_pack("{s:s,s:s}", "title",
					    str(v, "title") ? str(v, "title") : "",
					    "value",
					    str(v, "value") ? str(v, "value") : ""));
	if (json_array_size(facts))
		json_array_append_new(body, json_pack("{s:s,s:O}", "type",
						      "FactSet", "facts", facts));
	json_array_foreach(actions, i, v)
	    json_array_append_new(
		acts, json_pack("{s:s,s:s,s:o}", "type", "Action.Submit",
				"title",
				str(v, "label") ? str(v, "label") : "",
				"data", button_data(str(v, "id"),
						    str(v, "value"))));
	json_t *card = json_pack(
	    "{s:s,s:s,s:s,s:o,s:o}", "$schema",
	    "http://adaptivecards.io/schemas/adaptive-card.json", "type",
	    "AdaptiveCard", "version", "1.5", "body", body, "actions", acts);
	json_decref(facts);
	json_object_del(a, "text");
	json_object_set_new(
	    a, "attachments",
	    json_pack("[{s:s,s:o}]", "contentType",
		      "application/vnd.microsoft.card.adaptive", "content",
		      card));
	return a;
}
