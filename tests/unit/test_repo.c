/* Incidents and their timeline on a real SQLite file. */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bus/bus.h"
#include "incident/repo.h"

static char dir[64];
static im_store *st;
static const im_actor who = {.id = "U1", .name = "Ada", .via = "test"};

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/im-repo-XXXXXX");
	cr_assert(mkdtemp(dir));
	char path[128], err[512];
	snprintf(path, sizeof(path), "%s/im.db", dir);
	st = im_store_open(path, err, sizeof(err));
	cr_assert(st, "%s", err);
	im_bus_reset();
	im_repo_set_public_url("https://im.example.com/");
}

static void teardown(void)
{
	im_store_close(st);
	im_bus_reset();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(repo, .init = setup, .fini = teardown);

static json_t *declare(const char *title, const char *sev)
{
	json_t *f = json_pack("{s:s,s:s}", "title", title, "severity", sev);
	im_write w;
	im_err err;
	int rc = im_inc_declare(st, f, &who, NULL, &w, &err);
	json_decref(f);
	cr_assert_eq(rc, 0, "%s", err.message);
	json_t *inc = json_incref(w.incident);
	im_write_clear(&w);
	return inc;
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

Test(repo, declares_an_incident_with_a_cloudevent)
{
	json_t *f = json_pack("{s:s,s:s,s:s}", "title", "  Checkout 500s  ",
			      "severity", "SEV-2", "service", "checkout");
	im_write w;
	im_err err;
	cr_assert_eq(im_inc_declare(st, f, &who, NULL, &w, &err), 0, "%s",
		     err.message);
	cr_expect_eq(w.status, 201);
	cr_expect_str_eq(str(w.incident, "id"), "INC-1");
	cr_expect_str_eq(str(w.incident, "title"), "Checkout 500s");
	cr_expect_str_eq(str(w.incident, "status"), "open");
	cr_expect_str_eq(str(w.incident, "severity"), "SEV-2");
	cr_expect_str_eq(str(w.incident, "url"),
			 "https://im.example.com/incidents/INC-1");
	cr_expect_str_eq(str(w.event, "specversion"), "1.0");
	cr_expect_str_eq(str(w.event, "type"), "im.incident.declare");
	cr_expect_str_eq(str(w.event, "subject"), "INC-1");
	cr_expect_eq(strlen(str(w.event, "id")), 36);
	const json_t *actor =
	    json_object_get(json_object_get(w.event, "data"), "actor");
	cr_expect_str_eq(str(actor, "id"), "U1");
	cr_expect_str_eq(str(actor, "via"), "test");
	im_write_clear(&w);
	json_decref(f);
}

/* The texts a write keeps (stored, published, answered) are exactly the
 * serialization of its objects, for an event with a change and names
 * that need escaping. */
Test(repo, keeps_texts_equal_to_the_serialized_objects)
{
	json_t *f = json_pack("{s:s,s:s}", "title", "Quote \" and \u00e9",
			      "service", "a\\b");
	im_write w;
	im_err err;
	cr_assert_eq(im_inc_declare(st, f, &who, NULL, &w, &err), 0, "%s",
		     err.message);
	json_decref(f);
	im_write_clear(&w);
	f = json_pack("{s:s}", "note", "line\nbreak");
	cr_assert_eq(im_inc_transition(st, "INC-1", IM_INC_ACKNOWLEDGED, f,
				       &who, NULL, &w, &err),
		     0, "%s", err.message);
	char *ev = json_dumps(w.event, JSON_COMPACT);
	char *inc = json_dumps(w.incident, JSON_COMPACT);
	cr_assert_not_null(w.event_json);
	cr_assert_not_null(w.incident_json);
	cr_expect_str_eq(w.event_json, ev);
	cr_expect_str_eq(w.incident_json, inc);
	cr_expect_not_null(strstr(w.event_json, "\"change\":{\"from\":"));
	free(ev);
	free(inc);
	im_write_clear(&w);
	json_decref(f);
	/* A patch makes several events; the answer is the last one's, its
	 * tree and its text alike. */
	f = json_pack("{s:s,s:s}", "title", "renamed", "severity", "SEV-1");
	cr_assert_eq(im_inc_patch(st, "INC-1", f, &who, NULL, &w, &err), 0,
		     "%s", err.message);
	ev = json_dumps(w.event, JSON_COMPACT);
	cr_expect_str_eq(w.event_json, ev);
	cr_expect_str_eq(str(w.event, "type"), "im.incident.severity");
	free(ev);
	im_write_clear(&w);
	json_decref(f);
}

/* The writer writes event texts by hand (no JSON trees on its thread):
 * they must be, byte for byte, what jansson writes for the same event,
 * with the strings that need escaping, UTF-8, a null actor name and a
 * link. The event's id, time and sequence are taken from the text. */
Test(repo, writes_an_event_text_as_jansson_would)
{
	const char *title = "Q \" \\ \x01 \x1f \x7f \t caf\u00e9 \xf0\x9f\x9a\x80";
	json_t *f = json_pack("{s:s,s:s,s:s,s:s}", "title", title,
			      "description", "line\nbreak\r\b\f/",
			      "severity", "SEV-2", "service", "svc \"a\"");
	const im_actor odd = {.id = "U\"1\\", .name = NULL, .via = "te\x02st"};
	im_write w;
	im_err err;
	cr_assert_eq(im_inc_declare(st, f, &odd, NULL, &w, &err), 0, "%s",
		     err.message);
	json_decref(f);
	json_t *got = json_loads(w.event_json, 0, NULL);
	cr_assert(got, "%s", w.event_json);
	const json_t *inc = json_object_get(json_object_get(got, "data"),
					    "incident");
	json_t *want_inc = json_pack(
	    "{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:n,s:n,s:s,s:s,s:s}", "id",
	    "INC-1", "number", 1, "title", title, "description",
	    "line\nbreak\r\b\f/", "severity", "SEV-2", "severity_label",
	    im_inc_sev_label(2), "status", "open", "service", "svc \"a\"",
	    "commander", "duplicate_of", "created_at", str(inc, "created_at"),
	    "updated_at", str(inc, "updated_at"), "url",
	    "https://im.example.com/incidents/INC-1");
	json_t *want = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:{s:O,s:{},s:{s:s,s:n,s:s}}}",
	    "specversion", "1.0", "id", str(got, "id"), "source",
	    "im/incidents", "type", "im.incident.declare", "time",
	    str(got, "time"), "subject", "INC-1", "datacontenttype",
	    "application/json", "sequence", json_object_get(got, "sequence"),
	    "data", "incident", want_inc, "change", "actor", "id", "U\"1\\",
	    "name", "via", "te\x02st");
	cr_assert(want);
	char *want_text = json_dumps(want, JSON_COMPACT);
	char *want_inc_text = json_dumps(want_inc, JSON_COMPACT);
	cr_expect_str_eq(w.event_json, want_text);
	cr_expect_str_eq(w.incident_json, want_inc_text);
	/* The trees a waiting caller gets (packed from the write's parts,
	 * not parsed from the texts) are the same event. */
	char *tree_text = json_dumps(w.event, JSON_COMPACT);
	cr_expect_str_eq(tree_text, want_text);
	free(tree_text);
	free(want_text);
	free(want_inc_text);
	json_decref(want);
	json_decref(want_inc);
	json_decref(got);
	im_write_clear(&w);
	/* Text that is not UTF-8 cannot become JSON: the write fails and
	 * stores nothing, as when jansson refused it. */
	const im_actor bad = {.id = "U\xff", .name = "x", .via = "test"};
	f = json_pack("{s:s}", "title", "second");
	cr_expect_neq(im_inc_declare(st, f, &bad, NULL, &w, &err), 0);
	cr_expect_eq(err.status, 500);
	json_decref(f);
	json_t *none = NULL;
	cr_expect_neq(im_inc_get(st, "INC-2", &none, &err), 0,
		      "nothing stored");
	json_decref(none);
}

