/* The built-in renderer: one line of plain text per event, the same on
 * every platform. It stands in until the template service renders real
 * platform payloads, and keeps the pipeline usable without templates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <im/types.h>

#include "notify/notify.h"

static const char *field(const json_t *inc, const char *k, const char *def)
{
	const char *s = json_string_value(json_object_get(inc, k));
	return s && *s ? s : def;
}

/* "INC-7 [SEV-2] Checkout is down - acknowledged (ack)" */
static int line(const json_t *event, char *buf, size_t len)
{
	const json_t *inc =
	    json_object_get(json_object_get(event, "data"), "incident");
	const char *type = field(event, "type", "im.incident.update");
	const char *verb = strrchr(type, '.');
	int n = snprintf(buf, len, "%s [%s] %s - %s (%s)",
			 field(inc, "id", field(event, "subject", "INC-?")),
			 field(inc, "severity", "SEV-?"),
			 field(inc, "title", "(untitled)"),
			 field(inc, "status", "?"), verb ? verb + 1 : type);
	const char *url = field(inc, "url", NULL);
	if (url && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " %s", url);
	return n;
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
	if (strcmp(event_type, "digest") != 0) {
		char text[1024];
		line(context, text, sizeof(text));
		*payload = json_pack("{s:s}", "text", text);
		return *payload ? 0 : IM_ENOMEM;
	}
	const json_t *events = json_object_get(context, "events");
	size_t n = json_array_size(events), cap = 128 + n * 512, used = 0;
	char *text = malloc(cap);
	if (!text)
		return IM_ENOMEM;
	used = (size_t)snprintf(text, cap, "%zu incident updates:", n);
	size_t i;
	const json_t *ev;
	json_array_foreach(events, i, ev)
	{
		char one[1024];
		line(ev, one, sizeof(one));
		if (used < cap)
			used += (size_t)snprintf(text + used, cap - used,
						 "\n- %.500s", one);
	}
	*payload = json_pack("{s:s,s:I}", "text", text, "count", (json_int_t)n);
	free(text);
	return *payload ? 0 : IM_ENOMEM;
}
