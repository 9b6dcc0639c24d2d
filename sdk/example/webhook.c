/* webhook: a whole chat connector built outside the im tree, against the
 * installed SDK only (<im/im.h>), jansson and OpenSSL's libcrypto.
 *   make            (uses pkg-config im-plugin, or IM_INCLUDE=/path)
 *
 * Outbound, it posts each notification the pipeline renders (templates in
 * templates/webhook/) as JSON to `url`, "{channel}" replaced by the
 * channel id; an edit is a PATCH to <that url>/<message id>. Every body is
 * signed (see sign() below). The receiver's answer becomes a verdict the
 * pipeline acts on: retry, wait out a rate limit, or dead-letter.
 *
 * Inbound, POST /hooks/<instance>/commands takes a signed JSON command
 *   {"user_id","user_name","channel","text":"ack INC-7"}
 * or a button press
 *   {"user_id","user_name","channel","action_id":"im_ack","value":"INC-7"}
 * (optionally "team", "command", "response_url") and runs it through the
 * host's command framework. The host answers with the reply JSON; late
 * results are POSTed (signed) to "response_url" or to the channel's url.
 *
 * Signing, both ways:
 *   X-Im-Timestamp: <unix seconds>
 *   X-Im-Signature: v1=<hex HMAC-SHA256(secret, timestamp "." body)>
 * Inbound requests more than 300 s off the server's clock are refused, and
 * one signature is run once (a replay is answered 409).
 *
 * Escaping (the platform rules below; the host applies them to incident
 * text before a template renders): the receiver is assumed to render
 * CommonMark-ish text, so \ * _ ` [ ] ~ get a backslash and & < > become
 * &amp; &lt; &gt; (no raw HTML, no autolinks, no block quotes); @channel
 * and @here are defused with a zero-width space. */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <im/im.h>

#define PLATFORM "webhook"
#define MAX_SKEW_S 300   /* inbound timestamps: this far off at most */
#define TEXT_MAX 4000    /* characters of "text" */
#define FIELDS_MAX 10    /* entries of "fields" */
#define FIELD_VALUE_MAX 1000
#define REPLAY_SLOTS 512 /* signatures remembered against replays */

/* The instance's config, filled by host->config_fill. */
typedef struct wh_cfg {
	const char *url;
	const char *secret;
	int64_t timeout_ms;
	const char *default_channel;
} wh_cfg;

/* A signature seen, and until when it would still be accepted. */
typedef struct seen {
	char sig[3 + 2 * EVP_MAX_MD_SIZE + 1];
	long long until;
} seen;

typedef struct wh {
	const im_host *host;
	im_instance *inst;
	wh_cfg cfg;
	/* Route handlers run on several threads at once: the replay cache
	 * is the only state they share, under this lock. */
	pthread_mutex_t mu;
	seen replays[REPLAY_SLOTS];
	size_t next_slot;
} wh;

static const im_config_key keys[] = {
    {IM_CONFIG_KEY_HEADER, .name = "url", .type = IM_CFG_STRING,
     .description = "POST target of new messages; {channel} becomes the "
		    "channel id (edits PATCH <url>/<message id>)",
     IM_CONFIG_STORE(wh_cfg, url, IM_STORE_STRING)},
    {IM_CONFIG_KEY_HEADER, .name = "secret", .type = IM_CFG_STRING,
     .flags = IM_CFG_SECRET,
     .description = "HMAC-SHA256 key: signs outbound bodies, verifies "
		    "inbound commands",
     IM_CONFIG_STORE(wh_cfg, secret, IM_STORE_STRING)},
    {IM_CONFIG_KEY_HEADER, .name = "timeout", .type = IM_CFG_DURATION,
     .default_value = "5s", .description = "HTTP timeout of one send",
     IM_CONFIG_STORE(wh_cfg, timeout_ms, IM_STORE_MS)},
    /* Also read by the host's notification pipeline. */
    {IM_CONFIG_KEY_HEADER, .name = "default_channel", .type = IM_CFG_STRING,
     .description = "channel for incident events of severities not routed "
		    "below, and for late command results without one",
     IM_CONFIG_STORE(wh_cfg, default_channel, IM_STORE_STRING)},
    {IM_CONFIG_KEY_HEADER, .name = "notification_channels",
     .type = IM_CFG_MAP,
     .description = "severity routing: {SEV-1: channel id, ...}"},
    {0},
};

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool set(const char *s)
{
	return s && *s;
}

