/* The built-in renderer: one line of plain text per event, the same on
 * every platform. core/app/render.c falls back to it when no template
 * renders an event: no template set (no connector could send at the last
 * reload), no template for the platform, or a template that failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <im/types.h>

#include "buf/buf.h"
#include "notify/notify.h"

static const char *field(const json_t *inc, const char *k, const char *def)
{
	const char *s = json_string_value(json_object_get(inc, k));
	return s && *s ? s : def;
}

/* "INC-7 [SEV-2] Checkout is down - acknowledged (ack) <url>": whole
 * strings only, so the text stays valid UTF-8. */
static void line(im_buf *b, const json_t *event)
{
	const json_t *inc =
	    json_object_get(json_object_get(event, "data"), "incident");
	const char *type = field(event, "type", "im.incident.update");
	const char *verb = strrchr(type, '.');
	im_buf_printf(b, "%s [%s] %s - %s (%s)",
		      field(inc, "id", field(event, "subject", "INC-?")),
		      field(inc, "severity", "SEV-?"),
		      field(inc, "title", "(untitled)"),
		      field(inc, "status", "?"), verb ? verb + 1 : type);
	const char *url = field(inc, "url", NULL);
	if (url)
		im_buf_printf(b, " %s", url);
}

int im_notify_render_basic(void *ud, const char *platform,
			   const char *event_type, const json_t *context,
			   json_t **payload, char *err, size_t errlen)
{
	*payload = NULL;
	if (!json_is_object(context)) {
		snprintf(err, errlen, "no context to render");
		return IM_EINVAL;
	}
	im_buf b = IM_BUF_INIT;
	size_t n = 0;
	if (strcmp(event_type, "digest") != 0) {
		line(&b, context);
	} else {
		const json_t *events = json_object_get(context, "events");
		n = json_array_size(events);
		im_buf_printf(&b, "%zu incident updates:", n);
		size_t i;
		const json_t *ev;
		json_array_foreach(events, i, ev)
		{
			im_buf_puts(&b, "\n- ");
			line(&b, ev);
		}
	}
	char *text = im_buf_take(&b, NULL);
	if (!text)
		return IM_ENOMEM;
	*payload = strcmp(event_type, "digest")
		       ? json_pack("{s:s}", "text", text)
		       : json_pack("{s:s,s:I}", "text", text, "count",
				   (json_int_t)n);
	free(text);
	if (!*payload)
		snprintf(err, errlen, "the text is not valid UTF-8");
	return *payload ? 0 : IM_EINVAL;
}
