/* Slack's message rules for the host's template service: mrkdwn escaping
 * (& < > as entities), the mentions incident text must never become, the
 * per-severity emoji and colours, token prefixes for log redaction, and
 * the Block Kit limits (fit_payload). Texts over a limit are cut by the
 * host's safe cut; rules no cut repairs are reported. */
#include <string.h>

#include "rules.h"

static const char *const replace[] = {"&", "&amp;", "<", "&lt;",
				      ">", "&gt;", NULL};
static const char *const mentions[] = {"<!channel>", "<!here>",
				       "<!everyone>", "<@U", "<!subteam",
				       NULL};
static const char *const emoji[] = {
    ":grey_question:", ":red_circle:", ":large_orange_circle:",
    ":large_yellow_circle:", ":white_circle:"};
static const int64_t colors[] = {9807270, 15158332, 15105570, 15844367,
				 9807270};
static const char *const secret_prefixes[] = {"xoxb-", "xoxp-", "xoxa-",
					      "xoxr-", "xoxs-", "xapp-",
					      NULL};

const im_platform_rules slk_rules = {
    .struct_size = sizeof(im_platform_rules),
    .replace = replace,
    .mentions = mentions,
    .severity_emoji = emoji,
    .severity_color = colors,
    .secret_prefixes = secret_prefixes,
};

/* --- Block Kit limits ----------------------------------------------------- */

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

static void cut_array(json_t *a, size_t max)
{
	while (json_array_size(a) > max)
		json_array_remove(a, json_array_size(a) - 1);
}

static void too_long(const im_payload_ops *ops, const json_t *o,
		     const char *key, size_t max, const char *what)
{
	if (ops->length(json_object_get(o, key)) > max)
		ops->problem(ops, key, "%s '%s' is longer than %zu characters",
			     what, key, max);
}

static const char *const blocks_known[] = {
    "section", "header", "context", "actions",  "divider",  "image",
    "rich_text", "input", "file",   "video",    "markdown", NULL};

static void text_obj(json_t *t, size_t max, const im_payload_ops *ops,
		     const char *what, bool plain_only)
{
	const char *type = str(t, "type");
	if (!json_is_object(t) || !type ||
	    (strcmp(type, "mrkdwn") && strcmp(type, "plain_text"))) {
		ops->problem(ops, what, "%s text must be an object of type "
					"mrkdwn or plain_text", what);
		return;
	}
	if (plain_only && strcmp(type, "plain_text"))
		ops->problem(ops, what, "%s text must be plain_text", what);
	json_t *s = json_object_get(t, "text");
	if (!json_is_string(s) || json_string_length(s) == 0)
		ops->problem(ops, what, "%s text must be 1-%zu characters",
			     what, max);
	else
		ops->cut(ops, s, max);
}

static void elements(json_t *list, size_t max, size_t text_max,
		     const im_payload_ops *ops, const char *what)
{
	if (!json_is_array(list) || !json_array_size(list)) {
		ops->problem(ops, what, "%s needs 1-%zu elements", what, max);
		return;
	}
	cut_array(list, max);
	size_t i;
	json_t *el;
	json_array_foreach(list, i, el)
	{
		const char *type = str(el, "type");
		if (type && (!strcmp(type, "mrkdwn") ||
			     !strcmp(type, "plain_text")))
			text_obj(el, text_max, ops, what, false);
		if (!type || strcmp(type, "button"))
			continue;
		text_obj(json_object_get(el, "text"), 75, ops, "button", true);
		too_long(ops, el, "action_id", 255, "button");
		too_long(ops, el, "value", 2000, "button");
		too_long(ops, el, "url", 3000, "button");
	}
}

static void block(json_t *b, const im_payload_ops *ops)
{
	const char *type = str(b, "type");
	if (!type) {
		ops->problem(ops, "\"blocks\"", "every block needs a type");
		return;
	}
	if (!in_list(type, blocks_known)) {
		ops->problem(ops, type, "unknown Block Kit block type '%s'",
			     type);
		return;
	}
	too_long(ops, b, "block_id", 255, "block");
	json_t *text = json_object_get(b, "text");
	if (!strcmp(type, "header")) {
		text_obj(text, 150, ops, "header", true);
	} else if (!strcmp(type, "section")) {
		json_t *fields = json_object_get(b, "fields");
		if (!text && !fields)
			ops->problem(ops, "section",
				     "a section needs text or fields");
		if (text)
			text_obj(text, 3000, ops, "section", false);
		if (fields)
			elements(fields, 10, 2000, ops, "fields");
	} else if (!strcmp(type, "context")) {
		elements(json_object_get(b, "elements"), 10, 3000, ops,
			 "context");
	} else if (!strcmp(type, "actions")) {
		elements(json_object_get(b, "elements"), 25, 3000, ops,
			 "actions");
	}
}

int slk_fit_payload(json_t *p, const im_payload_ops *ops)
{
	if (!ops || ops->struct_size < sizeof(im_payload_ops))
		return IM_EVERSION;
	json_t *text = json_object_get(p, "text");
	json_t *blocks = json_object_get(p, "blocks");
	if (json_is_string(text))
		ops->cut(ops, text, 3000);
	if (!json_is_string(text) && !json_is_array(blocks))
		ops->problem(ops, NULL, "a Slack message needs text or blocks");
	if (blocks && !json_is_array(blocks))
		ops->problem(ops, "blocks", "blocks must be a list");
	cut_array(blocks, 50);
	size_t i;
	json_t *b;
	json_array_foreach(blocks, i, b)
		block(b, ops);
	return 0;
}