/* --- signing --------------------------------------------------------------- */

/* "v1=" and the hex HMAC-SHA256 of `ts` "." `body` under the secret. */
static int sign(const char *secret, const char *ts, const void *body,
		size_t len, char out[3 + 2 * EVP_MAX_MD_SIZE + 1])
{
	size_t tl = strlen(ts);
	unsigned char *msg = malloc(tl + 1 + len + 1);
	if (!msg)
		return IM_ENOMEM;
	memcpy(msg, ts, tl);
	msg[tl] = '.';
	if (len)
		memcpy(msg + tl + 1, body, len);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char *ok = HMAC(EVP_sha256(), secret, (int)strlen(secret),
				 msg, tl + 1 + len, md, &mdlen);
	free(msg);
	if (!ok)
		return IM_EIO;
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "v1=", 3);
	for (unsigned int i = 0; i < mdlen; i++) {
		out[3 + 2 * i] = hex[md[i] >> 4];
		out[3 + 2 * i + 1] = hex[md[i] & 15];
	}
	out[3 + 2 * mdlen] = '\0';
	return 0;
}

/* A blocking, signed JSON request; *res as http_fetch leaves it. */
static int fetch_signed(wh *w, const char *method, const char *url,
			const char *body, const char *event_type,
			const char *dedup_key, im_http_result **res)
{
	char ts[32], sig[3 + 2 * EVP_MAX_MD_SIZE + 1];
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	size_t len = strlen(body);
	int rc = sign(w->cfg.secret, ts, body, len, sig);
	if (rc != 0)
		return rc;
	im_http_header h[5] = {
	    IM_HEADER("Content-Type", "application/json"),
	    IM_HEADER("X-Im-Timestamp", ts),
	    IM_HEADER("X-Im-Signature", sig),
	};
	size_t n = 3;
	if (set(event_type))
		h[n++] = (im_http_header)IM_HEADER("X-Im-Event", event_type);
	if (set(dedup_key)) /* stable per outbox row: drop repeats with it */
		h[n++] = (im_http_header)IM_HEADER("X-Dedup-Key", dedup_key);
	im_http_call call = {
	    .struct_size = sizeof(call),
	    .method = method,
	    .url = url,
	    .headers = h,
	    .n_headers = n,
	    .body = body,
	    .body_len = len,
	    .timeout_ms = w->cfg.timeout_ms > 0 && w->cfg.timeout_ms < 600000
			      ? (uint32_t)w->cfg.timeout_ms
			      : 5000,
	};
	return w->host->http_fetch(w->inst, &call, res);
}

/* --- outbound: URLs -------------------------------------------------------- */

/* Appends `s` percent-encoded (everything but unreserved characters). */
static size_t put_escaped(char *out, size_t cap, size_t at, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || strchr("-._~", c)) {
			if (at + 1 < cap)
				out[at] = (char)c;
			at++;
		} else {
			if (at + 3 < cap) {
				out[at] = '%';
				out[at + 1] = hex[c >> 4];
				out[at + 2] = hex[c & 15];
			}
			at += 3;
		}
	}
	return at;
}

/* The url with {channel} replaced, plus "/<message_id>" (before any query
 * string) for an edit. Returns false when it does not fit. */
static bool make_url(const char *tpl, const char *channel,
		     const char *message_id, char *out, size_t cap)
{
	size_t at = 0;
	const char *query = strchr(tpl, '?');
	const char *end = query ? query : tpl + strlen(tpl);
	for (const char *p = tpl; p < end;) {
		if (!strncmp(p, "{channel}", 9) && p + 9 <= end) {
			at = put_escaped(out, cap, at, channel ? channel : "");
			p += 9;
			continue;
		}
		if (at + 1 < cap)
			out[at] = *p;
		at++;
		p++;
	}
	if (set(message_id)) {
		if (at + 1 < cap)
			out[at] = '/';
		at++;
		at = put_escaped(out, cap, at, message_id);
	}
	if (query) {
		size_t ql = strlen(query);
		if (at + ql < cap)
			memcpy(out + at, query, ql);
		at += ql;
	}
	if (at >= cap)
		return false;
	out[at] = '\0';
	return true;
}

/* --- outbound: send() ------------------------------------------------------- */

static void verdict(im_send_result *res, uint32_t v, const char *error,
		    const char *hint)
{
	res->verdict = v;
	snprintf(res->error, sizeof(res->error), "%s", error ? error : "");
	snprintf(res->hint, sizeof(res->hint), "%s", hint ? hint : "");
}

