/* plugins/teams/api.c with token.c: a scripted Bot Connector and login
 * service behind the callbacks; every answer's verdict and fix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "api.h"

#define MAXA 4

static struct {
	int calls, logins;
	char method[8], url[1400], bearer[64], body[512];
	/* The next answers, in order (the last repeats). */
	long status[MAXA];
	const char *body_out[MAXA];
	const char *retry[MAXA];
	int n;
	long login_status;
	const char *login_body;
} S;

static int login(void *ud, const char *url, const char *form, long *status,
		 char **body)
{
	(void)ud;
	(void)url;
	(void)form;
	S.logins++;
	char b[256];
	snprintf(b, sizeof b, S.login_body, S.logins);
	*status = S.login_status;
	*body = strdup(b);
	return 0;
}

static int http(void *ud, const char *method, const char *url,
		const char *bearer, const char *json_body, tms_answer *out)
{
	(void)ud;
	int i = S.calls < S.n ? S.calls : S.n - 1;
	S.calls++;
	snprintf(S.method, sizeof S.method, "%s", method);
	snprintf(S.url, sizeof S.url, "%s", url);
	snprintf(S.bearer, sizeof S.bearer, "%s", bearer);
	snprintf(S.body, sizeof S.body, "%s", json_body);
	out->status = S.status[i];
	if (!S.status[i])
		snprintf(out->error, sizeof out->error, "connection refused");
	out->body = S.body_out[i] ? strdup(S.body_out[i]) : NULL;
	out->retry_after = S.retry[i] ? strdup(S.retry[i]) : NULL;
	return 0;
}

static tms_api api;
static json_t *activity;

static void setup(void)
{
	memset(&S, 0, sizeof S);
	S.login_status = 200;
	S.login_body = "{\"expires_in\":3599,\"access_token\":\"tok-%d\"}";
	tms_token_cfg tc = {.login_url = "http://login", .tenant = "t1",
			    .app_id = "app", .app_password = "pw",
			    .post = login};
	api = (tms_api){.token = tms_token_new(&tc), .http = http};
	cr_assert(api.token);
	activity = json_pack("{s:s,s:s}", "type", "message", "text", "hi");
}

static void teardown(void)
{
	tms_token_free(api.token);
	json_decref(activity);
}

TestSuite(teams_api, .init = setup, .fini = teardown);

static void answer(int i, long status, const char *body, const char *retry)
{
	S.status[i] = status;
	S.body_out[i] = body;
	S.retry[i] = retry;
	if (i + 1 > S.n)
		S.n = i + 1;
}

static im_send_result send_to(const char *conv, const char *reply_to,
			      const char *update)
{
	im_send_result r = {.struct_size = sizeof r};
	tms_target to = {.service_url = "https://smba.example/teams/",
			 .conversation = conv,
			 .reply_to = reply_to,
			 .update = update};
	cr_assert_eq(tms_api_send(&api, &to, activity, &r), 0);
	return r;
}

Test(teams_api, posts_to_the_encoded_conversation_with_the_token)
{
	answer(0, 201, "{\"id\":\"1700000000001\"}", NULL);
	im_send_result r = send_to("19:abc@thread.tacv2", NULL, NULL);
	cr_expect_eq(r.verdict, IM_SEND_OK);
	cr_expect_str_eq(r.message_id, "1700000000001");
	cr_expect_str_eq(S.method, "POST");
	cr_expect_str_eq(S.url, "https://smba.example/teams/v3/conversations/"
				"19%3Aabc%40thread.tacv2/activities");
	cr_expect_str_eq(S.bearer, "tok-1");
	cr_expect_str_eq(S.body, "{\"type\":\"message\",\"text\":\"hi\"}");
}

Test(teams_api, replies_in_a_thread_and_updates_with_put)
{
	answer(0, 201, "{\"id\":\"2\"}", NULL);
	im_send_result r = send_to("19:abc@thread.tacv2;messageid=1", "1", NULL);
	cr_expect_eq(r.verdict, IM_SEND_OK);
	cr_expect_str_eq(S.url, "https://smba.example/teams/v3/conversations/"
				"19%3Aabc%40thread.tacv2%3Bmessageid%3D1/"
				"activities/1");
	answer(0, 200, "{}", NULL);
	r = send_to("19:abc@thread.tacv2", NULL, "1");
	cr_expect_eq(r.verdict, IM_SEND_OK);
	cr_expect_str_eq(S.method, "PUT");
	cr_expect_str_eq(r.message_id, "1", "an update keeps its id");
}

