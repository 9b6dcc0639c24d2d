/* Conversation references learnt from activities; see refs.h. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <im/types.h>

#include "refs.h"

#define KV_KEY "conversations"
#define SEEN_EVERY_S 3600 /* "seen" alone is stored at most hourly */

struct tms_refs {
	tms_kv kv;
	pthread_mutex_t mu;
	json_t *map; /* id -> reference */
};

tms_refs *tms_refs_new(const tms_kv *kv)
{
	tms_refs *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (kv)
		r->kv = *kv;
	pthread_mutex_init(&r->mu, NULL);
	char *v = NULL;
	if (r->kv.get && r->kv.get(r->kv.ud, KV_KEY, &v) == 0 && v) {
		json_t *m = json_loads(v, 0, NULL);
		if (json_is_object(m))
			r->map = m;
		else
			json_decref(m);
	}
	free(v);
	if (!r->map && !(r->map = json_object())) {
		tms_refs_free(r);
		return NULL;
	}
	return r;
}

void tms_refs_free(tms_refs *r)
{
	if (!r)
		return;
	json_decref(r->map);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && *s ? s : NULL;
}

static const char *path(const json_t *o, const char *a, const char *b)
{
	return str(json_object_get(o, a), b);
}

/* Whether `who` (an activity's membersAdded/Removed) names the bot. */
static bool names_bot(const json_t *members, const char *bot)
{
	size_t i;
	const json_t *m;
	json_array_foreach(members, i, m) if (bot && str(m, "id") &&
					      !strcmp(str(m, "id"), bot)) return true;
	return false;
}

/* Sets key to the string s (when s is set) in ref; true when it changed. */
static bool set_str(json_t *ref, const char *key, const char *s)
{
	if (!s)
		return false;
	const char *old = str(ref, key);
	if (old && !strcmp(old, s))
		return false;
	json_object_set_new(ref, key, json_string(s));
	return true;
}

static bool set_bool(json_t *ref, const char *key, bool v)
{
	json_t *old = json_object_get(ref, key);
	if (json_is_boolean(old) && json_is_true(old) == v)
		return false;
	json_object_set_new(ref, key, json_boolean(v));
	return true;
}

static void evict_oldest(json_t *map)
{
	while (json_object_size(map) > TMS_REFS_MAX) {
		const char *k, *oldest = NULL;
		json_int_t least = 0;
		json_t *v;
		json_object_foreach(map, k, v)
		{
			json_int_t s = json_integer_value(
			    json_object_get(v, "seen"));
			if (!oldest || s < least) {
				oldest = k;
				least = s;
			}
		}
		char *key = strdup(oldest);
		if (!key)
			return;
		json_object_del(map, key);
		free(key);
	}
}