Test(repo, refuses_bad_declarations_with_reasons)
{
	im_write w;
	im_err err;
	json_t *f = json_pack("{s:s}", "severity", "SEV-2");
	cr_expect_neq(im_inc_declare(st, f, &who, NULL, &w, &err), 0);
	cr_expect_eq(err.status, 400);
	cr_expect_str_eq(err.code, "missing_title");
	json_decref(f);
	f = json_pack("{s:s,s:s}", "title", "x", "severity", "SEV-9");
	cr_expect_neq(im_inc_declare(st, f, &who, NULL, &w, &err), 0);
	cr_expect(strstr(err.message, "SEV-1 (critical)"), "%s", err.message);
	json_decref(f);
	char big[400];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	f = json_pack("{s:s}", "title", big);
	cr_expect_neq(im_inc_declare(st, f, &who, NULL, &w, &err), 0);
	cr_expect(strstr(err.message, "limit is 200"), "%s", err.message);
	json_decref(f);
	f = json_pack("{s:s,s:i}", "title", "x", "colour", 3);
	cr_expect_neq(im_inc_declare(st, f, &who, NULL, &w, &err), 0);
	cr_expect(strstr(err.message, "unknown field 'colour'"), "%s",
		  err.message);
	json_decref(f);
	cr_expect_eq(im_events_last_seq(st), 0, "nothing was written");
}

