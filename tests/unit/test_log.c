/*
 * Unit tests for core/log: level filtering, line shapes, redaction,
 * truncation and configuration. Output is captured through im_log_set_fd()
 * on a temporary file. Criterion runs every test in its own process, so the
 * logger's globals start fresh each time.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"

static FILE *cap_file;

static void capture_start(void)
{
	cap_file = tmpfile();
	cr_assert_not_null(cap_file);
	im_log_set_fd(fileno(cap_file));
}

/* Stops capturing; returns everything written (malloc'd). */
static char *capture_end(void)
{
	im_log_set_fd(-1);
	int fd = fileno(cap_file);
	off_t size = lseek(fd, 0, SEEK_END);
	cr_assert_geq(size, 0);
	char *buf = malloc((size_t)size + 1);
	cr_assert_not_null(buf);
	ssize_t n = pread(fd, buf, (size_t)size, 0);
	cr_assert_eq(n, size);
	buf[size] = '\0';
	fclose(cap_file);
	cap_file = NULL;
	return buf;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void assert_matches(const char *text, const char *pattern)
{
	regex_t re;
	cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	int rc = regexec(&re, text, 0, NULL, 0);
	regfree(&re);
	cr_assert_eq(rc, 0, "\"%s\" does not match /%s/", text, pattern);
}

/* Redacts `in` and checks the result. */
static void assert_redacts(const char *in, const char *want)
{
	char *out = im_log_redact(in);
	cr_assert_not_null(out);
	cr_assert_str_eq(out, want, "redact(\"%s\")", in);
	free(out);
}

#define TS_RE "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

/* ---- levels ---------------------------------------------------------- */

/* The Slack connector's credential prefixes, as its rules register them
 * when slack.so loads. */
static void slack_prefixes(void)
{
	static const char *const p[] = {"xoxb-", "xoxp-", "xoxa-", "xoxr-",
					"xoxs-", "xapp-", NULL};
	im_log_add_secret_prefixes(p);
}

Test(log, defaults_to_info_level)
{
	cr_assert_eq(im_log_get_level(), IM_LOG_INFO);
	cr_assert_not(im_log_enabled(IM_LOG_DEBUG));
	cr_assert(im_log_enabled(IM_LOG_INFO));
	cr_assert_not(im_log_debug_bodies());
}

Test(log, drops_lines_below_the_current_level)
{
	im_log_set_level(IM_LOG_WARN);
	capture_start();
	LOG_DEBUG("t", "debug line");
	LOG_INFO("t", "info line");
	LOG_WARN("t", "warn line");
	LOG_ERROR("t", "error line");
	char *out = capture_end();
	cr_assert_null(strstr(out, "debug line"));
	cr_assert_null(strstr(out, "info line"));
	cr_assert_not_null(strstr(out, "warn line"));
	cr_assert_not_null(strstr(out, "error line"));
	cr_assert_eq(count_lines(out), 2);
	free(out);
}

Test(log, writes_debug_lines_at_debug_level)
{
	im_log_set_level(IM_LOG_DEBUG);
	capture_start();
	LOG_DEBUG("t", "debug line");
	char *out = capture_end();
	assert_matches(out, "^" TS_RE " DEBUG \\[core:t\\] debug line\n$");
	free(out);
}

Test(log, parses_level_names_case_insensitively)
{
	cr_assert_eq(im_log_level_parse("debug"), IM_LOG_DEBUG);
	cr_assert_eq(im_log_level_parse("INFO"), IM_LOG_INFO);
	cr_assert_eq(im_log_level_parse("Warn"), IM_LOG_WARN);
	cr_assert_eq(im_log_level_parse("error"), IM_LOG_ERROR);
	cr_assert_eq(im_log_level_parse("verbose"), -1);
	cr_assert_eq(im_log_level_parse(""), -1);
	cr_assert_eq(im_log_level_parse(NULL), -1);
}

Test(log, configure_rejects_unknown_names_and_changes_nothing)
{
	cr_assert_eq(im_log_configure("error", "bogus"), IM_EINVAL);
	cr_assert_eq(im_log_get_level(), IM_LOG_INFO);
	cr_assert_eq(im_log_configure("loud", "json"), IM_EINVAL);
	capture_start();
	LOG_INFO("t", "still text");
	char *out = capture_end();
	cr_assert_eq(out[0] != '{', true, "format changed: %s", out);
	free(out);
	cr_assert_eq(im_log_configure("warn", "text"), IM_OK);
	cr_assert_eq(im_log_get_level(), IM_LOG_WARN);
}

Test(log, log_level_environment_wins_over_the_config)
{
	cr_assert_eq(im_log_configure("error", NULL), IM_OK);
	setenv("LOG_LEVEL", "debug", 1);
	unsetenv("CHATOPS_DEBUG");
	im_log_init_env();
	cr_assert_eq(im_log_get_level(), IM_LOG_DEBUG);
	cr_assert_not(im_log_debug_bodies());
}

Test(log, chatops_debug_enables_debug_level_and_bodies)
{
	unsetenv("LOG_LEVEL");
	setenv("CHATOPS_DEBUG", "true", 1);
	im_log_init_env();
	cr_assert_eq(im_log_get_level(), IM_LOG_DEBUG);
	cr_assert(im_log_debug_bodies());
}

Test(log, chatops_debug_accepts_one)
{
	setenv("LOG_LEVEL", "error", 1);
	setenv("CHATOPS_DEBUG", "1", 1);
	im_log_init_env();
	cr_assert_eq(im_log_get_level(), IM_LOG_DEBUG);
	cr_assert(im_log_debug_bodies());
}

Test(log, chatops_debug_false_changes_nothing)
{
	unsetenv("LOG_LEVEL");
	setenv("CHATOPS_DEBUG", "false", 1);
	im_log_init_env();
	cr_assert_eq(im_log_get_level(), IM_LOG_INFO);
	cr_assert_not(im_log_debug_bodies());
}

/* ---- text format ----------------------------------------------------- */

Test(log, writes_text_lines_with_timestamp_level_and_source)
{
	capture_start();
	LOG_INFO("loader", "loaded %s (%d)", "slack.so", 42);
	char *out = capture_end();
	assert_matches(out, "^" TS_RE " INFO  \\[core:loader\\] loaded slack.so "
			    "\\(42\\)\n$");
	free(out);
}

Test(log, writes_the_instance_in_plugin_prefixes)
{
	capture_start();
	im_logf(IM_LOG_WARN, "plugin", "slack", "slack-prod", "rate limited");
	im_logf(IM_LOG_ERROR, "plugin", "slack", NULL, "boom");
	char *out = capture_end();
	assert_matches(out, "^" TS_RE " WARN  \\[plugin:slack:slack-prod\\] "
			    "rate limited\n" TS_RE " ERROR \\[plugin:slack\\] "
			    "boom\n$");
	free(out);
}

Test(log, timestamps_are_current_utc)
{
	capture_start();
	time_t before = time(NULL);
	LOG_INFO("t", "now");
	time_t after = time(NULL);
	char *out = capture_end();
	struct tm tm = {0};
	char *end = strptime(out, "%Y-%m-%dT%H:%M:%S", &tm);
	cr_assert_not_null(end);
	time_t t = timegm(&tm);
	/* time() reads a coarse clock that may lag the log's by a tick
	 * across a second boundary: one second of slack (a wrong zone would
	 * be hours off). */
	cr_assert(t >= before - 1 && t <= after + 1, "ts %s", out);
	free(out);
}

Test(log, escapes_newlines_so_a_message_stays_one_line)
{
	capture_start();
	LOG_INFO("t", "first\nfake 2026 ERROR [core:x] forged\r");
	char *out = capture_end();
	cr_assert_eq(count_lines(out), 1);
	cr_assert_not_null(strstr(out, "first\\nfake 2026 ERROR [core:x] "
					"forged\\r\n"));
	free(out);
}

/* ---- JSON format ----------------------------------------------------- */

Test(log, writes_one_json_object_per_line)
{
	cr_assert_eq(im_log_configure(NULL, "json"), IM_OK);
	capture_start();
	LOG_INFO("loader", "hello \"%s\"", "world");
	im_logf(IM_LOG_ERROR, "plugin", "slack", "slack-prod", "tab\there");
	char *out = capture_end();
	cr_assert_eq(count_lines(out), 2);

	char *nl = strchr(out, '\n');
	*nl = '\0';
	json_error_t err;
	json_t *a = json_loads(out, 0, &err);
	cr_assert_not_null(a, "line 1: %s", err.text);
	json_t *b = json_loads(nl + 1, 0, &err);
	cr_assert_not_null(b, "line 2: %s", err.text);
	cr_assert_null(strstr(out, "\": "), "not compact: %s", out);
	cr_assert_null(strstr(out, ", \""), "not compact: %s", out);

	cr_assert_eq(json_object_size(a), 6);
	assert_matches(json_string_value(json_object_get(a, "ts")),
		       "^" TS_RE "$");
	cr_assert_str_eq(json_string_value(json_object_get(a, "level")), "info");
	cr_assert_str_eq(json_string_value(json_object_get(a, "kind")), "core");
	cr_assert_str_eq(json_string_value(json_object_get(a, "plugin")),
			 "loader");
	cr_assert(json_is_null(json_object_get(a, "instance")));
	cr_assert_str_eq(json_string_value(json_object_get(a, "msg")),
			 "hello \"world\"");

	cr_assert_str_eq(json_string_value(json_object_get(b, "level")),
			 "error");
	cr_assert_str_eq(json_string_value(json_object_get(b, "kind")),
			 "plugin");
	cr_assert_str_eq(json_string_value(json_object_get(b, "plugin")),
			 "slack");
	cr_assert_str_eq(json_string_value(json_object_get(b, "instance")),
			 "slack-prod");
	cr_assert_str_eq(json_string_value(json_object_get(b, "msg")),
			 "tab\there");
	json_decref(a);
	json_decref(b);
	free(out);
}

Test(log, json_lines_replace_invalid_utf8)
{
	cr_assert_eq(im_log_configure(NULL, "JSON"), IM_OK);
	capture_start();
	LOG_WARN("t", "bad \xff byte, ok \xc3\xa9");
	char *out = capture_end();
	json_t *j = json_loads(out, 0, NULL);
	cr_assert_not_null(j, "unparsable: %s", out);
	cr_assert_str_eq(json_string_value(json_object_get(j, "msg")),
			 "bad \xef\xbf\xbd byte, ok \xc3\xa9");
	json_decref(j);
	free(out);
}

Test(log, json_lines_are_redacted_too)
{
	slack_prefixes();
	cr_assert_eq(im_log_configure(NULL, "json"), IM_OK);
	capture_start();
	LOG_INFO("t", "token xoxb-111-222-abc");
	char *out = capture_end();
	cr_assert_null(strstr(out, "111-222"));
	cr_assert_not_null(strstr(out, "\"msg\":\"token xoxb-[REDACTED]\""));
	free(out);
}

/* ---- redaction ------------------------------------------------------- */

Test(log, redacts_slack_bot_tokens)
{
	slack_prefixes();
	assert_redacts("token=xoxb-1234-5678-AbCd ok",
		       "token=xoxb-[REDACTED] ok");
	assert_redacts("xoxb-1", "xoxb-[REDACTED]");
}

Test(log, redacts_every_slack_token_kind)
{
	slack_prefixes();
	assert_redacts("a xoxa-1 b xoxp-2-x c xoxr-3 d xoxs-4",
		       "a xoxa-[REDACTED] b xoxp-[REDACTED] c "
		       "xoxr-[REDACTED] d xoxs-[REDACTED]");
}

Test(log, redacts_app_level_tokens)
{
	slack_prefixes();
	assert_redacts("{\"app_token\":\"xapp-1-A012-345-deadbeef\"}",
		       "{\"app_token\":\"xapp-[REDACTED]\"}");
}

Test(log, leaves_slack_like_words_without_a_token_alone)
{
	slack_prefixes();
	assert_redacts("prefix xoxb- alone, xoxz-123, xap-1",
		       "prefix xoxb- alone, xoxz-123, xap-1");
}

Test(log, redacts_words_after_registered_prefixes_only)
{
	assert_redacts("id tok-abc-123 here", "id tok-abc-123 here");
	static const char *const p[] = {"tok-", "tok-", "t-", NULL};
	im_log_add_secret_prefixes(p);
	im_log_add_secret_prefixes(p); /* duplicates are ignored */
	im_log_add_secret_prefixes(NULL);
	assert_redacts("id tok-abc-123 here", "id tok-[REDACTED] here");
	/* Too short to register: "t-" never redacts. */
	assert_redacts("t-abc tok- alone", "t-abc tok- alone");
}

Test(log, redacts_bearer_values_case_insensitively)
{
	assert_redacts("Authorization: Bearer abc.def-ghi_123",
		       "Authorization: Bearer [REDACTED]");
	assert_redacts("authorization: bearer abc next",
		       "authorization: bearer [REDACTED] next");
	assert_redacts("{\"Authorization\":\"BEARER t0k3n\"}",
		       "{\"Authorization\":\"BEARER [REDACTED]\"}");
}

Test(log, redacts_bot_authorization_values)
{
	assert_redacts("Authorization: Bot MTk4Nj.Cl2FMQ.ZnCjm1",
		       "Authorization: Bot [REDACTED]");
	assert_redacts("header='bot MTk4Nj.Cl2FMQ.ZnCjm1'",
		       "header='bot [REDACTED]'");
	/* "bot" followed by a word that is no token shape stays. */
	assert_redacts("invite the bot /invite @incident-bot in the channel",
		       "invite the bot /invite @incident-bot in the channel");
}

Test(log, keeps_bot_and_bearer_inside_other_words)
{
	assert_redacts("robot arm, abbot x, unbearer y",
		       "robot arm, abbot x, unbearer y");
	assert_redacts("Bearer", "Bearer");
	assert_redacts("Bearer \"quoted\"", "Bearer \"quoted\"");
}

Test(log, redacts_registered_secrets_at_any_position)
{
	const char *sec[] = {"hunter2-pass"};
	im_log_set_secrets(sec, 1);
	assert_redacts("pw=hunter2-pass", "pw=[REDACTED]");
	assert_redacts("xhunter2-passx and hunter2-pass",
		       "x[REDACTED]x and [REDACTED]");
	assert_redacts("hunter2-pas", "hunter2-pas");
}

Test(log, prefers_the_longest_overlapping_secret)
{
	const char *sec[] = {"abcd", "abcdefgh"};
	im_log_set_secrets(sec, 2);
	assert_redacts("[abcdefgh][abcd]", "[[REDACTED]][[REDACTED]]");
}

Test(log, replaces_secrets_on_set_secrets)
{
	const char *a[] = {"alpha-secret"};
	const char *b[] = {"beta-secret"};
	im_log_set_secrets(a, 1);
	assert_redacts("alpha-secret beta-secret",
		       "[REDACTED] beta-secret");
	im_log_set_secrets(b, 1);
	assert_redacts("alpha-secret beta-secret",
		       "alpha-secret [REDACTED]");
	im_log_set_secrets(NULL, 0);
	assert_redacts("alpha-secret beta-secret",
		       "alpha-secret beta-secret");
}

Test(log, add_secret_extends_the_set)
{
	const char *a[] = {"first-secret"};
	im_log_set_secrets(a, 1);
	im_log_add_secret("second-secret");
	im_log_add_secret("second-secret");
	assert_redacts("first-secret second-secret",
		       "[REDACTED] [REDACTED]");
}

Test(log, ignores_short_and_empty_secrets)
{
	const char *sec[] = {"", "a", "abc", NULL, "abcd"};
	im_log_set_secrets(sec, 5);
	im_log_add_secret("xy");
	assert_redacts("a abc xy abcd", "a abc xy [REDACTED]");
}

Test(log, redacts_the_final_formatted_message)
{
	slack_prefixes();
	const char *sec[] = {"s3cr3t"};
	im_log_set_secrets(sec, 1);
	capture_start();
	/* the token and the secret only appear once the arguments are in */
	LOG_INFO("t", "%s%s and %s%s", "xoxb", "-99-abc", "s3c", "r3t");
	im_logf(IM_LOG_INFO, "plugin", "p", "i", "Authorization: %s %s",
		"Bearer", "zzz");
	char *out = capture_end();
	cr_assert_null(strstr(out, "99-abc"));
	cr_assert_null(strstr(out, "s3cr3t"));
	cr_assert_null(strstr(out, "zzz"));
	cr_assert_not_null(strstr(out, "xoxb-[REDACTED] and [REDACTED]\n"));
	cr_assert_not_null(strstr(out, "Authorization: Bearer [REDACTED]\n"));
	free(out);
}

struct swap_arg {
	int iterations;
};

static void *swap_secrets(void *p)
{
	struct swap_arg *a = p;
	const char *one[] = {"rotating-secret-1"};
	const char *two[] = {"rotating-secret-1", "rotating-secret-2"};
	for (int i = 0; i < a->iterations; i++) {
		if (i % 2)
			im_log_set_secrets(one, 1);
		else
			im_log_set_secrets(two, 2);
	}
	return NULL;
}

static void *log_secrets(void *p)
{
	struct swap_arg *a = p;
	for (int i = 0; i < a->iterations; i++)
		LOG_INFO("t", "value rotating-secret-1 here");
	return NULL;
}

Test(log, secrets_can_be_replaced_while_other_threads_log)
{
	const char *one[] = {"rotating-secret-1"};
	im_log_set_secrets(one, 1);
	struct swap_arg a = {2000};
	pthread_t t[3];
	capture_start();
	pthread_create(&t[0], NULL, swap_secrets, &a);
	pthread_create(&t[1], NULL, log_secrets, &a);
	pthread_create(&t[2], NULL, log_secrets, &a);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	char *out = capture_end();
	cr_assert_eq(count_lines(out), 4000);
	cr_assert_null(strstr(out, "rotating-secret"));
	free(out);
}

/* ---- truncation ------------------------------------------------------ */

Test(log, truncates_messages_longer_than_16_kib)
{
	size_t n = 20000;
	char *big = malloc(n + 1);
	memset(big, 'a', n);
	big[n] = '\0';
	capture_start();
	LOG_INFO("t", "%s", big);
	char *out = capture_end();
	char *msg = strstr(out, "] ");
	cr_assert_not_null(msg);
	msg += 2;
	cr_assert_eq(strlen(msg), 16384 + strlen("...(truncated)") + 1);
	cr_assert_eq(strspn(msg, "a"), 16384);
	cr_assert_str_eq(msg + 16384, "...(truncated)\n");
	free(out);
	free(big);
}

Test(log, keeps_a_message_of_exactly_16_kib)
{
	size_t n = 16384;
	char *big = malloc(n + 1);
	memset(big, 'b', n);
	big[n] = '\0';
	capture_start();
	LOG_INFO("t", "%s", big);
	char *out = capture_end();
	cr_assert_null(strstr(out, "truncated"));
	cr_assert_eq(strspn(strstr(out, "] ") + 2, "b"), n);
	free(out);
	free(big);
}

Test(log, truncation_never_exposes_part_of_a_secret)
{
	const char *sec[] = {"SECRETVALUE"};
	im_log_set_secrets(sec, 1);
	size_t pad = 16380;
	char *big = malloc(pad + 64);
	memset(big, 'c', pad);
	strcpy(big + pad, "SECRETVALUE and more");
	capture_start();
	LOG_INFO("t", "%s", big);
	char *out = capture_end();
	cr_assert_null(strstr(out, "SECR"));
	cr_assert_not_null(strstr(out, "...(truncated)\n"));
	free(out);
	free(big);
}

Test(log, truncation_keeps_utf8_characters_whole)
{
	size_t pad = 16383; /* the next 2-byte character straddles the cut */
	char *big = malloc(pad + 16);
	memset(big, 'd', pad);
	strcpy(big + pad, "\xc3\xa9tail");
	cr_assert_eq(im_log_configure(NULL, "json"), IM_OK);
	capture_start();
	LOG_INFO("t", "%s", big);
	char *out = capture_end();
	json_t *j = json_loads(out, 0, NULL);
	cr_assert_not_null(j);
	const char *msg = json_string_value(json_object_get(j, "msg"));
	cr_assert_eq(strlen(msg), pad + strlen("...(truncated)"));
	cr_assert_str_eq(msg + pad, "...(truncated)");
	json_decref(j);
	free(out);
	free(big);
}

/* ---- concurrency ----------------------------------------------------- */

static void *log_many(void *p)
{
	long id = (long)(intptr_t)p;
	for (int i = 0; i < 2000; i++)
		LOG_INFO("thread", "writer %ld line %d %s", id, i,
			 "padding-padding-padding-padding-padding-padding");
	return NULL;
}

Test(log, concurrent_writers_never_interleave_lines)
{
	pthread_t t[4];
	capture_start();
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, log_many, (void *)(intptr_t)i);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	char *out = capture_end();
	cr_assert_eq(count_lines(out), 8000);
	regex_t re;
	cr_assert_eq(regcomp(&re,
			     "^" TS_RE " INFO  \\[core:thread\\] writer [0-3] "
			     "line [0-9]+ padding-padding-padding-padding-"
			     "padding-padding$",
			     REG_EXTENDED | REG_NOSUB),
		     0);
	char *save = NULL;
	for (char *line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		cr_assert_eq(regexec(&re, line, 0, NULL, 0), 0, "bad: %s",
			     line);
	regfree(&re);
	free(out);
}
