/* Command replies as Slack messages. The command's markdown becomes
 * mrkdwn with &, < and > escaped, so no text from an incident can turn
 * into a mention (<!channel>) or a link; fields become section fields and
 * actions become buttons, held to Block Kit's limits. */
#include <stdlib.h>
#include <string.h>

#include "slack.h"

#define SECTION_MAX 3000
#define FIELD_MAX 2000
#define FIELDS_PER_SECTION 10
#define BUTTON_LABEL_MAX 75
#define BUTTON_VALUE_MAX 2000
#define BUTTONS_MAX 25
#define BLOCKS_MAX 50

typedef struct sb {
	char *p;
	size_t n, cap;
	bool failed;
} sb;

static void put(sb *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap : 64);
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void put_escaped(sb *b, const char *s, size_t n)
{
	while (n) {
		size_t run = 0; /* copy plain runs in one go */
		while (run < n && s[run] != '&' && s[run] != '<' && s[run] != '>')
			run++;
		put(b, s, run);
		if (run == n)
			return;
		put(b, s[run] == '&' ? "&amp;" : s[run] == '<' ? "&lt;" : "&gt;",
		    s[run] == '&' ? 5 : 4);
		s += run + 1;
		n -= run + 1;
	}
}

/* A markdown link "[text](http...)" at s: lengths of text and url. */
static bool link_at(const char *s, size_t *tlen, size_t *ulen)
{
	const char *close = strchr(s + 1, ']');
	if (*s != '[' || !close || close[1] != '(' ||
	    (strncmp(close + 2, "https://", 8) != 0 &&
	     strncmp(close + 2, "http://", 7) != 0))
		return false;
	const char *u = close + 2;
	size_t n = strcspn(u, ") \t\n|<>");
	if (u[n] != ')' || memchr(s + 1, '\n', (size_t)(close - s - 1)))
		return false;
	*tlen = (size_t)(close - s - 1);
	*ulen = n;
	return true;
}