Test(repo, moves_through_the_lifecycle_and_refuses_illegal_steps)
{
	json_decref(declare("db down", "SEV-1"));
	im_write w;
	im_err err;
	cr_assert_eq(im_inc_transition(st, "INC-1", IM_INC_CLOSED, NULL, &who,
				       NULL, &w, &err),
		     IM_ECONFLICT);
	cr_expect_eq(err.status, 409);
	cr_expect(strstr(err.message, "INC-1 is open"), "%s", err.message);
	cr_expect(strstr(err.message,
			 "acknowledged, resolved, canceled, duplicate"),
		  "%s", err.message);
	const im_inc_state path[] = {IM_INC_ACKNOWLEDGED, IM_INC_MITIGATED,
				     IM_INC_RESOLVED, IM_INC_CLOSED};
	for (size_t i = 0; i < 4; i++) {
		cr_assert_eq(im_inc_transition(st, "inc-1", path[i], NULL, &who,
					       NULL, &w, &err),
			     0, "%s", err.message);
		cr_expect_str_eq(str(w.incident, "status"),
				 im_inc_state_name(path[i]));
		im_write_clear(&w);
	}
	json_t *tl;
	cr_assert_eq(im_inc_timeline(st, "INC-1", &tl, &err), 0);
	json_t *items = json_object_get(tl, "items");
	cr_expect_eq(json_array_size(items), 5);
	cr_expect_str_eq(str(json_array_get(items, 4), "type"),
			 "im.incident.close");
	json_decref(tl);
}

Test(repo, needs_an_existing_other_incident_for_duplicate)
{
	json_decref(declare("a", "SEV-3"));
	json_decref(declare("b", "SEV-3"));
	im_write w;
	im_err err;
	cr_expect_neq(im_inc_transition(st, "INC-2", IM_INC_DUPLICATE, NULL,
					&who, NULL, &w, &err),
		      0);
	cr_expect_str_eq(err.code, "missing_duplicate_of");
	json_t *f = json_pack("{s:s}", "duplicate_of", "INC-2");
	cr_expect_neq(im_inc_transition(st, "INC-2", IM_INC_DUPLICATE, f, &who,
					NULL, &w, &err),
		      0);
	cr_expect(strstr(err.message, "itself"), "%s", err.message);
	json_decref(f);
	f = json_pack("{s:s}", "duplicate_of", "INC-99");
	cr_expect_neq(im_inc_transition(st, "INC-2", IM_INC_DUPLICATE, f, &who,
					NULL, &w, &err),
		      0);
	json_decref(f);
	f = json_pack("{s:s}", "duplicate_of", "INC-1");
	cr_assert_eq(im_inc_transition(st, "INC-2", IM_INC_DUPLICATE, f, &who,
				       NULL, &w, &err),
		     0, "%s", err.message);
	cr_expect_str_eq(str(w.incident, "duplicate_of"), "INC-1");
	im_write_clear(&w);
	json_decref(f);
}

