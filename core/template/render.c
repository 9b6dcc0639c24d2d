/* Rendering one template: escape the context, run the engine in JSON
 * mode, parse, apply the platform limits the connector declared; fall back to the default when
 * an override fails. Problems name the template file and line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "template/internal.h"

static void report(tpl_report *rep, const char *file, unsigned line,
		   const char *msg)
{
	char buf[1200];
	snprintf(buf, sizeof(buf), "%s:%u: %s", file ? file : "?", line, msg);
	if (rep->list)
		json_array_append_new(rep->list, json_string(buf));
	if (rep->first && rep->firstlen && !rep->count)
		snprintf(rep->first, rep->firstlen, "%s", buf);
	rep->count++;
}

unsigned tpl_find_line(const tpl_variant *v, const char *needle,
		       const char **file)
{
	*file = v->n_srcs ? v->srcs[0].file : v->file;
	if (!needle || !*needle)
		return 1;
	size_t nl = strlen(needle);
	for (size_t s = 0; s < v->n_srcs; s++) {
		const char *t = v->srcs[s].text, *end = t + v->srcs[s].len;
		unsigned line = 1;
		while (t < end) {
			const char *eol = memchr(t, '\n', (size_t)(end - t));
			size_t n = eol ? (size_t)(eol - t) : (size_t)(end - t);
			if (memmem(t, n, needle, nl)) {
				*file = v->srcs[s].file;
				return line;
			}
			line++;
			t += n + 1;
		}
	}
	return 1;
}

void tpl_problem(tpl_report *rep, const char *needle, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const char *file = NULL;
	unsigned line = rep->v ? tpl_find_line(rep->v, needle, &file) : 1;
	report(rep, file, line, msg);
}

/* Whether the literal parts of template line `t` (tags cut out) all occur,
 * in order, in output line `o`; *weight is how much literal text that is. */
static bool literals_match(const char *t, size_t tn, const char *o, size_t on,
			   size_t *weight)
{
	size_t at = 0, i = 0;
	*weight = 0;
	while (i < tn) {
		const char *open = memmem(t + i, tn - i, "{{", 2);
		size_t lit_end = open ? (size_t)(open - t) : tn;
		size_t a = i, b = lit_end;
		while (a < b && (t[a] == ' ' || t[a] == '\t'))
			a++;
		while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t' ||
				 t[b - 1] == '\r'))
			b--;
		if (b > a) {
			const char *hit = at <= on ? memmem(o + at, on - at,
							    t + a, b - a)
						   : NULL;
			if (!hit)
				return false;
			at = (size_t)(hit - o) + (b - a);
			*weight += b - a;
		}
		if (!open)
			break;
		const char *close = memmem(open + 2, tn - (lit_end + 2), "}}",
					   2);
		if (!close)
			break;
		i = (size_t)(close - t) + 2;
		if (i < tn && t[i] == '}')
			i++;
	}
	return true;
}

/* Maps output line `line` back to the template line it most likely came
 * from (the one whose literal text matches it best). 0 when unsure. */
static unsigned map_line(const tpl_variant *v, const char *out, size_t len,
			 int line, const char **file)
{
	const char *o = out, *end = out + len;
	for (int l = 1; l < line && o < end; l++) {
		const char *nl = memchr(o, '\n', (size_t)(end - o));
		o = nl ? nl + 1 : end;
	}
	const char *oe = memchr(o, '\n', (size_t)(end - o));
	size_t on = oe ? (size_t)(oe - o) : (size_t)(end - o);
	unsigned found = 0;
	size_t best = 2; /* at least 3 characters of literal text */
	for (size_t s = 0; s < v->n_srcs; s++) {
		const char *t = v->srcs[s].text, *te = t + v->srcs[s].len;
		for (unsigned l = 1; t < te; l++) {
			const char *nl = memchr(t, '\n', (size_t)(te - t));
			size_t tn = nl ? (size_t)(nl - t) : (size_t)(te - t);
			size_t w;
			if (literals_match(t, tn, o, on, &w) && w > best) {
				best = w;
				found = l;
				*file = v->srcs[s].file;
			}
			t += tn + 1;
		}
	}
	return found;
}

int tpl_render_variant(const tpl_variant *v, const tpl_rules *r,
		       const json_t *prepared, json_t **payload,
		       tpl_report *rep)
{
	char *out = NULL, msg[600];
	size_t len = 0;
	*payload = NULL;
	int rc = v->fmt->render(v->fstate, v->tpl, prepared, IM_ESCAPE_JSON,
				&out, &len);
	if (rc != 0) {
		snprintf(msg, sizeof(msg), "the %s engine could not render it "
					   "(error %d)", v->engine, rc);
		report(rep, v->file, 1, msg);
		return rc;
	}
	json_error_t je;
	json_t *pl = json_loadb(out, len, JSON_REJECT_DUPLICATES, &je);
	if (!pl) {
		const char *file = v->file;
		unsigned line = map_line(v, out, len, je.line, &file);
		snprintf(msg, sizeof(msg),
			 "the output is not valid JSON: %s (rendered line %d, "
			 "column %d)",
			 je.text, je.line, je.column);
		report(rep, file, line ? line : 1, msg);
		free(out);
		return IM_EINVAL;
	}
	free(out);
	if (tpl_enforce(r, pl, rep) > 0) {
		json_decref(pl);
		return IM_EINVAL;
	}
	*payload = pl;
	return 0;
}

int im_template_render(const im_template_set *set, const char *platform,
		       const char *event, const json_t *context,
		       json_t **payload, char *err, size_t errlen)
{
	*payload = NULL;
	const tpl_entry *e = tpl_find(set, platform, event);
	if (!e) {
		snprintf(err, errlen, "no template %s/%s; see `im chatops "
				      "templates list`",
			 platform ? platform : "?", event ? event : "?");
		return IM_ENOTFOUND;
	}
	const tpl_variant *v = tpl_active(e);
	if (!v) {
		const char *why = e->over.error ? e->over.error : e->def.error;
		snprintf(err, errlen, "%s", why ? why : "no usable template");
		tpl_count_error(e->name);
		return IM_EINVAL;
	}
	const tpl_rules *r = tpl_rules_of(set, e->platform);
	json_t *prep = tpl_prepare_context(r, context);
	if (!prep) {
		snprintf(err, errlen, "out of memory");
		return IM_ENOMEM;
	}
	char first[1200] = "";
	tpl_report rep = {.v = v, .first = first, .firstlen = sizeof(first)};
	int rc = tpl_render_variant(v, r, prep, payload, &rep);
	if (rc != 0 && v == &e->over && e->def.tpl) {
		LOG_WARN("templates", "%s; using the default %s", first,
			 e->def.file);
		tpl_count_error(e->name);
		tpl_report again = {.v = &e->def, .first = first,
				    .firstlen = sizeof(first)};
		rc = tpl_render_variant(&e->def, r, prep, payload, &again);
	}
	if (rc != 0) {
		tpl_count_error(e->name);
		snprintf(err, errlen, "%s", first[0] ? first : "render failed");
	}
	json_decref(prep);
	return rc;
}
