/* Microsoft Teams' message rules for the host's template service:
 * markdown escaping (a backslash before \ * _ ~ ` | > # - [ ] ( )), the
 * per-severity emoji and colours, and the Adaptive Card rules Teams
 * renders (card version up to 1.5, its elements and actions, 100 KB per
 * message) as fit_payload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teams.h"

#define MAX_BYTES (100 * 1024)

static const char *const emoji[] = {"\xe2\x9d\x94", "\xf0\x9f\x94\xb4",
				    "\xf0\x9f\x9f\xa0", "\xf0\x9f\x9f\xa1",
				    "\xe2\x9a\xaa"};
static const int64_t colors[] = {9807270, 15158332, 15105570, 15844367,
				 9807270};

const im_platform_rules tms_rules = {
    .struct_size = sizeof(im_platform_rules),
    .backslash = "\\*_~`|>#-[]()",
    .severity_emoji = emoji,
    .severity_color = colors,
};

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool in_list(const char *s, const char *const *list)
{
	for (size_t i = 0; s && list[i]; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

static const char *const elements[] = {
    "TextBlock",     "Image",	   "RichTextBlock", "TextRun",
    "Container",     "ColumnSet",	   "Column",	    "FactSet",
    "ImageSet",	     "ActionSet",	   "Table",	    "TableRow",
    "TableCell",     "Input.Text",	   "Input.Number",  "Input.Date",
    "Input.Time",    "Input.Toggle",	   "Input.ChoiceSet", "AdaptiveCard",
    NULL};
static const char *const actions[] = {
    "Action.OpenUrl", "Action.Submit", "Action.ShowCard",
    "Action.ToggleVisibility", "Action.Execute", NULL};

static void walk(const json_t *v, const im_payload_ops *ops, int depth)
{
	if (depth > 32)
		return;
	size_t i;
	const char *k;
	json_t *x;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			walk(x, ops, depth + 1);
		return;
	}
	if (!json_is_object(v))
		return;
	const char *type = str(v, "type");
	if (type && !strncmp(type, "Action.", 7)) {
		if (!in_list(type, actions))
			ops->problem(ops, type, "unsupported action '%s'",
				     type);
		const char *style = str(v, "style");
		if (style && (!strcmp(style, "positive") ||
			      !strcmp(style, "destructive")))
			ops->problem(ops, style, "action style '%s' is not "
						 "supported in Teams", style);
	} else if (type && !in_list(type, elements)) {
		ops->problem(ops, type, "element '%s' is not supported in "
					"Teams (Adaptive Cards 1.5)", type);
	}
	json_object_foreach((json_t *)v, k, x)
		if (strcmp(k, "data") && strcmp(k, "msteams"))
			walk(x, ops, depth + 1);
}

static void card(const json_t *c, const im_payload_ops *ops)
{
	const char *version = str(c, "version");
	unsigned major = 0, minor = 0;
	if (!json_is_object(c) || !str(c, "type") ||
	    strcmp(str(c, "type"), "AdaptiveCard")) {
		ops->problem(ops, "AdaptiveCard",
			     "the attachment content must be an AdaptiveCard");
		return;
	}
	if (!version || sscanf(version, "%u.%u", &major, &minor) != 2)
		ops->problem(ops, "AdaptiveCard",
			     "the card needs a version such as \"1.5\"");
	else if (major > 1 || (major == 1 && minor > 5))
		ops->problem(ops, "version", "card version %s: Teams renders "
					     "Adaptive Cards up to 1.5",
			     version);
	walk(json_object_get(c, "body"), ops, 0);
	walk(json_object_get(c, "actions"), ops, 0);
}

/* The longest TextBlock/TextRun text or fact value under v. */
static json_t *longest_text(json_t *v, json_t *best,
			    const im_payload_ops *ops, int depth)
{
	size_t i;
	const char *k;
	json_t *x;
	if (depth > 32)
		return best;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			best = longest_text(x, best, ops, depth + 1);
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, x)
		{
			bool text = json_is_string(x) &&
				    (!strcmp(k, "text") || !strcmp(k, "value"));
			if (text && ops->length(x) > ops->length(best))
				best = x;
			else if (!text && strcmp(k, "data"))
				best = longest_text(x, best, ops, depth + 1);
		}
	}
	return best;
}

static size_t dumped_size(const json_t *p)
{
	char *s = json_dumps(p, JSON_COMPACT);
	size_t n = s ? strlen(s) : 0;
	free(s);
	return n;
}

int tms_fit_payload(json_t *p, const im_payload_ops *ops)
{
	if (!ops || ops->struct_size < sizeof(im_payload_ops))
		return IM_EVERSION;
	const char *type = str(p, "type");
	if (type && !strcmp(type, "AdaptiveCard")) {
		card(p, ops);
	} else {
		json_t *atts = json_object_get(p, "attachments"), *a;
		if (!json_array_size(atts) && !str(p, "text"))
			ops->problem(ops, NULL, "a Teams message needs text or "
						"attachments");
		size_t i;
		json_array_foreach(atts, i, a)
		{
			const char *ct = str(a, "contentType");
			if (ct && !strcmp(ct, "application/vnd.microsoft.card."
					      "adaptive"))
				card(json_object_get(a, "content"), ops);
		}
	}
	size_t size = dumped_size(p);
	for (int round = 0; round < 64 && size > MAX_BYTES; round++) {
		json_t *s = longest_text(p, NULL, ops, 0);
		size_t len = ops->length(s), excess = size - MAX_BYTES;
		if (!s || !ops->cut(ops, s, len > excess + 1 ? len - excess
							     : len / 2))
			break;
		size = dumped_size(p);
	}
	if (size > MAX_BYTES)
		ops->problem(ops, NULL, "the payload is %zu bytes; Teams takes "
					"at most 100 KB", size);
	return 0;
}