Test(repo, records_an_idempotent_write_once)
{
	json_t *f = json_pack("{s:s}", "title", "once");
	im_write a, b;
	im_err err;
	cr_assert_eq(im_inc_declare(st, f, &who, "key-1", &a, &err), 0);
	cr_assert_eq(im_inc_declare(st, f, &who, "key-1", &b, &err), 0);
	cr_expect(b.replayed);
	cr_expect_not(a.replayed);
	cr_expect_eq(b.status, 201);
	cr_expect(json_equal(a.event, b.event), "the first answer again");
	cr_expect_eq(im_events_last_seq(st), 1);
	im_write_clear(&b);
	/* The same key for another request is refused. */
	cr_expect_neq(im_inc_transition(st, "INC-1", IM_INC_RESOLVED, NULL,
					&who, "key-1", &b, &err),
		      0);
	cr_expect_eq(err.status, 422);
	cr_expect_str_eq(err.code, "idempotency_key_reused");
	/* So is the same operation with another body, saying so. */
	json_t *g = json_pack("{s:s}", "title", "twice");
	cr_expect_neq(im_inc_declare(st, g, &who, "key-1", &b, &err), 0);
	cr_expect_eq(err.status, 422);
	cr_expect(strstr(err.message, "with another body"), "%s", err.message);
	json_decref(g);
	/* Another caller's key of the same name is its own request. */
	im_actor other = {.id = "api-token-2", .via = "api"};
	cr_assert_eq(im_inc_declare(st, f, &other, "key-1", &b, &err), 0, "%s",
		     err.message);
	cr_expect_not(b.replayed, "another caller got the first answer");
	cr_expect_str_eq(str(b.incident, "id"), "INC-2");
	im_write_clear(&b);
	im_write_clear(&a);
	json_decref(f);
}

Test(repo, patches_fields_with_one_event_per_kind_of_change)
{
	json_decref(declare("slow", "SEV-3"));
	json_t *f = json_pack("{s:s,s:s,s:s}", "title", "very slow", "severity",
			      "SEV-1", "commander", "U7");
	im_write w;
	im_err err;
	cr_assert_eq(im_inc_patch(st, "INC-1", f, &who, NULL, &w, &err), 0,
		     "%s", err.message);
	cr_expect_str_eq(str(w.incident, "severity"), "SEV-1");
	cr_expect_str_eq(str(w.incident, "commander"), "U7");
	im_write_clear(&w);
	json_decref(f);
	json_t *tl;
	im_inc_timeline(st, "INC-1", &tl, &err);
	json_t *items = json_object_get(tl, "items");
	cr_assert_eq(json_array_size(items), 4);
	cr_expect_str_eq(str(json_array_get(items, 1), "type"),
			 "im.incident.update");
	cr_expect_str_eq(str(json_array_get(items, 2), "type"),
			 "im.incident.severity");
	cr_expect_str_eq(str(json_array_get(items, 3), "type"),
			 "im.incident.assign");
	json_decref(tl);
	f = json_pack("{s:s}", "status", "closed");
	cr_expect_neq(im_inc_patch(st, "INC-1", f, &who, NULL, &w, &err), 0);
	cr_expect(strstr(err.message, "POST /api/v1/incidents/INC-1/"), "%s",
		  err.message);
	json_decref(f);
}

Test(repo, lists_newest_first_with_filters_and_cursor_pages)
{
	for (int i = 1; i <= 7; i++) {
		char t[16];
		snprintf(t, sizeof(t), "inc %d", i);
		json_decref(declare(t, i % 2 ? "SEV-1" : "SEV-4"));
	}
	im_write w;
	im_err err;
	im_inc_transition(st, "INC-7", IM_INC_RESOLVED, NULL, &who, NULL, &w,
			  &err);
	im_write_clear(&w);
	im_inc_filter f = {.limit = 3};
	long long seen = 0, last = 99;
	json_t *page;
	int pages = 0;
	do {
		cr_assert_eq(im_inc_list(st, &f, &page, &err), 0, "%s",
			     err.message);
		size_t i;
		json_t *it;
		json_array_foreach(json_object_get(page, "items"), i, it)
		{
			long long n = json_integer_value(
			    json_object_get(it, "number"));
			cr_expect_lt(n, last, "newest first, no repeats");
			last = n;
			seen++;
		}
		static char cur[32];
		const char *nc = str(page, "next_cursor");
		snprintf(cur, sizeof(cur), "%s", nc ? nc : "");
		f.cursor = nc ? cur : NULL;
		pages++;
		json_decref(page);
	} while (f.cursor && pages < 10);
	cr_expect_eq(seen, 7);
	cr_expect_eq(pages, 3);
	im_inc_filter g = {.status = "open", .severity = "SEV-1"};
	cr_assert_eq(im_inc_list(st, &g, &page, &err), 0);
	cr_expect_eq(json_array_size(json_object_get(page, "items")), 3);
	json_decref(page);
	im_inc_filter bad = {.status = "opened"};
	cr_expect_neq(im_inc_list(st, &bad, &page, &err), 0);
	cr_expect(strstr(err.message, "unknown status 'opened'"));
}

