/* Platform limits of rendered payloads: the connector's fit_payload holds
 * a payload to them with what the host lends it here (im_payload_ops): a
 * character count, the safe cut of escape.c and a problem() that feeds
 * the template's report, so problems name the template file and line. */
#include <stdarg.h>
#include <stdio.h>

#include "template/internal.h"

typedef struct fit_ctx {
	const tpl_rules *r;
	tpl_report *rep;
} fit_ctx;

static size_t op_length(const json_t *text)
{
	return json_is_string(text) ? tpl_utf8_len(json_string_value(text),
						   json_string_length(text))
				    : 0;
}

static int op_cut(const im_payload_ops *ops, json_t *text, size_t max)
{
	const fit_ctx *c = ops ? ops->host_private : NULL;
	if (!c || !json_is_string(text))
		return 0;
	return tpl_truncate(text, max, c->r);
}

static void op_problem(const im_payload_ops *ops, const char *near,
		       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void op_problem(const im_payload_ops *ops, const char *near,
		       const char *fmt, ...)
{
	const fit_ctx *c = ops ? ops->host_private : NULL;
	if (!c || !fmt)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tpl_problem(c->rep, near, "%s", msg);
}

int tpl_enforce(const tpl_rules *r, json_t *payload, tpl_report *rep)
{
	int before = rep->count;
	if (!json_is_object(payload)) {
		tpl_problem(rep, NULL, "the payload must be a JSON object");
		return rep->count - before;
	}
	if (!r || !r->fit)
		return 0;
	fit_ctx c = {.r = r, .rep = rep};
	im_payload_ops ops = {
	    .struct_size = sizeof(ops),
	    .validating = rep->validate,
	    .length = op_length,
	    .cut = op_cut,
	    .problem = op_problem,
	    .host_private = &c,
	};
	int rc = r->fit(payload, &ops);
	if (rc != 0 && rep->count == before)
		tpl_problem(rep, NULL,
			    "the %s connector could not check the payload "
			    "(error %d)",
			    r->platform, rc);
	return rep->count - before;
}