static const char *header(const im_http_result *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (r->headers[i].name && !strcmp(r->headers[i].name, name))
			return r->headers[i].value;
	return NULL;
}

/* What an operator should do about a refusal. */
static const char *hint_for(long status)
{
	switch (status) {
	case 400:
	case 422:
		return "the receiver refused the payload: check the "
		       "templates/webhook/ templates (im chatops templates "
		       "validate --platform webhook)";
	case 401:
	case 403:
		return "the receiver refused the signature: check that its "
		       "secret is this instance's secret";
	case 404:
	case 410:
		return "check the channel id / url";
	case 413:
		return "the payload is too large for the receiver: shorten "
		       "the templates";
	default:
		return status >= 300 && status < 400
			   ? "the url redirects: point url at the final "
			     "address"
			   : "the receiver refused the message; see its error";
	}
}

/* The receiver's answer -> what the pipeline should do. */
static void classify(const im_http_result *r, im_send_result *res)
{
	json_t *body = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
	const char *err = str(body, "error");
	char code[32];
	snprintf(code, sizeof(code), "http_%ld", r->status);
	res->http_status = r->status;
	if (r->status >= 200 && r->status < 300) {
		const json_t *id = json_object_get(body, "id");
		char idbuf[64] = "";
		if (json_is_integer(id))
			snprintf(idbuf, sizeof(idbuf), "%lld",
				 (long long)json_integer_value(id));
		const char *mid = json_is_string(id) ? json_string_value(id)
							: idbuf;
		if (*mid && strlen(mid) < sizeof(res->message_id)) {
			verdict(res, IM_SEND_OK, NULL, NULL);
			snprintf(res->message_id, sizeof(res->message_id), "%s",
				 mid);
			const char *th = str(body, "thread_id");
			snprintf(res->thread_id, sizeof(res->thread_id), "%s",
				 set(th) ? th : mid);
		} else {
			/* It may have posted; we cannot tell. Again, with the
			 * same X-Dedup-Key, so the receiver can drop a repeat. */
			verdict(res, IM_SEND_RETRY, "bad_response",
				"the receiver answered 2xx without a JSON "
				"\"id\"");
		}
	} else if (r->status == 429) {
		const char *ra = header(r, "retry-after");
		double wait = ra ? strtod(ra, NULL) : 0;
		if (!(wait > 0))
			wait = json_number_value(json_object_get(body,
								 "retry_after"));
		res->retry_after_s = wait > 0 && wait < 86400 ? wait : 0;
		bool global = json_is_true(json_object_get(body, "global"));
		verdict(res, IM_SEND_RATE_LIMITED,
			global ? "global_rate_limited" : "rate_limited", NULL);
		if (global)
			res->flags |= IM_SEND_LIMIT_GLOBAL;
	} else if (r->status >= 500) {
		verdict(res, IM_SEND_RETRY, set(err) ? err : code, NULL);
	} else {
		verdict(res, IM_SEND_PERMANENT, set(err) ? err : code,
			hint_for(r->status));
	}
	json_decref(body);
}

static int send_msg(void *state, const im_send *msg, im_send_result *res)
{
	wh *w = state;
	char url[2048];
	if (!make_url(w->cfg.url, msg->channel, msg->message_id, url,
		      sizeof(url))) {
		verdict(res, IM_SEND_PERMANENT, "url_too_long",
			"shorten url or the channel id");
		return 0;
	}
	json_t *payload = json_is_object(msg->payload)
			      ? json_deep_copy(msg->payload)
			      : json_pack("{s:O?}", "text", msg->payload);
	if (payload && set(msg->thread_id))
		json_object_set_new(payload, "thread_id",
				    json_string(msg->thread_id));
	char *body = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	json_decref(payload);
	if (!body) {
		verdict(res, IM_SEND_RETRY, "no_memory", NULL);
		return IM_ENOMEM;
	}
	im_http_result *r = NULL;
	int rc = fetch_signed(w, set(msg->message_id) ? "PATCH" : "POST", url,
			      body, msg->event_type, msg->dedup_key, &r);
	free(body);
	if (rc != 0 || !r || r->error) {
		bool timeout = rc == IM_ETIMEDOUT ||
			       (r && r->error == IM_ETIMEDOUT);
		verdict(res, IM_SEND_RETRY, timeout ? "timeout" : "network",
			r && r->error_text ? r->error_text : NULL);
	} else {
		classify(r, res);
	}
	if (r)
		w->host->http_result_free(r);
	return 0;
}