Test(repo, publishes_committed_events_on_the_bus_in_order)
{
	json_decref(declare("a", "SEV-2"));
	json_t *f = json_pack("{s:s}", "title", "b");
	im_write w;
	im_err err;
	im_inc_declare(st, f, &who, NULL, &w, &err);
	im_write_clear(&w);
	im_inc_note(st, "INC-1", "looking", &who, NULL, &w, &err);
	im_write_clear(&w);
	json_decref(f);
	im_bus_event *evs[8];
	int n = im_bus_read(0, evs, 8);
	cr_assert_eq(n, 3);
	cr_expect_str_eq(evs[2]->type, "im.incident.note");
	cr_expect_str_eq(evs[2]->subject, "INC-1");
	for (int i = 0; i < n; i++) {
		cr_expect_eq(evs[i]->seq, i + 1);
		/* The ring keeps 4,096 of these: each holds about its own
		 * length, not the buffer the text was written in. */
		size_t len = strlen(evs[i]->json);
		cr_expect_lt(malloc_usable_size(evs[i]->json),
			     len + 1 + len / 4, "%zu bytes held for %zu",
			     malloc_usable_size(evs[i]->json), len);
		im_bus_event_unref(evs[i]);
	}
	json_t *after;
	cr_assert_eq(im_events_after(st, 1, 10, &after), 0);
	cr_expect_eq(json_array_size(after), 2);
	/* [sequence, body] pairs, the sequence from its column. */
	const json_t *first = json_array_get(after, 0);
	cr_expect_eq(json_integer_value(json_array_get(first, 0)), 2);
	cr_expect(strstr(json_string_value(json_array_get(first, 1)),
			 "\"sequence\":2,"));
	json_decref(after);
}

Test(repo, answers_404_for_unknown_or_malformed_ids)
{
	json_t *out;
	im_err err;
	cr_expect_eq(im_inc_get(st, "INC-42", &out, &err), IM_ENOTFOUND);
	cr_expect_eq(err.status, 404);
	cr_expect(strstr(err.message, "INC-42"));
	cr_expect_eq(im_inc_get(st, "banana", &out, &err), IM_ENOTFOUND);
	im_write w;
	cr_expect_neq(im_inc_note(st, "INC-0", "x", &who, NULL, &w, &err), 0);
	cr_expect_eq(err.status, 404);
}

Test(repo, writes_the_same_list_as_text_as_it_builds_as_json)
{
	json_t *f = json_pack("{s:s,s:s,s:s}", "title",
			      "quote \" backslash \\ tab \t ctrl \x01 é ✓",
			      "severity", "SEV-2", "service", "svc");
	im_write w;
	im_err err;
	cr_assert_eq(im_inc_declare(st, f, &who, NULL, &w, &err), 0);
	im_write_clear(&w);
	json_decref(f);
	for (int i = 0; i < 4; i++)
		json_decref(declare("plain", "SEV-4"));
	im_inc_filter flt = {.limit = 3};
	json_t *tree;
	char *text;
	size_t len;
	cr_assert_eq(im_inc_list(st, &flt, &tree, &err), 0);
	cr_assert_eq(im_inc_list_text(st, &flt, &text, &len, &err), 0);
	cr_expect_eq(strlen(text), len);
	json_error_t je;
	json_t *parsed = json_loadb(text, len, 0, &je);
	cr_assert(parsed, "%s: %s", je.text, text);
	cr_expect(json_equal(tree, parsed), "%s", text);
	json_decref(parsed);
	free(text);
	json_decref(tree);
	/* The last page, with the odd title, and no next cursor. */
	flt.cursor = "2";
	cr_assert_eq(im_inc_list(st, &flt, &tree, &err), 0);
	cr_assert_eq(im_inc_list_text(st, &flt, &text, &len, &err), 0);
	parsed = json_loadb(text, len, 0, &je);
	cr_expect(json_equal(tree, parsed), "%s", text);
	cr_expect(json_is_null(json_object_get(parsed, "next_cursor")));
	json_decref(parsed);
	free(text);
	json_decref(tree);
}

