/* Subscriptions: which (connector instance, channel) hears which events.
 * Three sources, matched the same way: the YAML `subscriptions:` list,
 * each connector instance's default_channel / notification_channels
 * (severity routing), and the ones added through the admin API (stored).
 * The set is read by the outbox hook on every incident write, under the
 * store lock, so it lives in memory behind one mutex that is never held
 * while the store lock is taken. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "incident/incident.h"
#include "log/log.h"
#include "notify/internal.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static nt_sub *cfg_subs, *db_subs; /* config + instances; stored */
static size_t n_cfg, n_db;
static bool check_live = true; /* check instances in the registry */
static json_t *cfg_instances;  /* ids from the config (offline) */

static void free_list(nt_sub *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		nt_sub_clear(&v[i]);
	free(v);
}

/* A growing array of subscriptions, filled before it is published. */
typedef struct list {
	nt_sub *v;
	size_t n, cap;
} list;

static nt_sub *list_add(list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		nt_sub *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(nt_sub));
	return &l->v[l->n++];
}

static void set_problem(nt_sub *s, const im_snapshot *snap)
{
	char buf[512];
	const char *p = nt_sub_instance_problem(snap, cfg_instances,
						s->connector, buf, sizeof(buf));
	free(s->problem);
	s->problem = p ? strdup(p) : NULL;
}

static void load_yaml(list *l, const im_config *cfg, const im_snapshot *snap)
{
	size_t i;
	const json_t *j;
	json_array_foreach(im_config_get(cfg, "subscriptions"), i, j)
	{
		char path[64], err[512];
		snprintf(path, sizeof(path), "subscriptions[%zu]", i);
		const char *where = im_config_where(cfg, path);
		nt_sub s;
		if (nt_sub_parse(j, &s, err, sizeof(err)) != 0) {
			LOG_WARN("notify", "%s: %s: %s; subscription skipped",
				 where ? where : "config", path, err);
			continue;
		}
		s.source = NT_SRC_CONFIG;
		s.where = where ? strdup(where) : NULL;
		set_problem(&s, snap);
		if (s.problem)
			LOG_WARN("notify", "%s: %s.connector: %s",
				 where ? where : "config", path, s.problem);
		nt_sub *slot = list_add(l);
		if (slot)
			*slot = s;
		else
			nt_sub_clear(&s);
	}
}

/* default_channel / notification_channels of one instance's config. */
static void load_routing(list *l, const im_config *cfg, const char *id,
			 const json_t *conf, const im_snapshot *snap)
{
	const json_t *map = json_object_get(conf, "notification_channels");
	const char *def =
	    json_string_value(json_object_get(conf, "default_channel"));
	unsigned mapped = 0;
	for (int sev = 1; sev <= 4; sev++) {
		const char *ch = json_string_value(
		    json_object_get(map, im_inc_sev_name(sev)));
		unsigned bit = 1u << sev;
		if (!ch || !*ch)
			continue;
		mapped |= bit;
		json_t *j =
		    json_pack("{s:s,s:s}", "connector", id, "channel", ch);
		nt_sub s, *slot;
		char err[512], path[160];
		snprintf(path, sizeof(path),
			 "plugins.instances[%s].config.notification_channels",
			 id);
		if (nt_sub_parse(j, &s, err, sizeof(err)) == 0) {
			s.sev_mask = bit;
			s.source = NT_SRC_INSTANCE;
			const char *w = im_config_where(cfg, path);
			s.where = w ? strdup(w) : NULL;
			set_problem(&s, snap);
			if ((slot = list_add(l)))
				*slot = s;
			else
				nt_sub_clear(&s);
		} else {
			const char *w = im_config_where(cfg, path);
			LOG_WARN("notify", "%s: %s.%s: %s", w ? w : "config",
				 path, im_inc_sev_name(sev), err);
		}
		json_decref(j);
	}
	if (!def || !*def || mapped == 0x1e)
		return;
	json_t *j = json_pack("{s:s,s:s}", "connector", id, "channel", def);
	nt_sub s, *slot;
	char err[512], path[160];
	snprintf(path, sizeof(path),
		 "plugins.instances[%s].config.default_channel", id);
	const char *w = im_config_where(cfg, path);
	if (nt_sub_parse(j, &s, err, sizeof(err)) == 0) {
		s.sev_mask = 0x1e & ~mapped; /* severities not routed above */
		s.source = NT_SRC_INSTANCE;
		s.where = w ? strdup(w) : NULL;
		set_problem(&s, snap);
		if ((slot = list_add(l)))
			*slot = s;
		else
			nt_sub_clear(&s);
	} else {
		LOG_WARN("notify", "%s: %s: %s", w ? w : "config", path, err);
	}
	json_decref(j);
}

