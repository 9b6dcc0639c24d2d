/* Platform rules for rendered payloads (see PROTOCOLS.md). Limits that a
 * cut can honour are repaired in place (texts end in "…", lists lose their
 * tail); the rest are reported as problems. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/internal.h"

#define TEAMS_MAX_BYTES (100 * 1024)
#define DISCORD_TOTAL 6000

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static size_t chars(const json_t *s)
{
	return json_is_string(s) ? tpl_utf8_len(json_string_value(s),
						  json_string_length(s))
				 : 0;
}

static bool in_list(const char *s, const char *const *list)
{
	for (size_t i = 0; s && list[i]; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

static void cut_key(json_t *o, const char *key, size_t max, tpl_platform p)
{
	json_t *s = json_object_get(o, key);
	if (json_is_string(s))
		tpl_truncate(s, max, p);
}

static void cut_array(json_t *a, size_t max)
{
	while (json_array_size(a) > max)
		json_array_remove(a, json_array_size(a) - 1);
}

static void too_long(tpl_report *rep, const json_t *o, const char *key,
		     size_t max, const char *what)
{
	const json_t *s = json_object_get(o, key);
	if (chars(s) > max)
		tpl_problem(rep, key, "%s '%s' is longer than %zu characters",
			    what, key, max);
}

/* --- Slack Block Kit ---------------------------------------------------- */

static const char *const slack_blocks[] = {
    "section", "header", "context", "actions",  "divider",  "image",
    "rich_text", "input", "file",   "video",    "markdown", NULL};

static void slack_text(json_t *t, size_t max, tpl_report *rep,
		       const char *what, bool plain_only)
{
	const char *type = str(t, "type");
	if (!json_is_object(t) || !type ||
	    (strcmp(type, "mrkdwn") && strcmp(type, "plain_text"))) {
		tpl_problem(rep, what, "%s text must be an object of type "
				       "mrkdwn or plain_text", what);
		return;
	}
	if (plain_only && strcmp(type, "plain_text"))
		tpl_problem(rep, what, "%s text must be plain_text", what);
	json_t *s = json_object_get(t, "text");
	if (!json_is_string(s) || json_string_length(s) == 0)
		tpl_problem(rep, what, "%s text must be 1-%zu characters",
			    what, max);
	else
		tpl_truncate(s, max, TPL_SLACK);
}

static void slack_elements(json_t *list, size_t max, size_t text_max,
			   tpl_report *rep, const char *what)
{
	if (!json_is_array(list) || !json_array_size(list)) {
		tpl_problem(rep, what, "%s needs 1-%zu elements", what, max);
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
			slack_text(el, text_max, rep, what, false);
		if (!type || strcmp(type, "button"))
			continue;
		slack_text(json_object_get(el, "text"), 75, rep, "button",
			   true);
		too_long(rep, el, "action_id", 255, "button");
		too_long(rep, el, "value", 2000, "button");
		too_long(rep, el, "url", 3000, "button");
	}
}

static void slack_block(json_t *b, tpl_report *rep)
{
	const char *type = str(b, "type");
	if (!type) {
		tpl_problem(rep, "\"blocks\"", "every block needs a type");
		return;
	}
	if (!in_list(type, slack_blocks)) {
		tpl_problem(rep, type, "unknown Block Kit block type '%s'",
			    type);
		return;
	}
	too_long(rep, b, "block_id", 255, "block");
	json_t *text = json_object_get(b, "text");
	if (!strcmp(type, "header")) {
		slack_text(text, 150, rep, "header", true);
	} else if (!strcmp(type, "section")) {
		json_t *fields = json_object_get(b, "fields");
		if (!text && !fields)
			tpl_problem(rep, "section",
				    "a section needs text or fields");
		if (text)
			slack_text(text, 3000, rep, "section", false);
		if (fields)
			slack_elements(fields, 10, 2000, rep, "fields");
	} else if (!strcmp(type, "context")) {
		slack_elements(json_object_get(b, "elements"), 10, 3000, rep,
			       "context");
	} else if (!strcmp(type, "actions")) {
		slack_elements(json_object_get(b, "elements"), 25, 3000, rep,
			       "actions");
	}
}

