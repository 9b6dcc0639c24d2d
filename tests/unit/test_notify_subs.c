/* Subscriptions: parsing, matching, severity routing, and the outbox rows
 * the repo hook writes in the incident's own transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bus/bus.h"
#include "incident/repo.h"
#include "notify/internal.h"

static char dir[64];
static im_store *st;
static im_config *cfg;
static const im_actor who = {.id = "U1", .name = "Ada", .via = "test"};

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/im-nsubs-XXXXXX");
	cr_assert(mkdtemp(dir));
	char path[128], err[512];
	snprintf(path, sizeof(path), "%s/im.db", dir);
	st = im_store_open(path, err, sizeof(err));
	cr_assert(st, "%s", err);
	im_bus_reset();
	cfg = NULL;
}

static void teardown(void)
{
	im_notify_stop();
	im_config_free(cfg);
	im_store_close(st);
	im_bus_reset();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(notify_subs, .init = setup, .fini = teardown);

static void prepare(const char *yaml)
{
	char err[1024];
	cfg = im_config_load_string("test.yaml", yaml, err, sizeof(err));
	cr_assert(cfg, "%s", err);
	cr_assert_eq(im_notify_prepare(st, cfg, false), 0);
}

static void declare(const char *sev, const char *service)
{
	json_t *f = json_pack("{s:s,s:s,s:s?}", "title", "t", "severity", sev,
			      "service", service);
	im_write w;
	im_err err;
	cr_assert_eq(im_inc_declare(st, f, &who, NULL, &w, &err), 0, "%s",
		     err.message);
	im_write_clear(&w);
	json_decref(f);
}

/* "connector/channel/critical" of every outbox row, in id order. */
static char *rows(void)
{
	static char buf[2048];
	buf[0] = '\0';
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *q;
	cr_assert_eq(sqlite3_prepare_v2(db,
					"SELECT connector, channel, critical, "
					"mode FROM outbox ORDER BY id",
					-1, &q, NULL),
		     SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
			 "%s%s/%s/%d/%s", *buf ? " " : "",
			 sqlite3_column_text(q, 0), sqlite3_column_text(q, 1),
			 sqlite3_column_int(q, 2), sqlite3_column_text(q, 3));
	sqlite3_finalize(q);
	im_store_read_end(st, db);
	return buf;
}

static const char *instances =
    "plugins:\n"
    "  instances:\n"
    "    - id: slack\n"
    "      module: slack\n"
    "      config:\n"
    "        default_channel: CDEF\n"
    "        notification_channels: {SEV-1: CCRIT, SEV-2: CMAJ}\n"
    "    - {id: teams, module: teams}\n";

Test(notify_subs, refuses_channel_names_and_bad_fields)
{
	nt_sub s;
	char err[512];
	json_t *j =
	    json_pack("{s:s,s:s}", "connector", "slack", "channel", "#general");
	cr_expect_eq(nt_sub_parse(j, &s, err, sizeof(err)), IM_EINVAL);
	cr_expect(strstr(err, "channel id"), "%s", err);
	json_decref(j);
	j = json_pack("{s:s,s:s,s:s}", "connector", "slack", "channel", "C1",
		      "colour", "red");
	cr_expect_eq(nt_sub_parse(j, &s, err, sizeof(err)), IM_EINVAL);
	cr_expect(strstr(err, "colour"), "%s", err);
	json_decref(j);
	j = json_pack("{s:s,s:s,s:s}", "connector", "slack", "channel", "C1",
		      "min_severity", "SEV-9");
	cr_expect_eq(nt_sub_parse(j, &s, err, sizeof(err)), IM_EINVAL);
	json_decref(j);
	j = json_pack("{s:s,s:s,s:s}", "connector", "slack", "channel", "C1",
		      "mode", "shout");
	cr_expect_eq(nt_sub_parse(j, &s, err, sizeof(err)), IM_EINVAL);
	json_decref(j);
	j = json_pack("{s:s}", "channel", "C1");
	cr_expect_eq(nt_sub_parse(j, &s, err, sizeof(err)), IM_EINVAL);
	json_decref(j);
}

Test(notify_subs, matches_type_globs_severity_and_services)
{
	nt_sub s;
	char err[512];
	json_t *j =
	    json_pack("{s:s,s:s,s:[s],s:s,s:[s,s]}", "connector", "slack",
		      "channel", "C1", "events", "im.incident.declare",
		      "min_severity", "SEV-2", "services", "api", "db");
	cr_assert_eq(nt_sub_parse(j, &s, err, sizeof(err)), 0, "%s", err);
	cr_expect(nt_sub_matches(&s, "im.incident.declare", 1, "api"));
	cr_expect(nt_sub_matches(&s, "im.incident.declare", 2, "db"));
	cr_expect_not(nt_sub_matches(&s, "im.incident.declare", 3, "api"));
	cr_expect_not(nt_sub_matches(&s, "im.incident.ack", 1, "api"));
	cr_expect_not(nt_sub_matches(&s, "im.incident.declare", 1, "web"));
	cr_expect_not(nt_sub_matches(&s, "im.incident.declare", 1, NULL));
	nt_sub_clear(&s);
	json_decref(j);
}