static int store(tms_refs *r)
{
	if (!r->kv.put)
		return 0;
	char *text = json_dumps(r->map, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = text ? r->kv.put(r->kv.ud, KV_KEY, text) : IM_ENOMEM;
	free(text);
	return rc;
}

/* The bot's installation in a whole team changed: every channel of it. */
static bool set_team_installed(json_t *map, const char *team, bool on)
{
	bool changed = false;
	const char *k;
	json_t *v;
	json_object_foreach(map, k, v) if (team && str(v, "team_id") &&
					   !strcmp(str(v, "team_id"), team))
	    changed |= set_bool(v, "installed", on);
	return changed;
}

int tms_refs_learn(tms_refs *r, const json_t *a, time_t now)
{
	const char *surl = str(a, "serviceUrl");
	if (!r || !json_is_object(a) || !surl ||
	    (strncmp(surl, "https://", 8) && strncmp(surl, "http://", 7)))
		return 0;
	const json_t *cd = json_object_get(a, "channelData");
	const json_t *conv = json_object_get(a, "conversation");
	const char *type = str(a, "type"), *event = str(cd, "eventType");
	const char *team = path(cd, "team", "id");
	const char *chan = path(cd, "channel", "id");
	char id[512];
	const char *cid = chan ? chan : str(conv, "id");
	if (!cid || strlen(cid) >= sizeof id)
		return 0;
	/* A channel thread ("...;messageid=1") belongs to its channel. */
	size_t n = strcspn(cid, ";");
	memcpy(id, cid, n);
	id[n] = '\0';
	bool installed = true, removed = false, whole_team = false;
	if (type && !strcmp(type, "installationUpdate")) {
		const char *act = str(a, "action");
		installed = !(act && !strncmp(act, "remove", 6));
		whole_team = team != NULL;
	} else if (type && !strcmp(type, "conversationUpdate") && event) {
		const char *bot = path(a, "recipient", "id");
		if (!strcmp(event, "channelDeleted"))
			removed = true;
		else if (!strcmp(event, "teamMemberRemoved") &&
			 names_bot(json_object_get(a, "membersRemoved"), bot))
			installed = false, whole_team = true;
		else if (!strcmp(event, "teamMemberAdded") &&
			 names_bot(json_object_get(a, "membersAdded"), bot))
			whole_team = true;
	}
	pthread_mutex_lock(&r->mu);
	bool changed = false;
	if (removed) {
		changed = json_object_get(r->map, id) != NULL;
		json_object_del(r->map, id);
	} else {
		json_t *ref = json_object_get(r->map, id);
		if (!ref) {
			ref = json_object();
			json_object_set_new(r->map, id, ref);
			changed = true;
		}
		changed |= set_str(ref, "service_url", surl);
		changed |= set_str(ref, "tenant",
				   path(cd, "tenant", "id")
				       ? path(cd, "tenant", "id")
				       : str(conv, "tenantId"));
		changed |= set_str(ref, "team_id", team);
		changed |= set_str(ref, "team_name", path(cd, "team", "name"));
		changed |= set_str(ref, "name", path(cd, "channel", "name"));
		changed |= set_str(ref, "type",
				   str(conv, "conversationType")
				       ? str(conv, "conversationType")
				   : chan ? "channel"
					  : "personal");
		changed |= set_bool(ref, "installed", installed);
		if (whole_team)
			changed |= set_team_installed(r->map, team, installed);
		json_int_t seen =
		    json_integer_value(json_object_get(ref, "seen"));
		if (changed || now - seen >= SEEN_EVERY_S) {
			json_object_set_new(ref, "seen", json_integer(now));
			changed = true;
		}
		evict_oldest(r->map);
	}
	int rc = changed ? store(r) : 0;
	pthread_mutex_unlock(&r->mu);
	return rc ? rc : changed;
}

json_t *tms_refs_find(tms_refs *r, const char *id)
{
	if (!r || !id)
		return NULL;
	char base[512];
	size_t n = strcspn(id, ";");
	if (n >= sizeof base)
		return NULL;
	memcpy(base, id, n);
	base[n] = '\0';
	pthread_mutex_lock(&r->mu);
	json_t *ref = json_deep_copy(json_object_get(r->map, base));
	pthread_mutex_unlock(&r->mu);
	return ref;
}

static int by_team_then_name(const void *x, const void *y)
{
	const json_t *a = *(const json_t *const *)x;
	const json_t *b = *(const json_t *const *)y;
	const char *ta = str(a, "team_name"), *tb = str(b, "team_name");
	int c = strcmp(ta ? ta : "", tb ? tb : "");
	if (c)
		return c;
	const char *na = str(a, "name"), *nb = str(b, "name");
	c = strcmp(na ? na : "", nb ? nb : "");
	return c ? c : strcmp(str(a, "id"), str(b, "id"));
}

json_t *tms_refs_list(tms_refs *r)
{
	json_t *out = json_array();
	if (!r || !out)
		return out;
	pthread_mutex_lock(&r->mu);
	size_t n = json_object_size(r->map), i = 0;
	json_t **v = calloc(n ? n : 1, sizeof(*v));
	const char *k;
	json_t *ref;
	json_object_foreach(r->map, k, ref)
	{
		if (!v)
			break;
		v[i] = json_deep_copy(ref);
		json_object_set_new(v[i], "id", json_string(k));
		i++;
	}
	pthread_mutex_unlock(&r->mu);
	if (v) {
		qsort(v, i, sizeof(*v), by_team_then_name);
		for (size_t j = 0; j < i; j++)
			json_array_append_new(out, v[j]);
	}
	free(v);
	return out;
}
