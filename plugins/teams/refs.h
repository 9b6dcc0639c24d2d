/*
 * plugins/teams/refs - the conversation references the bot has learnt:
 * for each channel (or chat) id, the serviceUrl to post to, the tenant,
 * the team and the names, and whether the app is installed there. Teams
 * tells them in every activity and in conversationUpdate /
 * installationUpdate; the Bot API has no way to find them otherwise, so
 * they are kept in the host's key-value store and survive restarts:
 * notifications reach a channel proactively after a restart.
 *
 * One per instance; thread-safe (route handlers learn, delivery threads
 * look up). The whole map is one kv value ("conversations"), written only
 * when something changed; at most TMS_REFS_MAX entries (the least
 * recently seen goes).
 */
#ifndef IM_TEAMS_REFS_H
#define IM_TEAMS_REFS_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#define TMS_REFS_MAX 2000

typedef struct tms_refs tms_refs;

typedef struct tms_kv {
	/* get: 0 with *value malloc'd, or an IM_E* (IM_ENOTFOUND). */
	int (*get)(void *ud, const char *key, char **value);
	int (*put)(void *ud, const char *key, const char *value);
	void *ud;
} tms_kv;

/* Loads what the store holds. NULL when out of memory. */
tms_refs *tms_refs_new(const tms_kv *kv);
void tms_refs_free(tms_refs *r);

/* Learns from one inbound activity (borrowed). Returns 1 when the map
 * changed (and was stored), 0 when not, IM_E* when the store failed. */
int tms_refs_learn(tms_refs *r, const json_t *activity, time_t now);

/* The reference of channel or chat `id` (a new object: service_url,
 * tenant, team_id, team_name, name, type, installed, seen), or NULL. */
json_t *tms_refs_find(tms_refs *r, const char *id);

/* Every reference, sorted by team name then name:
 * [{id, name, team_id, team_name, type, installed, service_url, seen}]. */
json_t *tms_refs_list(tms_refs *r);

#endif