static void slack(json_t *p, tpl_report *rep)
{
	json_t *text = json_object_get(p, "text");
	json_t *blocks = json_object_get(p, "blocks");
	if (json_is_string(text))
		tpl_truncate(text, 3000, TPL_SLACK);
	if (!json_is_string(text) && !json_is_array(blocks))
		tpl_problem(rep, NULL, "a Slack message needs text or blocks");
	if (blocks && !json_is_array(blocks))
		tpl_problem(rep, "blocks", "blocks must be a list");
	cut_array(blocks, 50);
	size_t i;
	json_t *b;
	json_array_foreach(blocks, i, b)
		slack_block(b, rep);
}

/* --- Discord ------------------------------------------------------------ */

static void discord_embed(json_t *e, tpl_report *rep)
{
	cut_key(e, "title", 256, TPL_DISCORD);
	cut_key(e, "description", 4096, TPL_DISCORD);
	cut_key(json_object_get(e, "footer"), "text", 2048, TPL_DISCORD);
	cut_key(json_object_get(e, "author"), "name", 256, TPL_DISCORD);
	json_t *color = json_object_get(e, "color");
	if (color && (!json_is_integer(color) ||
		      json_integer_value(color) < 0 ||
		      json_integer_value(color) > 0xFFFFFF))
		tpl_problem(rep, "color", "embed color must be an integer "
					  "0..16777215");
	json_t *fields = json_object_get(e, "fields"), *f;
	cut_array(fields, 25);
	size_t i;
	json_array_foreach(fields, i, f)
	{
		if (!chars(json_object_get(f, "name")) ||
		    !chars(json_object_get(f, "value")))
			tpl_problem(rep, "fields", "embed field name and value "
						   "must not be empty");
		cut_key(f, "name", 256, TPL_DISCORD);
		cut_key(f, "value", 1024, TPL_DISCORD);
	}
}

/* Every text counting toward the 6000-character total of all embeds. */
static size_t discord_texts(json_t *embeds, json_t **out, size_t max)
{
	size_t n = 0, i, k;
	json_t *e, *f;
	json_array_foreach(embeds, i, e)
	{
		json_t *list[] = {json_object_get(e, "title"),
				  json_object_get(e, "description"),
				  json_object_get(json_object_get(e, "footer"),
						  "text"),
				  json_object_get(json_object_get(e, "author"),
						  "name")};
		for (k = 0; k < 4; k++)
			if (json_is_string(list[k]) && n < max)
				out[n++] = list[k];
		json_array_foreach(json_object_get(e, "fields"), k, f)
		{
			if (n + 2 > max)
				break;
			if (json_is_string(json_object_get(f, "name")))
				out[n++] = json_object_get(f, "name");
			if (json_is_string(json_object_get(f, "value")))
				out[n++] = json_object_get(f, "value");
		}
	}
	return n;
}

/* Over the total: cut the longest text by the excess, until it fits. */
static void discord_total(json_t *embeds)
{
	json_t *texts[10 * 54];
	size_t n = discord_texts(embeds, texts, 10 * 54);
	for (int round = 0; round < 64; round++) {
		size_t total = 0, best = 0;
		for (size_t i = 0; i < n; i++) {
			total += chars(texts[i]);
			if (chars(texts[i]) > chars(texts[best]))
				best = i;
		}
		if (total <= DISCORD_TOTAL || !n)
			return;
		size_t len = chars(texts[best]), excess = total - DISCORD_TOTAL;
		size_t keep = len > excess + 1 ? len - excess : len / 2;
		if (!tpl_truncate(texts[best], keep ? keep : 1, TPL_DISCORD))
			return;
	}
}

