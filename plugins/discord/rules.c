/* Discord's message rules for the host's template service: markdown
 * escaping (a backslash before \ * _ ~ ` | > # - [ ] ( )), mention
 * defusing (@everyone, @here, <@...>, <#...>, emoji and timestamp tags
 * get a zero-width space), the per-severity emoji and embed colours, and
 * the embed and component limits (fit_payload). */
#include <string.h>

#include "discord.h"

#define TOTAL_MAX 6000

static const char *const defuse[] = {"@everyone", "@here", "<@", "<#",
				     "<:",	  "</",	   "<!", "<t:",
				     "<a:",	  NULL};
static const char *const mentions[] = {"@everyone", "@here", "<@", NULL};
static const char *const emoji[] = {"\xe2\x9d\x94", "\xf0\x9f\x94\xb4",
				    "\xf0\x9f\x9f\xa0", "\xf0\x9f\x9f\xa1",
				    "\xe2\x9a\xaa"};
static const int64_t colors[] = {9807270, 15158332, 15105570, 15844367,
				 9807270};

const im_platform_rules dsc_rules = {
    .struct_size = sizeof(im_platform_rules),
    .backslash = "\\*_~`|>#-[]()",
    .defuse = defuse,
    .mentions = mentions,
    .severity_emoji = emoji,
    .severity_color = colors,
};

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void cut_key(const im_payload_ops *ops, json_t *o, const char *key,
		    size_t max)
{
	json_t *s = json_object_get(o, key);
	if (json_is_string(s))
		ops->cut(ops, s, max);
}

static void cut_array(json_t *a, size_t max)
{
	while (json_array_size(a) > max)
		json_array_remove(a, json_array_size(a) - 1);
}

static void embed(json_t *e, const im_payload_ops *ops)
{
	cut_key(ops, e, "title", 256);
	cut_key(ops, e, "description", 4096);
	cut_key(ops, json_object_get(e, "footer"), "text", 2048);
	cut_key(ops, json_object_get(e, "author"), "name", 256);
	json_t *color = json_object_get(e, "color");
	if (color && (!json_is_integer(color) ||
		      json_integer_value(color) < 0 ||
		      json_integer_value(color) > 0xFFFFFF))
		ops->problem(ops, "color", "embed color must be an integer "
					   "0..16777215");
	json_t *fields = json_object_get(e, "fields"), *f;
	cut_array(fields, 25);
	size_t i;
	json_array_foreach(fields, i, f)
	{
		if (!ops->length(json_object_get(f, "name")) ||
		    !ops->length(json_object_get(f, "value")))
			ops->problem(ops, "fields", "embed field name and "
						    "value must not be empty");
		cut_key(ops, f, "name", 256);
		cut_key(ops, f, "value", 1024);
	}
}

/* Every text counting toward the 6000-character total of all embeds. */
static size_t texts_of(json_t *embeds, json_t **out, size_t max)
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
static void total(json_t *embeds, const im_payload_ops *ops)
{
	json_t *texts[10 * 54];
	size_t n = texts_of(embeds, texts, 10 * 54);
	for (int round = 0; round < 64; round++) {
		size_t sum = 0, best = 0;
		for (size_t i = 0; i < n; i++) {
			sum += ops->length(texts[i]);
			if (ops->length(texts[i]) > ops->length(texts[best]))
				best = i;
		}
		if (sum <= TOTAL_MAX || !n)
			return;
		size_t len = ops->length(texts[best]), excess = sum - TOTAL_MAX;
		size_t keep = len > excess + 1 ? len - excess : len / 2;
		if (!ops->cut(ops, texts[best], keep ? keep : 1))
			return;
	}
}

static void components(json_t *rows, const im_payload_ops *ops)
{
	if (json_array_size(rows) > 5)
		ops->problem(ops, "components", "at most 5 action rows");
	size_t i, k;
	json_t *row, *c;
	json_array_foreach(rows, i, row)
	{
		json_t *list = json_object_get(row, "components");
		if (json_integer_value(json_object_get(row, "type")) != 1 ||
		    json_array_size(list) > 5)
			ops->problem(ops, "components",
				     "components must be action rows (type 1) "
				     "of at most 5 buttons");
		json_array_foreach(list, k, c)
		{
			cut_key(ops, c, "label", 80);
			json_int_t style =
			    json_integer_value(json_object_get(c, "style"));
			size_t id = ops->length(json_object_get(c, "custom_id"));
			if (style != 5 && (id == 0 || id > 100))
				ops->problem(ops, "custom_id",
					     "a button needs a custom_id of "
					     "1-100 characters");
			if (style == 5 && !str(c, "url"))
				ops->problem(ops, "components",
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

int dsc_fit_payload(json_t *p, const im_payload_ops *ops)
{
	if (!ops || ops->struct_size < sizeof(im_payload_ops))
		return IM_EVERSION;
	cut_key(ops, p, "content", 2000);
	json_t *embeds = json_object_get(p, "embeds"), *e;
	if (embeds && !json_is_array(embeds))
		ops->problem(ops, "embeds", "embeds must be a list");
	cut_array(embeds, 10);
	size_t i;
	json_array_foreach(embeds, i, e)
		embed(e, ops);
	total(embeds, ops);
	if (!ops->length(json_object_get(p, "content")) &&
	    !json_array_size(embeds))
		ops->problem(ops, NULL,
			     "a Discord message needs content or embeds");
	components(json_object_get(p, "components"), ops);
	if (!mentions_off(json_object_get(p, "allowed_mentions"))) {
		if (ops->validating)
			ops->problem(ops, "allowed_mentions",
				     "a Discord payload must carry "
				     "\"allowed_mentions\": {\"parse\": []} "
				     "so incident text never pings anyone");
		json_object_set_new(p, "allowed_mentions",
				    json_pack("{s:[]}", "parse"));
	}
	return 0;
}