Test(teams_api, a_401_fetches_a_new_token_once)
{
	answer(0, 401, "{\"error\":{\"code\":\"Unauthorized\"}}", NULL);
	answer(1, 201, "{\"id\":\"9\"}", NULL);
	im_send_result r = send_to("19:a", NULL, NULL);
	cr_expect_eq(r.verdict, IM_SEND_OK);
	cr_expect_str_eq(S.bearer, "tok-2");
	cr_expect_eq(S.logins, 2);
	/* Two 401s in a row: the credentials are wrong, dead-letter. */
	S.calls = 0;
	S.n = 0;
	answer(0, 401, "{\"error\":{\"code\":\"Unauthorized\"}}", NULL);
	r = send_to("19:a", NULL, NULL);
	cr_expect_eq(S.calls, 2, "one retry, not a loop");
	cr_expect_eq(r.verdict, IM_SEND_PERMANENT);
	cr_expect(strstr(r.hint, "app_password"), "%s", r.hint);
}

Test(teams_api, roster_block_and_admin_403s_say_what_to_do)
{
	static const struct {
		const char *code, *needle;
	} cases[] = {{"BotNotInConversationRoster", "add the app"},
		     {"ConversationBlockedByUser", "unblock"},
		     {"BotDisabledByAdmin", "admin"},
		     {"MessageWritesBlocked", "read-only"}};
	for (size_t i = 0; i < 4; i++) {
		char body[128];
		snprintf(body, sizeof body,
			 "{\"error\":{\"code\":\"%s\",\"message\":\"m\"}}",
			 cases[i].code);
		S.n = 0;
		answer(0, 403, body, NULL);
		im_send_result r = send_to("19:a", NULL, NULL);
		cr_expect_eq(r.verdict, IM_SEND_PERMANENT);
		cr_expect_str_eq(r.error, cases[i].code);
		cr_expect(strstr(r.hint, cases[i].needle), "%s: %s",
			  cases[i].code, r.hint);
	}
}

Test(teams_api, waits_out_throttling_and_retries_transient_answers)
{
	answer(0, 429, "{\"error\":{\"code\":\"Throttled\"}}", "2.5");
	im_send_result r = send_to("19:a", NULL, NULL);
	cr_expect_eq(r.verdict, IM_SEND_RATE_LIMITED);
	cr_expect_float_eq(r.retry_after_s, 2.5, 1e-9);
	cr_expect_str_eq(r.error, "Throttled");
	long transient[] = {412, 502, 504, 500, 0};
	for (size_t i = 0; i < 5; i++) {
		S.n = 0;
		answer(0, transient[i], NULL, NULL);
		r = send_to("19:a", NULL, NULL);
		cr_expect_eq(r.verdict, IM_SEND_RETRY, "status %ld",
			     transient[i]);
	}
	S.n = 0;
	answer(0, 201, "{}", NULL);
	r = send_to("19:a", NULL, NULL);
	cr_expect_eq(r.verdict, IM_SEND_RETRY, "a post without an id");
}

Test(teams_api, dead_letters_unknown_and_oversized_with_the_fix)
{
	answer(0, 404, "{\"error\":{\"code\":\"ConversationNotFound\"}}", NULL);
	im_send_result r = send_to("19:gone", NULL, NULL);
	cr_expect_eq(r.verdict, IM_SEND_PERMANENT);
	cr_expect(strstr(r.hint, "channel id"), "%s", r.hint);
	cr_expect_eq(r.flags & IM_SEND_EDIT_FAILED, 0u);
	r = send_to("19:gone", NULL, "5");
	cr_expect(r.flags & IM_SEND_EDIT_FAILED, "a lost activity: post anew");
	S.n = 0;
	answer(0, 413, "{\"error\":{\"code\":\"MessageSizeTooBig\"}}", NULL);
	r = send_to("19:a", NULL, NULL);
	cr_expect_eq(r.verdict, IM_SEND_PERMANENT);
	cr_expect(strstr(r.hint, "100 KB"), "%s", r.hint);
}

Test(teams_api, a_refused_secret_dead_letters_without_calling_teams)
{
	S.login_status = 401;
	S.login_body = "{\"error\":\"invalid_client\",\"error_description\":"
		       "\"AADSTS7000215: Invalid client secret.%d\"}";
	answer(0, 201, "{\"id\":\"1\"}", NULL);
	im_send_result r = send_to("19:a", NULL, NULL);
	cr_expect_eq(r.verdict, IM_SEND_PERMANENT);
	cr_expect_str_eq(r.error, "token_refused");
	cr_expect(strstr(r.hint, "AADSTS7000215"), "%s", r.hint);
	cr_expect_eq(S.calls, 0);
}