static void discord_components(json_t *rows, tpl_report *rep)
{
	if (json_array_size(rows) > 5)
		tpl_problem(rep, "components", "at most 5 action rows");
	size_t i, k;
	json_t *row, *c;
	json_array_foreach(rows, i, row)
	{
		json_t *list = json_object_get(row, "components");
		if (json_integer_value(json_object_get(row, "type")) != 1 ||
		    json_array_size(list) > 5)
			tpl_problem(rep, "components", "components must be "
						       "action rows (type 1) "
						       "of at most 5 buttons");
		json_array_foreach(list, k, c)
		{
			cut_key(c, "label", 80, TPL_OTHER);
			json_int_t style =
			    json_integer_value(json_object_get(c, "style"));
			size_t id = chars(json_object_get(c, "custom_id"));
			if (style != 5 && (id == 0 || id > 100))
				tpl_problem(rep, "custom_id",
					    "a button needs a custom_id of "
					    "1-100 characters");
			if (style == 5 && !str(c, "url"))
				tpl_problem(rep, "components",
					    "a link button needs a url");
		}
	}
}

static bool mentions_off(const json_t *am)
{
	const json_t *parse = json_object_get(am, "parse");
	return json_is_array(parse) && json_array_size(parse) == 0 &&
	       json_array_size(json_object_get(am, "users")) == 0 &&
	       json_array_size(json_object_get(am, "roles")) == 0;
}

static void discord(json_t *p, tpl_report *rep)
{
	cut_key(p, "content", 2000, TPL_DISCORD);
	json_t *embeds = json_object_get(p, "embeds"), *e;
	if (embeds && !json_is_array(embeds))
		tpl_problem(rep, "embeds", "embeds must be a list");
	cut_array(embeds, 10);
	size_t i;
	json_array_foreach(embeds, i, e)
		discord_embed(e, rep);
	discord_total(embeds);
	if (!chars(json_object_get(p, "content")) && !json_array_size(embeds))
		tpl_problem(rep, NULL,
			    "a Discord message needs content or embeds");
	discord_components(json_object_get(p, "components"), rep);
	if (!mentions_off(json_object_get(p, "allowed_mentions"))) {
		if (rep->validate)
			tpl_problem(rep, "allowed_mentions",
				    "a Discord payload must carry "
				    "\"allowed_mentions\": {\"parse\": []} "
				    "so incident text never pings anyone");
		json_object_set_new(p, "allowed_mentions",
				    json_pack("{s:[]}", "parse"));
	}
}

/* --- Microsoft Teams (Adaptive Cards) ----------------------------------- */

static const char *const teams_elements[] = {
    "TextBlock",     "Image",	   "RichTextBlock", "TextRun",
    "Container",     "ColumnSet",	   "Column",	    "FactSet",
    "ImageSet",	     "ActionSet",	   "Table",	    "TableRow",
    "TableCell",     "Input.Text",	   "Input.Number",  "Input.Date",
    "Input.Time",    "Input.Toggle",	   "Input.ChoiceSet", "AdaptiveCard",
    NULL};
static const char *const teams_actions[] = {
    "Action.OpenUrl", "Action.Submit", "Action.ShowCard",
    "Action.ToggleVisibility", "Action.Execute", NULL};

static void teams_walk(const json_t *v, tpl_report *rep, int depth)
{
	if (depth > 32)
		return;
	size_t i;
	const char *k;
	json_t *x;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			teams_walk(x, rep, depth + 1);
		return;
	}
	if (!json_is_object(v))
		return;
	const char *type = str(v, "type");
	if (type && !strncmp(type, "Action.", 7)) {
		if (!in_list(type, teams_actions))
			tpl_problem(rep, type, "unsupported action '%s'", type);
		const char *style = str(v, "style");
		if (style && (!strcmp(style, "positive") ||
			      !strcmp(style, "destructive")))
			tpl_problem(rep, style, "action style '%s' is not "
						"supported in Teams", style);
	} else if (type && !in_list(type, teams_elements)) {
		tpl_problem(rep, type, "element '%s' is not supported in "
				       "Teams (Adaptive Cards 1.5)", type);
	}
	json_object_foreach((json_t *)v, k, x)
		if (strcmp(k, "data") && strcmp(k, "msteams"))
			teams_walk(x, rep, depth + 1);
}

