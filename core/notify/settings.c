/* Pipeline settings: the chatops section of the config, plus the batch
 * window set at runtime by `im chatops configure`, which is kept in the
 * meta table so it survives restarts and wins over the config until it is
 * reset. One mutex; readers take copies. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident/incident.h"
#include "log/log.h"
#include "notify/internal.h"

#define META_WINDOW "notify.batch_window"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static nt_settings cur = {
    .batch_window = 5,
    .crit_mask = (1u << 1) | (1u << 2),
    .workers = 8,
    .digest_max = 50,
    .max_attempts = 50,
};

static int meta_get_window(im_store *st, double *out)
{
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *q;
	int rc = IM_ENOTFOUND;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1,
			       &q, NULL) != SQLITE_OK) {
		im_store_read_end(st, db);
		return IM_EIO;
	}
	sqlite3_bind_text(q, 1, META_WINDOW, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0)) {
		*out = strtod((const char *)sqlite3_column_text(q, 0), NULL);
		rc = 0;
	}
	sqlite3_finalize(q);
	im_store_read_end(st, db);
	return rc;
}

static int clamp(long long v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : (int)v;
}

int nt_settings_load(im_store *st, const im_config *cfg)
{
	nt_settings s = {
	    .batch_window = im_config_duration(cfg, "chatops.batch_window", 5),
	    .workers = clamp(im_config_int(cfg, "chatops.delivery_workers", 32),
			     1, 256),
	    .digest_max =
		clamp(im_config_int(cfg, "chatops.digest_max", 50), 1, 1000),
	    .max_attempts = clamp(
		im_config_int(cfg, "chatops.max_attempts", 50), 1, 100000),
	};
	const json_t *crit = im_config_get(cfg, "chatops.critical_severities");
	if (json_is_array(crit)) {
		size_t i;
		const json_t *v;
		json_array_foreach(crit, i, v)
		{
			int n = im_inc_sev_parse(json_string_value(v));
			if (n)
				s.crit_mask |= 1u << n;
		}
	} else {
		s.crit_mask = (1u << 1) | (1u << 2);
	}
	const json_t *rl = im_config_get(cfg, "chatops.rate_limits");
	s.rate_limits = json_is_object(rl) ? json_deep_copy(rl) : NULL;
	s.config_window = s.batch_window;
	double w;
	if (st && meta_get_window(st, &w) == 0) {
		s.batch_window = w;
		s.window_override = true;
	}
	pthread_mutex_lock(&mu);
	json_decref(cur.rate_limits);
	cur = s;
	pthread_mutex_unlock(&mu);
	return 0;
}

void nt_settings_get(nt_settings *out)
{
	pthread_mutex_lock(&mu);
	*out = cur;
	json_incref(out->rate_limits);
	pthread_mutex_unlock(&mu);
}

void nt_settings_clear(nt_settings *s)
{
	json_decref(s->rate_limits);
	s->rate_limits = NULL;
}

unsigned nt_settings_crit_mask(void)
{
	pthread_mutex_lock(&mu);
	unsigned m = cur.crit_mask;
	pthread_mutex_unlock(&mu);
	return m;
}

int nt_settings_set_window(im_store *st, double seconds)
{
	sqlite3 *db = im_store_db(st);
	sqlite3_stmt *q;
	char text[64];
	snprintf(text, sizeof(text), "%.3f", seconds);
	im_store_lock(st);
	int rc = sqlite3_prepare_v2(
	    db,
	    seconds < 0 ? "DELETE FROM meta WHERE key = ?1"
			: "INSERT INTO meta(key, value) VALUES (?1, ?2) "
			  "ON CONFLICT(key) DO UPDATE SET value = ?2",
	    -1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(q, 1, META_WINDOW, -1, SQLITE_STATIC);
		if (seconds >= 0)
			sqlite3_bind_text(q, 2, text, -1, SQLITE_STATIC);
		rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_finalize(q);
	}
	im_store_unlock(st);
	if (rc != SQLITE_OK)
		return IM_EIO;
	pthread_mutex_lock(&mu);
	if (seconds >= 0) {
		cur.batch_window = seconds;
		cur.window_override = true;
	} else { /* back to the config's value, at once */
		cur.window_override = false;
		cur.batch_window = cur.config_window;
	}
	pthread_mutex_unlock(&mu);
	return 0;
}

static double num_or(const json_t *o, const char *k, double def)
{
	const json_t *v = json_object_get(o, k);
	return json_is_number(v) && json_number_value(v) >= 0
		   ? json_number_value(v)
		   : def;
}

void nt_settings_rates(const char *instance, const im_connector *c,
		       double *per_channel, double *burst, double *global)
{
	/* Without defaults from the connector: one message a second per
	 * channel, the common limit of chat platforms' post calls. */
	*per_channel = c && c->rate_per_channel > 0 ? c->rate_per_channel : 1;
	*burst = c && c->burst_per_channel >= 1 ? c->burst_per_channel : 1;
	*global = c && c->rate_global > 0 ? c->rate_global : 0;
	pthread_mutex_lock(&mu);
	const json_t *o = json_object_get(cur.rate_limits, instance);
	*per_channel = num_or(o, "per_channel", *per_channel);
	*burst = num_or(o, "burst", *burst);
	*global = num_or(o, "global", *global);
	pthread_mutex_unlock(&mu);
}

void nt_settings_free(void)
{
	pthread_mutex_lock(&mu);
	json_decref(cur.rate_limits);
	cur.rate_limits = NULL;
	pthread_mutex_unlock(&mu);
}