/* --- inbound: signed commands ------------------------------------------------ */

static int text_answer(wh *w, im_http_response *resp, int status,
		       const char *text)
{
	return w->host->resp_set(resp, status, "text/plain; charset=utf-8",
				 text, strlen(text));
}

/* 0 when the request is signed with our secret within the window; else
 * *why says what is wrong. */
static int verify(wh *w, const im_http_request *req, const char *body,
		  size_t len, const char **why)
{
	const char *ts = w->host->req_header(req, "X-Im-Timestamp");
	const char *sig = w->host->req_header(req, "X-Im-Signature");
	if (!set(ts) || !set(sig)) {
		*why = "missing X-Im-Timestamp or X-Im-Signature";
		return -1;
	}
	char *end = NULL;
	long long t = strtoll(ts, &end, 10);
	long long now = (long long)time(NULL);
	if (*end || end == ts || t < now - MAX_SKEW_S || t > now + MAX_SKEW_S) {
		*why = "stale timestamp";
		return -1;
	}
	char want[3 + 2 * EVP_MAX_MD_SIZE + 1];
	if (sign(w->cfg.secret, ts, body, len, want) != 0) {
		*why = "cannot compute the signature";
		return -1;
	}
	size_t n = strlen(want);
	if (strlen(sig) != n || CRYPTO_memcmp(sig, want, n) != 0) {
		*why = "bad signature";
		return -1;
	}
	return 0;
}

/* True when this signature (so this timestamp and body) was accepted
 * before and is still inside the window: a replay, or the sender retrying
 * a request it thinks was lost. Either way it must not run twice. The
 * cache holds the last REPLAY_SLOTS signatures; one that fell out of it is
 * usually out of the window too. */
static bool replayed(wh *w, const char *sig, long long ts)
{
	long long now = (long long)time(NULL);
	bool again = false;
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < REPLAY_SLOTS && !again; i++)
		again = w->replays[i].until >= now &&
			!strcmp(w->replays[i].sig, sig);
	if (!again) {
		seen *e = &w->replays[w->next_slot];
		w->next_slot = (w->next_slot + 1) % REPLAY_SLOTS;
		snprintf(e->sig, sizeof(e->sig), "%s", sig);
		e->until = ts + MAX_SKEW_S;
	}
	pthread_mutex_unlock(&w->mu);
	return again;
}

/* A member that, when present, must be a string. */
static bool opt_string(const json_t *o, const char *k, const char **why)
{
	const json_t *v = json_object_get(o, k);
	if (v && !json_is_string(v) && !json_is_null(v)) {
		*why = k;
		return false;
	}
	return true;
}

