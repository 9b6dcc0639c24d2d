/* Bot Connector delivery calls and their verdicts; see api.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

void tms_answer_clear(tms_answer *a)
{
	free(a->body);
	free(a->retry_after);
	memset(a, 0, sizeof(*a));
}

static double retry_after_s(const char *v)
{
	if (!v || !*v)
		return 0;
	char *end;
	double s = strtod(v, &end);
	return end != v && s > 0 && s < 3600 ? s : 0;
}

/* The fix for the Bot Connector's documented error codes. */
static const struct {
	long status;
	const char *code;
	const char *hint;
} fixes[] = {
    {403, "BotNotInConversationRoster",
     "the app is not installed where it posts: add the app to that team "
     "or chat (Teams > Apps > Add to a team)"},
    {403, "ConversationBlockedByUser",
     "the user blocked the bot: they must unblock it in Teams"},
    {403, "BotDisabledByAdmin",
     "a Teams admin disabled the app: ask the admin to allow it in the "
     "Teams admin center (Manage apps)"},
    {403, "MessageWritesBlocked",
     "the conversation does not accept messages from bots (read-only or "
     "archived)"},
    {401, NULL,
     "the Bot Connector refused the token: check app_id, app_password and "
     "tenant_id (a token of another tenant or an expired secret)"},
    {404, NULL,
     "the conversation is unknown: check the channel id (19:...@thread...) "
     "and that the app is installed in its team"},
    {413, NULL, "the message is larger than Teams takes (100 KB): shorten "
		"the teams/ templates"},
    {400, NULL, "Teams rejected the activity: check the teams/ templates "
		"(im chatops templates validate --platform teams)"},
};

void tms_classify(const tms_answer *a, bool edit, im_send_result *res)
{
	res->http_status = a->status;
	res->retry_after_s = retry_after_s(a->retry_after);
	json_t *j = a->body ? json_loads(a->body, 0, NULL) : NULL;
	const char *code = json_string_value(
	    json_object_get(json_object_get(j, "error"), "code"));
	snprintf(res->error, sizeof res->error, "%s",
		 code		  ? code
		 : a->status == 0 ? "no_answer"
				  : "");
	if (a->status >= 200 && a->status < 300) {
		const char *id = json_string_value(json_object_get(j, "id"));
		if ((id && *id) || edit) {
			/* An update may answer without an id: it keeps its. */
			res->verdict = IM_SEND_OK;
			snprintf(res->message_id, sizeof res->message_id, "%s",
				 id ? id : "");
		} else {
			res->verdict = IM_SEND_RETRY;
			snprintf(res->error, sizeof res->error,
				 "answer_without_id");
		}
	} else if (a->status == 0) {
		res->verdict = IM_SEND_RETRY;
		snprintf(res->hint, sizeof res->hint, "%s", a->error);
	} else if (a->status == 429) {
		res->verdict = IM_SEND_RATE_LIMITED;
		if (!res->retry_after_s)
			res->retry_after_s = 1;
	} else if (a->status == 412 || a->status >= 500) {
		/* 412 PreconditionFailed, 502, 504: Teams says try again. */
		res->verdict = IM_SEND_RETRY;
	} else {
		res->verdict = IM_SEND_PERMANENT;
		for (size_t i = 0; i < sizeof fixes / sizeof fixes[0]; i++)
			if (fixes[i].status == a->status &&
			    (!fixes[i].code ||
			     (code && !strcmp(code, fixes[i].code)))) {
				snprintf(res->hint, sizeof res->hint, "%s",
					 fixes[i].hint);
				break;
			}
		if (!res->error[0])
			snprintf(res->error, sizeof res->error, "http_%ld",
				 a->status);
		/* The activity to update is gone: post anew (the pipeline
		 * does that once, for every connector). */
		if (edit && (a->status == 404 || a->status == 400))
			res->flags |= IM_SEND_EDIT_FAILED;
	}
	json_decref(j);
}

int tms_api_send(const tms_api *api, const tms_target *to,
		 const json_t *activity, im_send_result *res)
{
	if (!api || !api->http || !api->token || !to || !to->service_url ||
	    !to->conversation || !*to->conversation || !activity || !res)
		return IM_EINVAL;
	char conv[512], id[256] = "", url[1400];
	tms_pct_encode(conv, sizeof conv, to->conversation);
	const char *act = to->update ? to->update : to->reply_to;
	if (act)
		tms_pct_encode(id, sizeof id, act);
	size_t n = strlen(to->service_url);
	while (n && to->service_url[n - 1] == '/')
		n--;
	snprintf(url, sizeof url, "%.*s/v3/conversations/%s/activities%s%s",
		 (int)n, to->service_url, conv, act ? "/" : "", id);
	char *body = json_dumps(activity, JSON_COMPACT);
	if (!body)
		return IM_ENOMEM;
	tms_answer a = {0};
	for (int attempt = 0; attempt < 2; attempt++) {
		char tok[8192], why[320] = "";
		int rc = tms_token_get(api->token, tok, sizeof tok, why,
				       sizeof why);
		if (rc != 0) {
			/* No token: a refused secret will not heal by
			 * itself, an unreachable login service may. */
			res->verdict = rc == IM_EPERM ? IM_SEND_PERMANENT
						      : IM_SEND_RETRY;
			snprintf(res->error, sizeof res->error, "%s",
				 rc == IM_EPERM ? "token_refused"
						: "token_unavailable");
			snprintf(res->hint, sizeof res->hint, "%s", why);
			tms_answer_clear(&a);
			free(body);
			return 0;
		}
		tms_answer_clear(&a);
		api->http(api->ud, to->update ? "PUT" : "POST", url, tok, body,
			  &a);
		if (a.status != 401 || attempt)
			break;
		/* A token the Bot Connector no longer takes (rotated
		 * secret, clock): fetch a fresh one, once. */
		tms_token_invalidate(api->token, tok);
	}
	free(body);
	tms_classify(&a, to->update != NULL, res);
	if (res->verdict == IM_SEND_OK && to->update)
		snprintf(res->message_id, sizeof res->message_id, "%s",
			 to->update);
	tms_answer_clear(&a);
	return 0;
}