static void load_instances(list *l, const im_config *cfg,
			   const im_snapshot *snap)
{
	if (snap) {
		for (size_t k = 0; k < snap->n; k++) {
			const im_instance *in = snap->insts[k];
			if (in->mod && in->mod->n_connectors && in->config)
				load_routing(l, cfg, in->id, in->config, snap);
		}
		return;
	}
	size_t i;
	const json_t *e;
	json_array_foreach(im_config_get(cfg, "plugins.instances"), i, e)
	{
		load_routing(l, cfg,
			     json_string_value(json_object_get(e, "id")),
			     json_object_get(e, "config"), NULL);
	}
}

static int load_db(im_store *st, const im_snapshot *snap, list *l)
{
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(
		db,
		"SELECT id, connector, channel, events, "
		"min_severity, services, mode FROM subscriptions "
		"ORDER BY id",
		-1, &q, NULL) != SQLITE_OK) {
		LOG_ERROR("notify", "reading subscriptions: %s",
			  sqlite3_errmsg(db));
		im_store_read_end(st, db);
		return IM_EIO;
	}
	while (sqlite3_step(q) == SQLITE_ROW) {
		nt_sub *s = list_add(l);
		if (!s)
			break;
		s->id = sqlite3_column_int64(q, 0);
		s->source = NT_SRC_API;
		s->connector = strdup((const char *)sqlite3_column_text(q, 1));
		s->channel = strdup((const char *)sqlite3_column_text(q, 2));
		s->events = json_loads((const char *)sqlite3_column_text(q, 3),
				       0, NULL);
		int sev = sqlite3_column_int(q, 4);
		for (int k = 1; k <= sev && k <= 4; k++)
			s->sev_mask |= 1u << k;
		s->services = json_loads(
		    (const char *)sqlite3_column_text(q, 5), 0, NULL);
		s->mode =
		    nt_sub_mode_char((const char *)sqlite3_column_text(q, 6));
		if (!s->events)
			s->events = json_pack("[s]", "im.incident.*");
		if (!s->services)
			s->services = json_array();
		set_problem(s, snap);
	}
	sqlite3_finalize(q);
	im_store_read_end(st, db);
	return 0;
}

int nt_subs_refresh(im_store *st)
{
	list l = {0};
	im_snapshot *snap = check_live ? im_registry_acquire() : NULL;
	int rc = load_db(st, snap, &l);
	im_registry_release(snap);
	if (rc != 0) {
		free_list(l.v, l.n);
		return rc;
	}
	pthread_mutex_lock(&mu);
	nt_sub *old = db_subs;
	size_t n_old = n_db;
	db_subs = l.v;
	n_db = l.n;
	pthread_mutex_unlock(&mu);
	free_list(old, n_old);
	return 0;
}

int nt_subs_load(im_store *st, const im_config *cfg, bool check_instances)
{
	list l = {0};
	json_t *ids = json_array();
	size_t i;
	const json_t *e;
	json_array_foreach(im_config_get(cfg, "plugins.instances"), i, e)
	{
		json_array_append(ids, json_object_get(e, "id"));
	}
	pthread_mutex_lock(&mu);
	json_decref(cfg_instances);
	cfg_instances = ids;
	check_live = check_instances;
	pthread_mutex_unlock(&mu);
	im_snapshot *snap = check_instances ? im_registry_acquire() : NULL;
	load_yaml(&l, cfg, snap);
	load_instances(&l, cfg, snap);
	im_registry_release(snap);
	pthread_mutex_lock(&mu);
	nt_sub *old = cfg_subs;
	size_t n_old = n_cfg;
	cfg_subs = l.v;
	n_cfg = l.n;
	pthread_mutex_unlock(&mu);
	free_list(old, n_old);
	int rc = nt_subs_refresh(st);
	pthread_mutex_lock(&mu);
	for (size_t k = 0; k < n_db; k++)
		if (db_subs[k].problem)
			LOG_WARN("notify", "subscription %lld (%s %s): %s",
				 db_subs[k].id, db_subs[k].connector,
				 db_subs[k].channel, db_subs[k].problem);
	pthread_mutex_unlock(&mu);
	return rc;
}

/* --- matching and listing ------------------------------------------------ */

static bool seen_before(nt_sub *const *hits, size_t n, const nt_sub *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(hits[i]->connector, s->connector) &&
		    !strcmp(hits[i]->channel, s->channel))
			return true;
	return false;
}

int nt_subs_each_match(const char *type, int sev, const char *service,
		       int (*fn)(void *ud, const nt_sub *s), void *ud)
{
	int rc = 0;
	pthread_mutex_lock(&mu);
	size_t total = n_cfg + n_db, n = 0;
	nt_sub **hits = calloc(total ? total : 1, sizeof(*hits));
	for (size_t i = 0; hits && i < total && rc == 0; i++) {
		nt_sub *s = i < n_cfg ? &cfg_subs[i] : &db_subs[i - n_cfg];
		/* One row per channel even when several subscriptions
		 * match: the first (config before API) decides the mode. */
		if (!nt_sub_matches(s, type, sev, service) ||
		    seen_before(hits, n, s))
			continue;
		hits[n++] = s;
		rc = fn(ud, s);
	}
	pthread_mutex_unlock(&mu);
	if (!hits)
		return IM_ENOMEM;
	free(hits);
	return rc;
}

