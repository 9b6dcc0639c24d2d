/* plugins/teams/token.c alone: a scripted login service behind the post()
 * callback and a clock the tests move. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <im/types.h>

#include "token.h"

static struct {
	pthread_mutex_t mu;
	time_t now;
	int posts;
	char url[256], form[512];
	long status;     /* next answer */
	const char *body; /* next answer; NULL = no answer (network error) */
	int serial;      /* makes every token different */
	int delay_ms;    /* slow login service */
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int post(void *ud, const char *url, const char *form, long *status,
		char **body)
{
	(void)ud;
	if (L.delay_ms)
		usleep((useconds_t)L.delay_ms * 1000);
	pthread_mutex_lock(&L.mu);
	L.posts++;
	snprintf(L.url, sizeof L.url, "%s", url);
	snprintf(L.form, sizeof L.form, "%s", form);
	int rc = 0;
	if (!L.body) {
		*body = strdup("connection refused");
		rc = IM_EIO;
	} else {
		char b[512];
		snprintf(b, sizeof b, L.body, ++L.serial);
		*status = L.status;
		*body = strdup(b);
	}
	pthread_mutex_unlock(&L.mu);
	return rc;
}

static time_t clock_now(void *ud)
{
	(void)ud;
	pthread_mutex_lock(&L.mu);
	time_t t = L.now;
	pthread_mutex_unlock(&L.mu);
	return t;
}

#define GOOD "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"tok-%d\"}"

static tms_token *make(const char *tenant, const char *secret)
{
	L.now = 1000000;
	L.posts = 0;
	L.serial = 0;
	L.status = 200;
	L.body = GOOD;
	L.delay_ms = 0;
	tms_token_cfg c = {.login_url = "http://127.0.0.1:9/login/",
			   .tenant = tenant,
			   .app_id = "app-1",
			   .app_password = secret,
			   .post = post,
			   .now = clock_now};
	tms_token *t = tms_token_new(&c);
	cr_assert(t);
	return t;
}

Test(teams_token, fetches_once_and_reuses_until_five_minutes_before_expiry)
{
	tms_token *t = make("tenant-9", "s3cr+t/=&x");
	char tok[128], why[320];
	cr_assert_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why), 0, "%s",
		     why);
	cr_expect_str_eq(tok, "tok-1");
	cr_expect_str_eq(L.url, "http://127.0.0.1:9/login/tenant-9/oauth2/v2.0/token");
	cr_expect_str_eq(L.form,
			 "grant_type=client_credentials&client_id=app-1"
			 "&client_secret=s3cr%2Bt%2F%3D%26x&scope=https%3A%2F%2F"
			 "api.botframework.com%2F.default");
	L.now += 3599 - 301;
	cr_assert_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why), 0);
	cr_expect_str_eq(tok, "tok-1", "still 301 s left");
	cr_expect_eq(L.posts, 1);
	L.now += 2;
	cr_assert_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why), 0);
	cr_expect_str_eq(tok, "tok-2", "refreshed 5 minutes before expiry");
	cr_expect_eq(L.posts, 2);
	tms_token_free(t);
}

Test(teams_token, uses_botframework_com_without_a_tenant)
{
	tms_token *t = make("", "x");
	char tok[128], why[320];
	cr_assert_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why), 0);
	cr_expect_str_eq(L.url, "http://127.0.0.1:9/login/botframework.com/"
				"oauth2/v2.0/token");
	json_t *st = tms_token_status(t);
	cr_expect_str_eq(json_string_value(json_object_get(st, "tenant")),
			 "botframework.com");
	cr_expect(json_is_true(json_object_get(st, "valid")));
	json_decref(st);
	tms_token_free(t);
}

static tms_token *shared;

static void *getter(void *arg)
{
	char tok[128], why[320];
	int rc = tms_token_get(shared, tok, sizeof tok, why, sizeof why);
	return (void *)(long)(rc == 0 && strcmp(tok, "tok-1") == 0);
}

Test(teams_token, many_callers_share_one_fetch)
{
	shared = make("t", "x");
	L.delay_ms = 200;
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, getter, NULL);
	int ok = 0;
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(th[i], &r);
		ok += (int)(long)r;
	}
	cr_expect_eq(ok, 8);
	cr_expect_eq(L.posts, 1, "one fetch for 8 callers");
	tms_token_free(shared);
}

