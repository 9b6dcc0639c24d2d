/* `im chatops templates validate`: every template against sample
 * incidents, with the platform rules, strictly (no fallback, and repairs
 * that only paper over a template mistake are reported too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/internal.h"

static const char *const kinds[] = {"normal", "long", "unicode", "hostile",
				    NULL};

static bool in_sources(const tpl_variant *v, const char *needle)
{
	for (size_t i = 0; i < v->n_srcs; i++)
		if (memmem(v->srcs[i].text, v->srcs[i].len, needle,
			   strlen(needle)))
			return true;
	return false;
}

/* Incident text must never turn into a mention: the mentions the
 * platform's rules list may only appear when the template itself writes
 * them. */
static void check_mentions(const tpl_variant *v, const tpl_rules *r,
			   const json_t *payload, tpl_report *rep)
{
	const char *const *bad = r ? r->mentions : NULL;
	char *dump = bad ? json_dumps(payload, JSON_COMPACT) : NULL;
	for (size_t i = 0; dump && bad[i]; i++)
		if (*bad[i] && strstr(dump, bad[i]) && !in_sources(v, bad[i]))
			tpl_problem(rep, NULL,
				    "incident text became a live mention "
				    "(%s) with the hostile sample",
				    bad[i]);
	free(dump);
}

static void append_unique(json_t *to, const json_t *from)
{
	size_t i, k;
	json_t *x, *y;
	json_array_foreach(from, i, x)
	{
		bool seen = false;
		json_array_foreach(to, k, y) seen = seen || json_equal(x, y);
		if (!seen)
			json_array_append(to, x);
	}
}

/* Renders the entry with every sample; `found` gets one line per problem,
 * naming the samples that showed it. */
static void check_entry(const im_template_set *set, const tpl_entry *e,
			const tpl_variant *v, json_t *found)
{
	const tpl_rules *r = tpl_rules_of(set, e->platform);
	json_t *by_msg = json_object(); /* message -> "normal, long" */
	json_t *order = json_array();
	for (size_t k = 0; kinds[k]; k++) {
		json_t *ctx = im_template_sample(e->event, kinds[k],
						 set->public_url);
		json_t *prep = ctx ? tpl_prepare_context(r, ctx) : NULL;
		json_t *list = json_array(), *payload = NULL;
		tpl_report rep = {.v = v, .validate = true, .list = list};
		if (prep && tpl_render_variant(v, r, prep, &payload, &rep) == 0 &&
		    !strcmp(kinds[k], "hostile"))
			check_mentions(v, r, payload, &rep);
		size_t i;
		json_t *msg;
		json_array_foreach(list, i, msg)
		{
			const char *m = json_string_value(msg);
			const char *had = json_string_value(
			    json_object_get(by_msg, m));
			if (!had)
				json_array_append(order, msg);
			json_object_set_new(
			    by_msg, m,
			    had ? json_sprintf("%s, %s", had, kinds[k])
				: json_string(kinds[k]));
		}
		json_decref(list);
		json_decref(payload);
		json_decref(prep);
		json_decref(ctx);
	}
	size_t i;
	json_t *msg;
	json_array_foreach(order, i, msg)
	{
		const char *m = json_string_value(msg);
		json_t *line = json_sprintf(
		    "%s (sample: %s)", m,
		    json_string_value(json_object_get(by_msg, m)));
		json_t *one = json_pack("[o]", line);
		append_unique(found, one);
		json_decref(one);
	}
	json_decref(order);
	json_decref(by_msg);
}

static bool wanted(const char *platform, const char *text)
{
	if (!platform)
		return true;
	char needle[128];
	snprintf(needle, sizeof(needle), "/%s/", platform);
	return strstr(text, needle) != NULL;
}

json_t *im_template_validate(const im_template_set *set, const char *platform,
			     json_t **checked)
{
	json_t *problems = json_array(), *chk = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(set ? set->problems : NULL, i, p)
		if (wanted(platform, json_string_value(p)))
			json_array_append(problems, p);
	for (i = 0; set && i < set->n; i++) {
		const tpl_entry *e = &set->entries[i];
		if (platform && strcmp(platform, e->platform))
			continue;
		const tpl_variant *v = tpl_active(e);
		json_t *found = json_array();
		if (v)
			check_entry(set, e, v, found);
		bool ok = v && !e->over.error && !e->def.error &&
			  !json_array_size(found);
		append_unique(problems, found);
		json_decref(found);
		json_array_append_new(
		    chk, json_pack("{s:s,s:s,s:b}", "name", e->name, "file",
				   v ? v->file
				     : e->over.present ? e->over.file
						       : e->def.file,
				   "ok", ok));
	}
	if (checked)
		*checked = chk;
	else
		json_decref(chk);
	return problems;
}