json_t *nt_subs_list(void)
{
	json_t *items = json_array();
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < n_cfg + n_db; i++)
		json_array_append_new(
		    items, nt_sub_json(i < n_cfg ? &cfg_subs[i]
						 : &db_subs[i - n_cfg]));
	pthread_mutex_unlock(&mu);
	return items;
}

/* --- API changes --------------------------------------------------------- */

int nt_subs_add(im_store *st, const json_t *body, long long *id, char *err,
		size_t errlen)
{
	nt_sub s;
	int rc = nt_sub_parse(body, &s, err, errlen);
	if (rc != 0)
		return rc;
	im_snapshot *snap = check_live ? im_registry_acquire() : NULL;
	const char *p = nt_sub_instance_problem(snap, cfg_instances,
						s.connector, err, errlen);
	im_registry_release(snap);
	if (p) {
		nt_sub_clear(&s);
		return IM_EINVAL;
	}
	char *ev = json_dumps(s.events, JSON_COMPACT);
	char *sv = json_dumps(s.services, JSON_COMPACT);
	int min = 0;
	for (int k = 1; k <= 4; k++)
		if (s.sev_mask & (1u << k))
			min = k;
	sqlite3 *db = im_store_db(st);
	sqlite3_stmt *q;
	rc = IM_EIO;
	im_store_lock(st);
	if (ev && sv &&
	    sqlite3_prepare_v2(db,
			       "INSERT INTO subscriptions(connector, channel, "
			       "events, min_severity, services, mode, "
			       "created_at) VALUES (?,?,?,?,?,?,?)",
			       -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, s.connector, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, s.channel, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, ev, -1, SQLITE_STATIC);
		sqlite3_bind_int(q, 4, min);
		sqlite3_bind_text(q, 5, sv, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 6, nt_sub_mode_name(s.mode), -1,
				  SQLITE_STATIC);
		sqlite3_bind_int64(q, 7, nt_wall_ms());
		if (sqlite3_step(q) == SQLITE_DONE) {
			*id = sqlite3_last_insert_rowid(db);
			rc = 0;
		}
		sqlite3_finalize(q);
	}
	if (rc != 0)
		snprintf(err, errlen, "storing the subscription: %s",
			 sqlite3_errmsg(db));
	im_store_unlock(st);
	free(ev);
	free(sv);
	nt_sub_clear(&s);
	return rc == 0 ? nt_subs_refresh(st) : rc;
}

int nt_subs_remove(im_store *st, long long id)
{
	sqlite3 *db = im_store_db(st);
	sqlite3_stmt *q;
	int rc = IM_EIO;
	im_store_lock(st);
	if (sqlite3_prepare_v2(db, "DELETE FROM subscriptions WHERE id = ?", -1,
			       &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, id);
		if (sqlite3_step(q) == SQLITE_DONE)
			rc = sqlite3_changes(db) ? 0 : IM_ENOTFOUND;
		sqlite3_finalize(q);
	}
	im_store_unlock(st);
	return rc == 0 ? nt_subs_refresh(st) : rc;
}

void nt_subs_free(void)
{
	pthread_mutex_lock(&mu);
	free_list(cfg_subs, n_cfg);
	free_list(db_subs, n_db);
	cfg_subs = db_subs = NULL;
	n_cfg = n_db = 0;
	json_decref(cfg_instances);
	cfg_instances = NULL;
	pthread_mutex_unlock(&mu);
}

int im_notify_check_config(const im_config *cfg, json_t *problems)
{
	json_t *ids = json_array();
	size_t i;
	const json_t *j;
	json_array_foreach(im_config_get(cfg, "plugins.instances"), i, j)
	    json_array_append(ids, json_object_get(j, "id"));
	int bad = 0;
	json_array_foreach(im_config_get(cfg, "subscriptions"), i, j)
	{
		char path[64], err[512], buf[512];
		snprintf(path, sizeof(path), "subscriptions[%zu]", i);
		const char *where = im_config_where(cfg, path);
		nt_sub s;
		const char *problem = NULL;
		if (nt_sub_parse(j, &s, err, sizeof(err)) != 0) {
			problem = err;
		} else {
			problem = nt_sub_instance_problem(NULL, ids, s.connector,
							  buf, sizeof(buf));
			nt_sub_clear(&s);
		}
		if (problem) {
			json_array_append_new(
			    problems, json_sprintf("%s: %s: %s",
						   where ? where : "config",
						   path, problem));
			bad++;
		}
	}
	json_decref(ids);
	return bad ? IM_ECONFIG : 0;
}