static int on_command(void *state, const im_http_request *req,
		      im_http_response *resp)
{
	wh *w = state;
	size_t len = 0;
	const char *body = w->host->req_body(req, &len);
	const char *why = NULL;
	if (verify(w, req, body ? body : "", len, &why) != 0) {
		IM_DEBUG(w->host, w->inst, "refused a command: %s", why);
		return text_answer(w, resp, 401, why);
	}
	if (replayed(w, w->host->req_header(req, "X-Im-Signature"),
		     strtoll(w->host->req_header(req, "X-Im-Timestamp"), NULL,
			     10))) {
		IM_INFO(w->host, w->inst, "the same signed command again; not "
					  "run twice");
		return text_answer(w, resp, 409, "replayed request: this "
						 "signed command was already "
						 "received");
	}
	json_error_t je;
	json_t *in = json_loadb(body ? body : "", len, 0, &je);
	char msg[256];
	if (!in) {
		snprintf(msg, sizeof(msg), "malformed JSON: %s (line %d, column "
			 "%d)", je.text, je.line, je.column);
		return text_answer(w, resp, 400, msg);
	}
	static const char *const fields[] = {
	    "user_id", "user_name", "channel",	    "team", "text",
	    "command", "action_id", "value", "response_url", NULL};
	int rc;
	if (!json_is_object(in)) {
		rc = text_answer(w, resp, 400, "malformed JSON: the body must "
					       "be an object");
		goto out;
	}
	for (const char *const *f = fields; *f; f++)
		if (!opt_string(in, *f, &why)) {
			snprintf(msg, sizeof(msg),
				 "malformed command: \"%s\" must be a string",
				 why);
			rc = text_answer(w, resp, 400, msg);
			goto out;
		}
	if (!set(str(in, "user_id"))) {
		rc = text_answer(w, resp, 400,
				 "malformed command: \"user_id\" is required");
		goto out;
	}
	if (!str(in, "text") && !set(str(in, "action_id"))) {
		rc = text_answer(w, resp, 400,
				 "malformed command: give \"text\" (a typed "
				 "command) or \"action_id\" (a button)");
		goto out;
	}
	if (!IM_HOST_HAS(w->host, command_handle)) {
		rc = text_answer(w, resp, 501,
				 "this im server cannot run chat commands");
		goto out;
	}
	const char *action = str(in, "action_id");
	im_invocation inv = {
	    .struct_size = sizeof(inv),
	    .platform = PLATFORM,
	    .instance = w->host->instance_id(w->inst),
	    .team = str(in, "team"),
	    .channel = set(str(in, "channel")) ? str(in, "channel")
					       : w->cfg.default_channel,
	    .user_id = str(in, "user_id"),
	    .user_name = str(in, "user_name"),
	    .command = set(str(in, "command")) ? str(in, "command")
					       : "/incident",
	    .text = set(action) ? NULL
				: (str(in, "text") ? str(in, "text") : ""),
	    .action_id = set(action) ? action : NULL,
	    .action_value = set(action) ? (str(in, "value") ? str(in, "value")
							     : "")
					: NULL,
	    .response_ref = str(in, "response_url"),
	};
	/* The host answers within its command budget: the reply JSON (see
	 * im/command.h) as the HTTP answer, since answer() is NULL. */
	rc = w->host->command_handle(w->inst, &inv, resp);
out:
	json_decref(in);
	return rc;
}

static bool web_url(const char *u)
{
	return u && (!strncmp(u, "https://", 8) || !strncmp(u, "http://", 7));
}

/* Late results: signed POST of the reply JSON to the request's
 * response_url, else to the url of its channel. */
static int followup(void *state, const im_invocation *inv,
		    const json_t *reply)
{
	wh *w = state;
	char url[2048];
	if (web_url(inv->response_ref)) {
		snprintf(url, sizeof(url), "%s", inv->response_ref);
	} else if (!set(inv->channel) ||
		   !make_url(w->cfg.url, inv->channel, NULL, url, sizeof(url))) {
		IM_WARN(w->host, w->inst,
			"late result for %s has no channel or response_url; "
			"dropped",
			inv->user_id ? inv->user_id : "?");
		return IM_EINVAL;
	}
	char *body = json_dumps(reply, JSON_COMPACT);
	if (!body)
		return IM_ENOMEM;
	im_http_result *r = NULL;
	int rc = fetch_signed(w, "POST", url, body, "command.followup", NULL,
			      &r);
	free(body);
	if (rc == 0 && r && r->status >= 300)
		rc = IM_EIO;
	if (rc != 0)
		IM_WARN(w->host, w->inst, "follow-up POST failed: %s",
			r && r->error_text ? r->error_text
			: r && r->status   ? "HTTP error"
					   : "no HTTP");
	if (r)
		w->host->http_result_free(r);
	return rc;
}

static int status(void *state, json_t **out)
{
	(void)state;
	/* Not the url: it may carry a token in its query string. */
	*out = json_pack("{s:b}", "connected", 1);
	return *out ? 0 : IM_ENOMEM;
}

/* --- the platform's rules and limits ----------------------------------------- */

static const char *const replace[] = {"&", "&amp;", "<", "&lt;",
				      ">", "&gt;",  NULL};
static const char *const mentions[] = {"@channel", "@here", NULL};
static const char *const emoji[] = {
    "\xe2\x9d\x94",	    /* ❔ unknown */
    "\xf0\x9f\x94\xb4", /* 🔴 SEV-1 */
    "\xf0\x9f\x9f\xa0", /* 🟠 SEV-2 */
    "\xf0\x9f\x9f\xa1", /* 🟡 SEV-3 */
    "\xe2\x9a\xaa",	    /* ⚪ SEV-4 */
    NULL};
static const int64_t colors[] = {9807270, 15158332, 15105570, 15844367,
				 9807270};

static const im_platform_rules rules = {
    .struct_size = sizeof(im_platform_rules),
    .backslash = "\\*_`[]~",
    .replace = replace,
    .defuse = mentions,
    .mentions = mentions,
    .severity_emoji = emoji,
    .severity_color = colors,
    .secret_prefixes = NULL, /* a shared secret has no telltale prefix */
};

