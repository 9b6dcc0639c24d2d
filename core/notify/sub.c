/* One subscription: parsing and checking what a user or the config says,
 * matching an event, and its JSON form. No shared state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "incident/incident.h"
#include "notify/internal.h"

static const char *const mode_names[] = {"update", "thread", "post"};

char nt_sub_mode_char(const char *m)
{
	return !strcmp(m, "thread") ? 't' : !strcmp(m, "post") ? 'p' : 'u';
}

const char *nt_sub_mode_name(char m)
{
	return m == 't'	  ? mode_names[1]
	       : m == 'p' ? mode_names[2]
			  : mode_names[0];
}

void nt_sub_clear(nt_sub *s)
{
	free(s->connector);
	free(s->channel);
	free(s->where);
	free(s->problem);
	json_decref(s->events);
	json_decref(s->services);
	memset(s, 0, sizeof(*s));
}

static bool strings_only(const json_t *a)
{
	size_t i;
	const json_t *v;
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) || !*json_string_value(v))
			return false;
	}
	return true;
}

/* A channel is an id (C0123ABC, 1234567890, 19:abc@thread.tacv2): names
 * change, ids do not, so "#general" is refused rather than guessed. */
static int check_channel(const char *ch, char *err, size_t errlen)
{
	if (!ch || !*ch) {
		snprintf(err, errlen,
			 "channel is required: the platform's "
			 "channel id, e.g. C0123ABC");
		return IM_EINVAL;
	}
	if (ch[0] == '#') {
		snprintf(err, errlen,
			 "channel '%.80s' is a channel name; use the channel "
			 "id (e.g. C0123ABC; `im chatops <platform> "
			 "list-channels` shows them), because names change",
			 ch);
		return IM_EINVAL;
	}
	if (strlen(ch) > 200 || strpbrk(ch, " \t\r\n/")) {
		snprintf(err, errlen, "channel '%.80s' is not a channel id",
			 ch);
		return IM_EINVAL;
	}
	return 0;
}

int nt_sub_parse(const json_t *j, nt_sub *out, char *err, size_t errlen)
{
	static const char *const known[] = {
	    "connector", "channel", "events", "min_severity",
	    "services",	 "mode",    NULL};
	memset(out, 0, sizeof(*out));
	if (!json_is_object(j)) {
		snprintf(err, errlen, "expected a JSON object");
		return IM_EINVAL;
	}
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)j, key, v)
	{
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = !strcmp(*k, key);
		if (!ok) {
			snprintf(
			    err, errlen,
			    "unknown field '%.60s'; known: connector, "
			    "channel, events, min_severity, services, mode",
			    key);
			return IM_EINVAL;
		}
	}
	const char *conn = json_string_value(json_object_get(j, "connector"));
	const char *ch = json_string_value(json_object_get(j, "channel"));
	const json_t *ev = json_object_get(j, "events");
	const json_t *sv = json_object_get(j, "services");
	const json_t *ms = json_object_get(j, "min_severity");
	const json_t *md = json_object_get(j, "mode");
	if (!conn || !*conn) {
		snprintf(err, errlen,
			 "connector is required: the id of a "
			 "connector instance (see im plugins list)");
		return IM_EINVAL;
	}
	if (check_channel(ch, err, errlen))
		return IM_EINVAL;
	if (ev && !json_is_null(ev) &&
	    (!json_is_array(ev) || !strings_only(ev))) {
		snprintf(err, errlen,
			 "events must be a list of event type "
			 "patterns such as \"im.incident.*\"");
		return IM_EINVAL;
	}
	if (sv && !json_is_null(sv) &&
	    (!json_is_array(sv) || !strings_only(sv))) {
		snprintf(err, errlen,
			 "services must be a list of service "
			 "names ([] = all)");
		return IM_EINVAL;
	}
	int sev = 4;
	if (ms && !json_is_null(ms) &&
	    !(sev = im_inc_sev_parse(json_string_value(ms)))) {
		snprintf(err, errlen,
			 "min_severity must be SEV-1, SEV-2, SEV-3 "
			 "or SEV-4");
		return IM_EINVAL;
	}
	const char *mode = json_string_value(md);
	if (md && !json_is_null(md) &&
	    (!mode || (strcmp(mode, "update") && strcmp(mode, "thread") &&
		       strcmp(mode, "post")))) {
		snprintf(err, errlen, "mode must be update, thread or post");
		return IM_EINVAL;
	}
	out->connector = strdup(conn);
	out->channel = strdup(ch);
	out->events = json_is_array(ev) && json_array_size(ev)
			  ? json_deep_copy(ev)
			  : json_pack("[s]", "im.incident.*");
	out->services = json_is_array(sv) ? json_deep_copy(sv) : json_array();
	for (int k = 1; k <= sev; k++)
		out->sev_mask |= 1u << k;
	out->mode = mode ? nt_sub_mode_char(mode) : 'u';
	if (!out->connector || !out->channel || !out->events ||
	    !out->services) {
		nt_sub_clear(out);
		snprintf(err, errlen, "out of memory");
		return IM_ENOMEM;
	}
	return 0;
}

