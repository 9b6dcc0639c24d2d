/* The reply a command component builds through the host. */
#include <stdlib.h>
#include <string.h>

#include "command/command.h"

struct im_reply {
	char *text;
	int visibility;
	json_t *fields;
	json_t *actions;
	bool may_wait;              /* a write may answer it later */
	struct im_cmd_later *later; /* ... and one does */
};

im_reply *im_reply_new(void)
{
	im_reply *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->fields = json_array();
	r->actions = json_array();
	if (!r->fields || !r->actions) {
		im_reply_free(r);
		return NULL;
	}
	return r;
}

void im_reply_free(im_reply *r)
{
	if (!r)
		return;
	free(r->text);
	json_decref(r->fields);
	json_decref(r->actions);
	free(r);
}

int im_reply_set_text(im_reply *r, const char *markdown)
{
	if (!r || !markdown)
		return IM_EINVAL;
	char *t = strdup(markdown);
	if (!t)
		return IM_ENOMEM;
	free(r->text);
	r->text = t;
	return 0;
}

int im_reply_set_visibility(im_reply *r, int visibility)
{
	if (!r || (visibility != IM_REPLY_EPHEMERAL &&
		   visibility != IM_REPLY_IN_CHANNEL))
		return IM_EINVAL;
	r->visibility = visibility;
	return 0;
}

int im_reply_add_field(im_reply *r, const char *title, const char *value,
		       int is_short)
{
	if (!r || !title || !value || json_array_size(r->fields) >= 25)
		return IM_EINVAL;
	return json_array_append_new(r->fields,
				     json_pack("{s:s,s:s,s:b}", "title", title,
					       "value", value, "short",
					       is_short))
		   ? IM_ENOMEM
		   : 0;
}

int im_reply_add_action(im_reply *r, const char *action_id, const char *label,
			const char *value, const char *style)
{
	if (!r || !action_id || !label || json_array_size(r->actions) >= 5)
		return IM_EINVAL;
	return json_array_append_new(
		   r->actions, json_pack("{s:s,s:s,s:s?,s:s?}", "id", action_id,
					 "label", label, "value", value,
					 "style", style))
		   ? IM_ENOMEM
		   : 0;
}

json_t *im_reply_json(const im_reply *r, const char *status)
{
	if (!r)
		return json_pack("{s:s,s:s,s:[],s:[],s:s}", "text", "",
				 "visibility", "ephemeral", "fields", "actions",
				 "status", status ? status : "ok");
	return json_pack("{s:s,s:s,s:O,s:O,s:s}", "text",
			 r->text ? r->text : "", "visibility",
			 r->visibility == IM_REPLY_IN_CHANNEL ? "in_channel"
							      : "ephemeral",
			 "fields", r->fields, "actions", r->actions, "status",
			 status ? status : "ok");
}

const char *im_reply_text(const im_reply *r)
{
	return r && r->text ? r->text : "";
}

void im_reply_allow_wait(im_reply *r)
{
	if (r)
		r->may_wait = true;
}

bool im_reply_wait_on(im_reply *r, struct im_cmd_later *l)
{
	if (r && !l) {
		r->later = NULL;
		return true;
	}
	if (!r || !r->may_wait || r->later)
		return false;
	r->later = l;
	return true;
}

struct im_cmd_later *im_reply_later(const im_reply *r)
{
	return r ? r->later : NULL;
}