/* {"text": non-empty, at most 4000 characters, "fields": at most 10
 * objects whose "value" is at most 1000 characters}. */
static int fit_payload(json_t *payload, const im_payload_ops *ops)
{
	if (!json_is_object(payload)) {
		ops->problem(ops, NULL, "a webhook payload is a JSON object");
		return 0;
	}
	json_t *text = json_object_get(payload, "text");
	if (!json_is_string(text) || ops->length(text) == 0)
		ops->problem(ops, "\"text\"",
			     "a webhook payload needs a non-empty string "
			     "\"text\"");
	else
		ops->cut(ops, text, TEXT_MAX);
	json_t *fields = json_object_get(payload, "fields");
	if (!fields)
		return 0;
	if (!json_is_array(fields)) {
		ops->problem(ops, "\"fields\"", "\"fields\" is a list");
		return 0;
	}
	size_t n = json_array_size(fields);
	if (n > FIELDS_MAX) {
		if (ops->validating)
			ops->problem(ops, "\"fields\"",
				     "%zu fields; only the first %d are sent",
				     n, FIELDS_MAX);
		while (json_array_size(fields) > FIELDS_MAX)
			json_array_remove(fields, FIELDS_MAX);
	}
	size_t i;
	json_t *f;
	json_array_foreach(fields, i, f)
	{
		if (!json_is_object(f)) {
			ops->problem(ops, "\"fields\"",
				     "fields[%zu] is not an object", i);
			continue;
		}
		json_t *value = json_object_get(f, "value");
		if (json_is_string(value))
			ops->cut(ops, value, FIELD_VALUE_MAX);
	}
	return 0;
}

/* --- lifetime -------------------------------------------------------------------- */

static int create(const im_host *host, im_instance *inst,
		  const json_t *config, void **state)
{
	(void)config; /* read through config_fill */
	/* Chat commands (command_handle) are checked per request: a host
	 * without them still gets notifications delivered. */
	if (!IM_HOST_HAS(host, config_fill) || !IM_HOST_HAS(host, http_fetch)) {
		host->set_state(inst, IM_STATE_FAILED,
				"this im is too old for the webhook connector "
				"(needs plugin ABI 1.3)");
		return IM_EUNSUPPORTED;
	}
	wh *w = calloc(1, sizeof(*w));
	if (!w)
		return IM_ENOMEM;
	w->host = host;
	w->inst = inst;
	int rc = host->config_fill(inst, &w->cfg, sizeof(w->cfg));
	if (rc != 0) {
		free(w);
		return rc;
	}
	if (!set(w->cfg.url) || !set(w->cfg.secret)) {
		host->set_state(inst, IM_STATE_UNCONFIGURED,
				!set(w->cfg.url) && !set(w->cfg.secret)
				    ? "set url and secret"
				: !set(w->cfg.url) ? "set url"
						   : "set secret");
		free(w);
		return IM_EUNCONFIGURED;
	}
	if (!web_url(w->cfg.url)) {
		host->set_state(inst, IM_STATE_FAILED,
				"url must start with http:// or https://");
		free(w);
		return IM_ECONFIG;
	}
	pthread_mutex_init(&w->mu, NULL);
	rc = host->route_add(inst, "POST", "commands", on_command);
	if (rc != 0) {
		pthread_mutex_destroy(&w->mu);
		free(w);
		return rc;
	}
	host->set_connected(inst, PLATFORM, 1);
	*state = w;
	return 0;
}

static void destroy(void *state)
{
	wh *w = state;
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static const im_connector connector = {
    .base = {sizeof(im_connector), IM_COMPONENT_CONNECTOR, PLATFORM},
    .platform = PLATFORM,
    .status = status,
    .answer = NULL, /* the host answers with the reply JSON */
    .followup = followup,
    .send = send_msg,
    /* Defaults; chatops.rate_limits.<instance> overrides them. */
    .rate_per_channel = 1,
    .burst_per_channel = 3,
    .rate_global = 0,
    .rules = &rules,
    .fit_payload = fit_payload,
};

static const im_component *const components[] = {&connector.base, NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "webhook",
    .version = "1.0.0",
    .description = "Example connector: signed JSON webhooks out, signed "
		   "JSON commands in",
    .vendor = "Example Corp",
    .license = "MIT",
    .components = components,
    .config_keys = keys,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
