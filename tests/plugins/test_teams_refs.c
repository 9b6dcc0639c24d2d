/* plugins/teams/refs.c alone, over an in-memory key-value store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <im/types.h>

#include "refs.h"

static struct {
	char *value;
	int puts;
} KV;

static int kv_get(void *ud, const char *key, char **value)
{
	(void)ud;
	cr_expect_str_eq(key, "conversations");
	if (!KV.value)
		return IM_ENOTFOUND;
	*value = strdup(KV.value);
	return 0;
}

static int kv_put(void *ud, const char *key, const char *value)
{
	(void)ud;
	(void)key;
	free(KV.value);
	KV.value = strdup(value);
	KV.puts++;
	return 0;
}

static const tms_kv kv = {kv_get, kv_put, NULL};

static void reset(void)
{
	free(KV.value);
	memset(&KV, 0, sizeof KV);
}

static void fini(void)
{
	reset();
}

TestSuite(teams_refs, .init = reset, .fini = fini);

/* A channel message as Teams sends it (thread id in the conversation). */
static json_t *channel_msg(const char *chan, const char *name,
			   const char *surl)
{
	char conv[256];
	snprintf(conv, sizeof conv, "%s;messageid=1700", chan);
	return json_pack(
	    "{s:s,s:s,s:{s:s,s:s,s:s},s:{s:s},s:{s:{s:s},s:{s:s,s:s},"
	    "s:{s:s,s:s?}}}",
	    "type", "message", "serviceUrl", surl, "conversation", "id", conv,
	    "conversationType", "channel", "tenantId", "tn-1", "recipient",
	    "id", "28:app", "channelData", "tenant", "id", "tn-1", "team", "id",
	    "19:team@thread.tacv2", "name", "Ops", "channel", "id", chan,
	    "name", name);
}

Test(teams_refs, learns_a_channel_from_a_message_and_keeps_it_across_restarts)
{
	tms_refs *r = tms_refs_new(&kv);
	json_t *m = channel_msg("19:c1@thread.tacv2", "incidents",
				"https://smba.example/teams/");
	cr_expect_eq(tms_refs_learn(r, m, 1000), 1);
	cr_expect_eq(tms_refs_learn(r, m, 1001), 0, "nothing new");
	cr_expect_eq(KV.puts, 1);
	tms_refs_free(r);
	/* A restart: the reference comes back from the store. */
	r = tms_refs_new(&kv);
	json_t *ref = tms_refs_find(r, "19:c1@thread.tacv2;messageid=99");
	cr_assert(ref, "found through a thread id too");
	cr_expect_str_eq(json_string_value(json_object_get(ref, "service_url")),
			 "https://smba.example/teams/");
	cr_expect_str_eq(json_string_value(json_object_get(ref, "tenant")),
			 "tn-1");
	cr_expect_str_eq(json_string_value(json_object_get(ref, "team_name")),
			 "Ops");
	cr_expect_str_eq(json_string_value(json_object_get(ref, "name")),
			 "incidents");
	cr_expect(json_is_true(json_object_get(ref, "installed")));
	json_decref(ref);
	json_decref(m);
	tms_refs_free(r);
}

Test(teams_refs, follows_a_moved_service_url_and_stores_seen_hourly)
{
	tms_refs *r = tms_refs_new(&kv);
	json_t *m = channel_msg("19:c1@thread.tacv2", "a", "https://one/");
	tms_refs_learn(r, m, 1000);
	json_decref(m);
	m = channel_msg("19:c1@thread.tacv2", "a", "https://two/");
	cr_expect_eq(tms_refs_learn(r, m, 1010), 1);
	json_t *ref = tms_refs_find(r, "19:c1@thread.tacv2");
	cr_expect_str_eq(json_string_value(json_object_get(ref, "service_url")),
			 "https://two/");
	json_decref(ref);
	cr_expect_eq(tms_refs_learn(r, m, 1010 + 3599), 0);
	cr_expect_eq(tms_refs_learn(r, m, 1010 + 3600), 1, "seen, hourly");
	json_decref(m);
	tms_refs_free(r);
}

Test(teams_refs, installation_and_removal_cover_the_whole_team)
{
	tms_refs *r = tms_refs_new(&kv);
	json_t *a = channel_msg("19:c1@thread.tacv2", "a", "https://s/");
	json_t *b = channel_msg("19:c2@thread.tacv2", "b", "https://s/");
	tms_refs_learn(r, a, 1);
	tms_refs_learn(r, b, 1);
	json_t *rm = json_pack(
	    "{s:s,s:s,s:{s:s},s:{s:s},s:[{s:s}],s:{s:s,s:{s:s},s:{s:s}}}",
	    "type", "conversationUpdate", "serviceUrl", "https://s/",
	    "conversation", "id", "19:team@thread.tacv2", "recipient", "id",
	    "28:app", "membersRemoved", "id", "28:app", "channelData",
	    "eventType", "teamMemberRemoved", "team", "id",
	    "19:team@thread.tacv2", "tenant", "id", "tn-1");
	cr_expect_eq(tms_refs_learn(r, rm, 2), 1);
	json_t *list = tms_refs_list(r);
	size_t i;
	json_t *e;
	int off = 0;
	json_array_foreach(list, i, e) off +=
	    json_is_false(json_object_get(e, "installed"));
	cr_expect_eq(json_array_size(list), 3, "two channels and the team");
	cr_expect_eq(off, 3, "the bot left every channel of the team");
	json_decref(list);
	json_t *del = json_pack(
	    "{s:s,s:s,s:{s:s},s:{s:s,s:{s:s},s:{s:s}}}", "type",
	    "conversationUpdate", "serviceUrl", "https://s/", "conversation",
	    "id", "19:team@thread.tacv2", "channelData", "eventType",
	    "channelDeleted", "team", "id", "19:team@thread.tacv2", "channel",
	    "id", "19:c2@thread.tacv2");
	cr_expect_eq(tms_refs_learn(r, del, 3), 1);
	cr_expect_null(tms_refs_find(r, "19:c2@thread.tacv2"));
	json_decref(a);
	json_decref(b);
	json_decref(rm);
	json_decref(del);
	tms_refs_free(r);
}

Test(teams_refs, ignores_activities_without_a_usable_service_url)
{
	tms_refs *r = tms_refs_new(&kv);
	json_t *m = channel_msg("19:c1@thread.tacv2", "a", "javascript:x");
	cr_expect_eq(tms_refs_learn(r, m, 1), 0);
	cr_expect_null(tms_refs_find(r, "19:c1@thread.tacv2"));
	json_t *x = json_string("x");
	cr_expect_eq(tms_refs_learn(r, x, 1), 0);
	json_decref(x);
	json_decref(m);
	tms_refs_free(r);
}

Test(teams_refs, keeps_at_most_the_max_and_drops_the_least_recent)
{
	tms_refs *r = tms_refs_new(NULL);
	for (int i = 0; i <= TMS_REFS_MAX; i++) {
		char id[64];
		snprintf(id, sizeof id, "19:c%d@thread.tacv2", i);
		json_t *m = channel_msg(id, "x", "https://s/");
		tms_refs_learn(r, m, 100 + i);
		json_decref(m);
	}
	json_t *list = tms_refs_list(r);
	cr_expect_eq(json_array_size(list), TMS_REFS_MAX);
	json_decref(list);
	cr_expect_null(tms_refs_find(r, "19:c0@thread.tacv2"), "the oldest");
	json_t *last = tms_refs_find(r, "19:c2000@thread.tacv2");
	cr_expect(last);
	json_decref(last);
	tms_refs_free(r);
}