Test(notify_subs, leaves_audit_records_to_patterns_that_name_them)
{
	nt_sub s;
	char err[512];
	json_t *j =
	    json_pack("{s:s,s:s}", "connector", "slack", "channel", "C1");
	cr_assert_eq(nt_sub_parse(j, &s, err, sizeof(err)), 0);
	cr_expect(nt_sub_matches(&s, "im.incident.resolve", 4, NULL));
	cr_expect_not(nt_sub_matches(&s, "im.incident.audit", 1, NULL));
	nt_sub_clear(&s);
	json_decref(j);
	j = json_pack("{s:s,s:s,s:[s]}", "connector", "slack", "channel", "C1",
		      "events", "im.incident.audit");
	cr_assert_eq(nt_sub_parse(j, &s, err, sizeof(err)), 0);
	cr_expect(nt_sub_matches(&s, "im.incident.audit", 1, NULL));
	nt_sub_clear(&s);
	json_decref(j);
}

Test(notify_subs, writes_one_row_per_matching_channel_with_the_event)
{
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
		 "%s"
		 "subscriptions:\n"
		 "  - {connector: teams, channel: T1, mode: thread}\n"
		 "  - {connector: teams, channel: T1, mode: post}\n"
		 "  - {connector: teams, channel: T2, min_severity: SEV-1}\n"
		 "  - {connector: teams, channel: T3, services: [db]}\n",
		 instances);
	prepare(yaml);
	declare("SEV-1", NULL);
	cr_expect_str_eq(rows(), "teams/T1/1/t teams/T2/1/u slack/CCRIT/1/u");
}

Test(notify_subs, routes_by_severity_then_the_default_channel)
{
	prepare(instances);
	declare("SEV-2", NULL);
	declare("SEV-3", "db");
	declare("SEV-4", NULL);
	cr_expect_str_eq(rows(),
			 "slack/CMAJ/1/u slack/CDEF/0/u slack/CDEF/0/u");
}

Test(notify_subs, follows_the_configured_critical_severities)
{
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
		 "%schatops: {critical_severities: [SEV-3]}\n", instances);
	prepare(yaml);
	declare("SEV-1", NULL);
	declare("SEV-3", NULL);
	cr_expect_str_eq(rows(), "slack/CCRIT/0/u slack/CDEF/1/u");
}

Test(notify_subs, skips_subscriptions_to_unknown_instances)
{
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
		 "%s"
		 "subscriptions:\n"
		 "  - {connector: nope, channel: C1}\n"
		 "  - {connector: teams, channel: \"#general\"}\n",
		 instances);
	prepare(yaml);
	declare("SEV-4", NULL);
	cr_expect_str_eq(rows(), "slack/CDEF/0/u");
	json_t *list = nt_subs_list();
	const json_t *bad = json_array_get(list, 0);
	cr_expect_str_eq(json_string_value(json_object_get(bad, "connector")),
			 "nope");
	cr_expect(json_is_false(json_object_get(bad, "active")));
	cr_expect(strstr(json_string_value(json_object_get(bad, "where")),
			 "test.yaml:"));
	json_decref(list);
}

Test(notify_subs, stores_added_subscriptions_and_removes_them)
{
	prepare(instances);
	json_t *j = json_pack("{s:s,s:s,s:s}", "connector", "teams", "channel",
			      "T9", "mode", "post");
	long long id = 0;
	char err[512];
	cr_assert_eq(nt_subs_add(st, j, &id, err, sizeof(err)), 0, "%s", err);
	json_decref(j);
	cr_expect_gt(id, 0);
	declare("SEV-3", NULL);
	cr_expect_str_eq(rows(), "slack/CDEF/0/u teams/T9/0/p");
	j = json_pack("{s:s,s:s}", "connector", "ghost", "channel", "T1");
	cr_expect_eq(nt_subs_add(st, j, &id, err, sizeof(err)), IM_EINVAL);
	cr_expect(strstr(err, "ghost"), "%s", err);
	json_decref(j);
	cr_expect_eq(nt_subs_remove(st, id), 0);
	cr_expect_eq(nt_subs_remove(st, id), IM_ENOTFOUND);
}

Test(notify_subs, writes_nothing_for_an_idempotent_replay)
{
	prepare(instances);
	json_t *f = json_pack("{s:s,s:s}", "title", "t", "severity", "SEV-1");
	im_write w;
	im_err err;
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(im_inc_declare(st, f, &who, "k1", &w, &err), 0);
		im_write_clear(&w);
	}
	json_decref(f);
	cr_expect_str_eq(rows(), "slack/CCRIT/1/u");
}
