#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "slack_util.h"

srv slack_srv;
fake_slack *slack_fake;

void (*slack_prepare)(fake_slack *f, const char *dir);

void slack_start_raw(const char *slack_cfg, const char *top)
{
	srv_init(&slack_srv);
	slack_fake = fake_slack_start(0);
	cr_assert(slack_fake, "the fake Slack did not start");
	if (slack_prepare)
		slack_prepare(slack_fake, slack_srv.dir);
	srv_conf(&slack_srv, "10-slack.yaml",
		 "log: {level: debug}\n"
		 "chatops:\n  command_budget: 500ms\n"
		 "%s\n"
		 "plugins:\n  instances:\n"
		 "    - id: slack\n      module: slack\n      config:\n"
		 "        api_base_url: %s\n"
		 "%s\n"
		 "    - {id: incident, module: incident-commands}\n"
		 "    - {id: mustache, module: mustache}\n"
		 "    - {id: tc, module: testconn}\n",
		 top, fake_slack_api_url(slack_fake), slack_cfg);
	if (!srv_start(&slack_srv)) {
		char *log = srv_log(&slack_srv);
		cr_assert_fail("im serve did not start:\n%s", log);
	}
}

void slack_start(const char *slack_cfg, const char *top)
{
	char cfg[2048];
	snprintf(cfg, sizeof(cfg),
		 "        bot_token: xoxb-test\n"
		 "        signing_secret: " SLACK_SECRET "\n%s",
		 slack_cfg);
	slack_start_raw(cfg, top);
}

void slack_stop(void)
{
	/* A clean exit: no hang, and under the sanitizers no report. */
	int rc = slack_srv.pid > 0 ? srv_stop(&slack_srv) : 0;
	char *log = srv_log(&slack_srv);
	bool sane = !strstr(log, "Sanitizer");
	cr_expect(rc == 0 && sane, "im serve exited with %d:\n%s", rc,
		  sane ? "" : log);
	free(log);
	srv_cleanup(&slack_srv);
	fake_slack_stop(slack_fake);
	slack_fake = NULL;
}

reply slack_post(const char *path, const char *ctype, const char *body,
		 const char *secret, long skew, const char *extra)
{
	return slack_post_at(path, ctype, body, secret,
			     (long)time(NULL) + skew, extra);
}

reply slack_post_at(const char *path, const char *ctype, const char *body,
		    const char *secret, long when, const char *extra)
{
	char url[256], ts[32], sig[80], h_ts[64], h_sig[128], h_ct[128];
	snprintf(url, sizeof(url), "/hooks/slack/%s", path);
	snprintf(ts, sizeof(ts), "%ld", when);
	const char *headers[5] = {0};
	int n = 0;
	snprintf(h_ct, sizeof(h_ct), "Content-Type: %s", ctype);
	headers[n++] = h_ct;
	if (secret) {
		size_t blen = strlen(body), tl = strlen(ts);
		char *base = malloc(blen + tl + 5);
		snprintf(base, blen + tl + 5, "v0:%s:%s", ts, body);
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		HMAC(EVP_sha256(), secret, (int)strlen(secret),
		     (unsigned char *)base, strlen(base), md, &mdlen);
		free(base);
		strcpy(sig, "v0=");
		for (unsigned i = 0; i < mdlen; i++)
			sprintf(sig + 3 + 2 * i, "%02x", md[i]);
		snprintf(h_ts, sizeof(h_ts), "X-Slack-Request-Timestamp: %s", ts);
		snprintf(h_sig, sizeof(h_sig), "X-Slack-Signature: %s", sig);
		headers[n++] = h_ts;
		headers[n++] = h_sig;
	}
	if (extra)
		headers[n++] = extra;
	return http(&slack_srv, false, "POST", url, body, strlen(body),
		    headers);
}

char *slack_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *out = strdup(e);
	curl_free(e);
	return out;
}

reply slack_command(const char *text, const char *name)
{
	char rurl[256], body[2048];
	fake_slack_response_url(slack_fake, name, rurl, sizeof(rurl));
	char *t = slack_escape(text), *u = slack_escape(rurl);
	snprintf(body, sizeof(body),
		 "token=x&team_id=T0ACME&team_domain=acme&channel_id=C0GENERAL&"
		 "channel_name=general&user_id=U1&user_name=ada&command=%%2F"
		 "incident&text=%s&api_app_id=A0FAKE&response_url=%s&"
		 "trigger_id=1.2.3",
		 t, u);
	free(t);
	free(u);
	return slack_post("commands", "application/x-www-form-urlencoded",
			  body, SLACK_SECRET, 0, NULL);
}

json_t *slack_json(const reply *r)
{
	json_error_t je;
	return r->body ? json_loads(r->body, 0, &je) : NULL;
}

int slack_cli(char **out, const char *const *args)
{
	char *err = NULL;
	int rc = cli(&slack_srv, out, &err, args);
	if (out && err && *err) {
		/* Keep stderr with stdout: messages go to either. */
		size_t n = strlen(*out) + strlen(err) + 1;
		char *both = malloc(n);
		snprintf(both, n, "%s%s", *out, err);
		free(*out);
		*out = both;
	}
	free(err);
	return rc;
}

bool slack_log_has(const char *needle)
{
	char *log = srv_log(&slack_srv);
	bool has = strstr(log, needle) != NULL;
	free(log);
	return has;
}

double slack_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}