Test(repo, forgets_idempotency_keys_after_they_expire)
{
	json_t *f = json_pack("{s:s}", "title", "keyed");
	im_write w;
	im_err err;
	cr_assert_eq(im_inc_declare(st, f, &who, "k-old", &w, &err), 0);
	im_write_clear(&w);
	/* Nothing is older than an hour ago: the key stays. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	cr_expect_eq(im_repo_prune_idempotency(st, now - 3600 * 1000), 0);
	cr_assert_eq(im_inc_declare(st, f, &who, "k-old", &w, &err), 0);
	cr_expect(w.replayed);
	im_write_clear(&w);
	/* Past its lifetime it is gone and the same key declares anew. */
	cr_expect_eq(im_repo_prune_idempotency(st, now + 1000), 1);
	cr_assert_eq(im_inc_declare(st, f, &who, "k-old", &w, &err), 0);
	cr_expect_not(w.replayed);
	cr_expect_str_eq(json_string_value(json_object_get(w.incident, "id")),
			 "INC-2");
	im_write_clear(&w);
	json_decref(f);
}

/* The cache tests: sets one field of INC-1 and waits for the answer. */
static void patch_inc1(const char *key, const char *value)
{
	json_t *f = json_pack("{s:s}", key, value);
	im_write w;
	im_err err;
	cr_assert_eq(im_inc_patch(st, "INC-1", f, &who, NULL, &w, &err), 0,
		     "%s", err.message);
	json_decref(f);
	im_write_clear(&w);
}

/* Whether INC-1 as read now has `value` in `key`. */
static bool inc1_has(const char *key, const char *value)
{
	json_t *inc;
	im_err err;
	cr_assert_eq(im_inc_get(st, "INC-1", &inc, &err), 0);
	bool same = !strcmp(str(inc, key), value);
	json_decref(inc);
	return same;
}

/* im_inc_get keeps rows it read (core/incident/cache.c): a write that
 * returned is seen by the next read, whatever was cached before it. */
Test(repo, reads_an_incident_as_the_last_answered_write_left_it)
{
	json_decref(declare("cache", "SEV-3"));
	static const char *sevs[] = {"SEV-1", "SEV-2", "SEV-3", "SEV-4"};
	for (int i = 0; i < 40; i++) {
		inc1_has("severity", ""); /* now cached */
		patch_inc1("severity", sevs[i % 4]);
		cr_assert(inc1_has("severity", sevs[i % 4]), "round %d", i);
	}
}

/* Readers on other threads keep filling the cache while the writes go
 * on; still every write that returned is what the next read sees. */
static atomic_int readers_stop;
static void *read_all_the_time(void *arg)
{
	(void)arg;
	while (!atomic_load(&readers_stop)) { /* no asserts off the main thread */
		json_t *inc;
		im_err err;
		if (im_inc_get(st, "INC-1", &inc, &err) == 0)
			json_decref(inc);
	}
	return NULL;
}

Test(repo, a_cached_row_never_outlives_a_write_under_concurrent_reads)
{
	json_decref(declare("busy", "SEV-3"));
	atomic_store(&readers_stop, 0);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(
		    pthread_create(&th[i], NULL, read_all_the_time, NULL), 0);
	char title[32];
	int stale = 0;
	for (int i = 0; i < 300; i++) {
		snprintf(title, sizeof(title), "title %d", i);
		patch_inc1("title", title);
		stale += !inc1_has("title", title);
	}
	atomic_store(&readers_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(stale, 0, "%d reads returned a title from before the "
			       "write that had returned", stale);
}

/* Two stores in one process share the cache's slots, not their rows. */
Test(repo, keeps_the_rows_of_two_stores_apart)
{
	json_decref(declare("first store", "SEV-3"));
	json_t *inc;
	im_err err;
	cr_assert_eq(im_inc_get(st, "INC-1", &inc, &err), 0);
	json_decref(inc);
	char path[128], e[512];
	snprintf(path, sizeof(path), "%s/other.db", dir);
	im_store *other = im_store_open(path, e, sizeof(e));
	cr_assert(other, "%s", e);
	json_t *f = json_pack("{s:s,s:s}", "title", "second store",
			      "severity", "SEV-2");
	im_write w;
	cr_assert_eq(im_inc_declare(other, f, &who, NULL, &w, &err), 0);
	json_decref(f);
	im_write_clear(&w);
	cr_assert_eq(im_inc_get(other, "INC-1", &inc, &err), 0);
	cr_expect_str_eq(str(inc, "title"), "second store");
	json_decref(inc);
	cr_assert_eq(im_inc_get(st, "INC-1", &inc, &err), 0);
	cr_expect_str_eq(str(inc, "title"), "first store");
	json_decref(inc);
	im_store_close(other);
}