const char *nt_sub_instance_problem(const im_snapshot *snap,
				    const json_t *known, const char *id,
				    char *buf, size_t len)
{
	if (!snap) {
		size_t i;
		const json_t *v;
		json_array_foreach(known, i, v)
		{
			if (!strcmp(json_string_value(v), id))
				return NULL;
		}
		snprintf(buf, len, "unknown connector instance '%.64s'", id);
		return buf;
	}
	im_instance *in = im_snapshot_find(snap, id);
	if (!in) {
		char list[256] = "";
		for (size_t k = 0; k < snap->n; k++)
			if (snap->insts[k]->mod &&
			    snap->insts[k]->mod->n_connectors &&
			    strlen(list) + strlen(snap->insts[k]->id) + 3 <
				sizeof(list))
				snprintf(list + strlen(list),
					 sizeof(list) - strlen(list), "%s%s",
					 *list ? ", " : "", snap->insts[k]->id);
		snprintf(buf, len,
			 "unknown connector instance '%.64s'; connector "
			 "instances: %s",
			 id,
			 *list ? list
			       : "none (add one under "
				 "plugins.instances)");
		return buf;
	}
	if (!in->mod || in->mod->n_connectors == 0) {
		snprintf(buf, len,
			 "instance '%.64s' (module %.64s) is not a chat "
			 "connector%s",
			 id, in->module_name,
			 in->mod ? "" : ": its module did not load");
		return buf;
	}
	if (!im_instance_connector(in)->send) {
		snprintf(buf, len,
			 "connector '%.64s' (platform %.32s) cannot send "
			 "notifications: its plugin has no send(); "
			 "subscription skipped",
			 id, im_instance_connector(in)->platform);
		return buf;
	}
	return NULL;
}

bool nt_sub_matches(const nt_sub *s, const char *type, int sev,
		    const char *service)
{
	if (s->problem || sev < 1 || sev > 4 || !(s->sev_mask & (1u << sev)))
		return false;
	bool audit = strstr(type, ".audit") != NULL, hit = false;
	size_t i;
	const json_t *v;
	json_array_foreach(s->events, i, v)
	{
		const char *p = json_string_value(v);
		/* Audit records (denied commands) are not news for a
		 * channel: only a pattern that names them gets them. */
		if (audit && !strstr(p, "audit"))
			continue;
		if (im_bus_glob(p, type)) {
			hit = true;
			break;
		}
	}
	if (!hit)
		return false;
	if (json_array_size(s->services) == 0)
		return true;
	json_array_foreach(s->services, i, v)
	{
		if (service && !strcmp(json_string_value(v), service))
			return true;
	}
	return false;
}

/* --- loading ------------------------------------------------------------- */

json_t *nt_sub_json(const nt_sub *s)
{
	static const char *const src[] = {"config", "api", "instance"};
	json_t *sevs = json_array();
	int min = 0;
	for (int k = 1; k <= 4; k++)
		if (s->sev_mask & (1u << k)) {
			json_array_append_new(sevs,
					      json_string(im_inc_sev_name(k)));
			min = k;
		}
	json_t *o = json_pack(
	    "{s:o,s:s,s:s,s:s,s:O,s:s?,s:o,s:O,s:s,s:b}", "id",
	    s->id ? json_integer(s->id) : json_null(), "source", src[s->source],
	    "connector", s->connector, "channel", s->channel, "events",
	    s->events, "min_severity", min ? im_inc_sev_name(min) : NULL,
	    "severities", sevs, "services", s->services, "mode",
	    nt_sub_mode_name(s->mode), "active", s->problem == NULL);
	if (o && s->where)
		json_object_set_new(o, "where", json_string(s->where));
	if (o && s->problem)
		json_object_set_new(o, "problem", json_string(s->problem));
	return o;
}