Test(teams_token, a_401_drops_the_token_once)
{
	tms_token *t = make("t", "x");
	char tok[128], old[128], why[320];
	cr_assert_eq(tms_token_get(t, old, sizeof old, why, sizeof why), 0);
	tms_token_invalidate(t, old);
	cr_assert_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why), 0);
	cr_expect_str_eq(tok, "tok-2");
	/* A late 401 for the old token must not drop the new one. */
	tms_token_invalidate(t, old);
	cr_assert_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why), 0);
	cr_expect_str_eq(tok, "tok-2");
	cr_expect_eq(L.posts, 2);
	tms_token_free(t);
}

Test(teams_token, explains_a_wrong_tenant)
{
	tms_token *t = make("wrong-tenant", "x");
	L.status = 400;
	L.body = "{\"error\":\"unauthorized_client\",\"error_description\":"
		 "\"AADSTS700016: Application with identifier 'app-1' was not "
		 "found in the directory 'wrong-tenant'.%d\"}";
	char tok[128], why[320];
	cr_expect_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why),
		     IM_EPERM);
	cr_expect(strstr(why, "AADSTS700016") && strstr(why, "set tenant_id"),
		  "%s", why);
	json_t *st = tms_token_status(t);
	cr_expect(strstr(json_string_value(json_object_get(st, "last_error")),
			 "AADSTS700016"));
	cr_expect(json_is_false(json_object_get(st, "valid")));
	json_decref(st);
	tms_token_free(t);
}

Test(teams_token, explains_a_wrong_secret_and_holds_the_refusal_30_s)
{
	tms_token *t = make("t", "bad");
	L.status = 401;
	L.body = "{\"error\":\"invalid_client\",\"error_description\":"
		 "\"AADSTS7000215: Invalid client secret provided.%d\"}";
	char tok[128], why[320];
	cr_expect_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why),
		     IM_EPERM);
	cr_expect(strstr(why, "app_password") && strstr(why, "AADSTS7000215"),
		  "%s", why);
	for (int i = 0; i < 100; i++)
		cr_expect_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why),
			     IM_EPERM);
	cr_expect_eq(L.posts, 1, "refusals within 30 s come from memory");
	/* The operator fixed the secret on the login side; 30 s later it
	 * is asked again. */
	L.status = 200;
	L.body = GOOD;
	L.now += 31;
	cr_expect_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why), 0);
	cr_expect_eq(L.posts, 2);
	tms_token_free(t);
}

Test(teams_token, says_when_the_login_service_is_unreachable_or_odd)
{
	tms_token *t = make("t", "x");
	L.body = NULL;
	char tok[128], why[320];
	cr_expect_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why),
		     IM_EIO);
	cr_expect(strstr(why, "cannot reach the login service"), "%s", why);
	L.now += 31;
	L.body = "{\"access_token\":\"t%d\"}"; /* no expires_in */
	cr_expect_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why),
		     IM_EIO);
	cr_expect(strstr(why, "without a usable"), "%s", why);
	L.now += 31;
	L.status = 503;
	L.body = "{%d}";
	cr_expect_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why),
		     IM_EIO);
	cr_expect(strstr(why, "HTTP 503"), "%s", why);
	tms_token_free(t);
}

Test(teams_token, a_short_lived_token_is_refreshed_at_half_its_life)
{
	tms_token *t = make("t", "x");
	L.body = "{\"expires_in\":\"60\",\"access_token\":\"tok-%d\"}";
	char tok[128], why[320];
	cr_assert_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why), 0);
	L.now += 29;
	cr_assert_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why), 0);
	cr_expect_str_eq(tok, "tok-1");
	L.now += 2;
	cr_assert_eq(tms_token_get(t, tok, sizeof tok, why, sizeof why), 0);
	cr_expect_str_eq(tok, "tok-2");
	cr_expect_eq(tms_token_get(t, tok, 3, why, sizeof why), IM_EINVAL,
		     "no room");
	tms_token_free(t);
}