char *slk_mrkdwn(const char *md)
{
	sb b = {0};
	size_t want = (md ? strlen(md) : 0) + 64; /* room for some escapes */
	if ((b.p = malloc(want)) != NULL) {
		b.cap = want;
		b.p[0] = '\0';
	}
	put(&b, "", 0);
	for (const char *s = md ? md : ""; *s;) {
		size_t tl, ul;
		if (link_at(s, &tl, &ul)) {
			put(&b, "<", 1);
			put_escaped(&b, s + tl + 3, ul);
			put(&b, "|", 1);
			put_escaped(&b, s + 1, tl);
			put(&b, ">", 1);
			s += tl + ul + 4;
		} else if (s[0] == '*' && s[1] == '*') {
			put(&b, "*", 1);
			s += 2;
		} else {
			/* Up to the next character that may start a link or
			 * bold, escaped in one go. */
			size_t run = 1 + strcspn(s + 1, "[*");
			put_escaped(&b, s, run);
			s += run;
		}
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* Cuts s to at most max bytes on a UTF-8 boundary, ending in "…". */
static json_t *cut(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return json_string(s);
	size_t keep = max - 3;
	while (keep && ((unsigned char)s[keep] & 0xC0) == 0x80)
		keep--;
	char *t = malloc(keep + 4);
	if (!t)
		return NULL;
	memcpy(t, s, keep);
	memcpy(t + keep, "\xE2\x80\xA6", 4);
	json_t *v = json_string(t);
	free(t);
	return v;
}

static json_t *mrkdwn_obj(const char *md, size_t max)
{
	char *t = slk_mrkdwn(md);
	json_t *o = t ? json_pack("{s:s,s:o}", "type", "mrkdwn", "text",
				  cut(t, max))
		      : NULL;
	free(t);
	return o;
}

static json_t *field_text(const json_t *f)
{
	const char *title = json_string_value(json_object_get(f, "title"));
	const char *value = json_string_value(json_object_get(f, "value"));
	sb b = {0};
	put(&b, "*", 1);
	put_escaped(&b, title ? title : "", strlen(title ? title : ""));
	put(&b, "*\n", 2);
	char *v = slk_mrkdwn(value ? value : "");
	if (v)
		put(&b, v, strlen(v));
	free(v);
	json_t *o = b.failed ? NULL
			     : json_pack("{s:s,s:o}", "type", "mrkdwn", "text",
					 cut(b.p, FIELD_MAX));
	free(b.p);
	return o;
}

/* Short fields side by side (10 per section); long ones on their own. */
static void add_fields(json_t *blocks, const json_t *fields)
{
	json_t *group = NULL;
	size_t i;
	const json_t *f;
	json_array_foreach(fields, i, f)
	{
		if (json_array_size(blocks) >= BLOCKS_MAX - 1)
			break;
		json_t *t = field_text(f);
		if (!t)
			continue;
		if (!json_is_true(json_object_get(f, "short"))) {
			group = NULL;
			json_array_append_new(
			    blocks, json_pack("{s:s,s:o}", "type", "section",
					      "text", t));
			continue;
		}
		if (!group || json_array_size(group) >= FIELDS_PER_SECTION) {
			group = json_array();
			json_array_append_new(
			    blocks, json_pack("{s:s,s:o}", "type", "section",
					      "fields", group));
		}
		json_array_append_new(group, t);
	}
}

static json_t *button(const json_t *a)
{
	const char *id = json_string_value(json_object_get(a, "id"));
	const char *label = json_string_value(json_object_get(a, "label"));
	const char *value = json_string_value(json_object_get(a, "value"));
	const char *style = json_string_value(json_object_get(a, "style"));
	if (!id || !*id)
		return NULL;
	json_t *b = json_pack("{s:s,s:{s:s,s:o,s:b},s:s}", "type", "button",
			      "text", "type", "plain_text", "text",
			      cut(label && *label ? label : id,
				  BUTTON_LABEL_MAX),
			      "emoji", 1, "action_id", id);
	if (b && value && *value)
		json_object_set_new(b, "value", cut(value, BUTTON_VALUE_MAX));
	if (b && style && (!strcmp(style, "primary") || !strcmp(style, "danger")))
		json_object_set_new(b, "style", json_string(style));
	return b;
}

json_t *slk_render_reply(const json_t *reply)
{
	const char *text = json_string_value(json_object_get(reply, "text"));
	const char *vis = json_string_value(json_object_get(reply, "visibility"));
	const json_t *fields = json_object_get(reply, "fields");
	const json_t *actions = json_object_get(reply, "actions");
	char *plain = slk_mrkdwn(text ? text : "");
	json_t *msg = json_pack(
	    "{s:s,s:o}", "response_type",
	    vis && !strcmp(vis, "in_channel") ? "in_channel" : "ephemeral",
	    "text", cut(plain && *plain ? plain : " ", SECTION_MAX));
	free(plain);
	if (!msg || (!json_array_size(fields) && !json_array_size(actions)))
		return msg;
	json_t *blocks = json_array();
	if (text && *text)
		json_array_append_new(
		    blocks, json_pack("{s:s,s:o}", "type", "section", "text",
				      mrkdwn_obj(text, SECTION_MAX)));
	add_fields(blocks, fields);
	json_t *buttons = json_array();
	size_t i;
	const json_t *a;
	json_array_foreach(actions, i, a)
	{
		json_t *btn = json_array_size(buttons) < BUTTONS_MAX
				  ? button(a)
				  : NULL;
		if (btn)
			json_array_append_new(buttons, btn);
	}
	if (json_array_size(buttons) && json_array_size(blocks) < BLOCKS_MAX)
		json_array_append_new(blocks,
				      json_pack("{s:s,s:o}", "type", "actions",
						"elements", buttons));
	else
		json_decref(buttons);
	json_object_set_new(msg, "blocks", blocks);
	return msg;
}

/* --- compact JSON text ---------------------------------------------------- */

/* A string as json_dumps writes it without flags: UTF-8 kept; quotes,
 * backslashes and control characters escaped (\b \f \n \r \t, else
 * \u00XX in capitals). */
static void put_json_string(sb *b, const char *s, size_t n)
{
	put(b, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(b, s + run, i - run);
		run = i + 1;
		char esc[8];
		const char *e = c == '"'    ? "\\\""
				: c == '\\' ? "\\\\"
				: c == '\b' ? "\\b"
				: c == '\f' ? "\\f"
				: c == '\n' ? "\\n"
				: c == '\r' ? "\\r"
				: c == '\t' ? "\\t"
					    : NULL;
		if (!e) {
			static const char hex[] = "0123456789ABCDEF";
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			esc[6] = '\0';
			e = esc;
		}
		put(b, e, strlen(e));
	}
	put(b, s + run, n - run);
	put(b, "\"", 1);
}

static void put_json(sb *b, const json_t *v)
{
	char num[32];
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		put(b, "{", 1);
		const char *k;
		const json_t *x;
		bool first = true;
		json_object_foreach((json_t *)v, k, x)
		{
			if (!first)
				put(b, ",", 1);
			first = false;
			put_json_string(b, k, strlen(k));
			put(b, ":", 1);
			put_json(b, x);
		}
		put(b, "}", 1);
		break;
	}
	case JSON_ARRAY: {
		put(b, "[", 1);
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				put(b, ",", 1);
			put_json(b, json_array_get(v, i));
		}
		put(b, "]", 1);
		break;
	}
	case JSON_STRING:
		put_json_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		put(b, num,
		    (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
				     json_integer_value(v)));
		break;
	case JSON_TRUE:
		put(b, "true", 4);
		break;
	case JSON_FALSE:
		put(b, "false", 5);
		break;
	case JSON_NULL:
		put(b, "null", 4);
		break;
	default: { /* a real: jansson's own formatting */
		char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		if (t)
			put(b, t, strlen(t));
		else
			b->failed = true;
		free(t);
	}
	}
}

char *slk_json_text(const json_t *v)
{
	if (!v)
		return NULL;
	sb b = {0};
	put_json(&b, v);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