static void teams_card(const json_t *card, tpl_report *rep)
{
	const char *version = str(card, "version");
	unsigned major = 0, minor = 0;
	if (!json_is_object(card) || !str(card, "type") ||
	    strcmp(str(card, "type"), "AdaptiveCard")) {
		tpl_problem(rep, "AdaptiveCard",
			    "the attachment content must be an AdaptiveCard");
		return;
	}
	if (!version || sscanf(version, "%u.%u", &major, &minor) != 2)
		tpl_problem(rep, "AdaptiveCard",
			    "the card needs a version such as \"1.5\"");
	else if (major > 1 || (major == 1 && minor > 5))
		tpl_problem(rep, "version", "card version %s: Teams renders "
					    "Adaptive Cards up to 1.5", version);
	teams_walk(json_object_get(card, "body"), rep, 0);
	teams_walk(json_object_get(card, "actions"), rep, 0);
}

/* The longest TextBlock/TextRun text or fact value under v. */
static json_t *longest_text(json_t *v, json_t *best, int depth)
{
	size_t i;
	const char *k;
	json_t *x;
	if (depth > 32)
		return best;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			best = longest_text(x, best, depth + 1);
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, x)
		{
			bool text = json_is_string(x) &&
				    (!strcmp(k, "text") || !strcmp(k, "value"));
			if (text && chars(x) > chars(best))
				best = x;
			else if (!text && strcmp(k, "data"))
				best = longest_text(x, best, depth + 1);
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

static void teams(json_t *p, tpl_report *rep)
{
	const char *type = str(p, "type");
	if (type && !strcmp(type, "AdaptiveCard")) {
		teams_card(p, rep);
	} else {
		json_t *atts = json_object_get(p, "attachments"), *a;
		if (!json_array_size(atts) && !str(p, "text"))
			tpl_problem(rep, NULL, "a Teams message needs text or "
					       "attachments");
		size_t i;
		json_array_foreach(atts, i, a)
		{
			const char *ct = str(a, "contentType");
			if (ct && !strcmp(ct, "application/vnd.microsoft.card."
					      "adaptive"))
				teams_card(json_object_get(a, "content"), rep);
		}
	}
	size_t size = dumped_size(p);
	for (int round = 0; round < 64 && size > TEAMS_MAX_BYTES; round++) {
		json_t *s = longest_text(p, NULL, 0);
		size_t len = chars(s), excess = size - TEAMS_MAX_BYTES;
		if (!s || !tpl_truncate(s, len > excess + 1 ? len - excess
							    : len / 2,
					TPL_TEAMS))
			break;
		size = dumped_size(p);
	}
	if (size > TEAMS_MAX_BYTES)
		tpl_problem(rep, NULL, "the payload is %zu bytes; Teams takes "
				       "at most 100 KB", size);
}

int tpl_enforce(tpl_platform p, json_t *payload, tpl_report *rep)
{
	int before = rep->count;
	if (!json_is_object(payload)) {
		tpl_problem(rep, NULL, "the payload must be a JSON object");
		return rep->count - before;
	}
	switch (p) {
	case TPL_SLACK:
		slack(payload, rep);
		break;
	case TPL_DISCORD:
		discord(payload, rep);
		break;
	case TPL_TEAMS:
		teams(payload, rep);
		break;
	default:
		break;
	}
	return rep->count - before;
}
