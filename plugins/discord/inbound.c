/* The interactions endpoint, POST /hooks/<instance>/interactions: the
 * signature, its age and the interaction id's novelty are checked before
 * anything else reads the body (401 otherwise, the reason in the log);
 * then PING, the /incident command and message buttons run through the
 * host's command framework. A result within the command budget is the
 * HTTP answer (type 4, or 7 to update the message a button is on);
 * otherwise the answer defers (5, or 6 for a button) and the result edits
 * @original through the interaction webhook. Denials and errors are
 * ephemeral (flag 64). Nothing here waits on the network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discord.h"

#define FLAG_EPHEMERAL 64
#define CONTENT_MAX 2000

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int answer_json(const dsc *d, im_http_response *resp, int status,
		       json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text)
		return IM_ENOMEM;
	int rc = d->host->resp_set(resp, status, "application/json", text,
				   strlen(text));
	free(text);
	return rc;
}

/* 401 with the reason in the log, never in the answer. Under a flood of
 * forgeries the log takes LOUD_PER_S reasons a second and then says how
 * many more it left out. */
#define LOUD_PER_S 10

static int refuse(dsc *d, im_http_response *resp, const char *why)
{
	static __thread time_t second;
	static __thread unsigned said, quiet;
	time_t now = time(NULL);
	pthread_mutex_lock(&d->mu);
	d->refused++;
	pthread_mutex_unlock(&d->mu);
	if (now != second) {
		if (quiet)
			IM_WARN(d->host, d->inst,
				"%u more interactions refused (401) in the "
				"last second",
				quiet);
		second = now;
		said = quiet = 0;
	}
	if (said < LOUD_PER_S) {
		IM_WARN(d->host, d->inst, "interaction refused (401): %s", why);
		said++;
	} else {
		quiet++;
	}
	return answer_json(d, resp, 401,
			   json_pack("{s:s}", "error", "invalid request "
						       "signature"));
}

static int bad_request(dsc *d, im_http_response *resp, const char *why)
{
	IM_INFO(d->host, d->inst, "interaction answered 400: %s", why);
	return answer_json(d, resp, 400, json_pack("{s:s}", "error", why));
}

/* The user who acted: member.user in a guild, user in a DM. */
static const json_t *user_of(const json_t *i)
{
	const json_t *m = json_object_get(i, "member");
	const json_t *u = json_object_get(m, "user");
	return u ? u : json_object_get(i, "user");
}

static char *roles_csv(const json_t *i)
{
	const json_t *roles = json_object_get(json_object_get(i, "member"),
					      "roles");
	char *buf = NULL;
	size_t len = 0, k;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	json_t *r;
	json_array_foreach(roles, k, r)
	    fprintf(f, "%s%s", k ? "," : "", json_string_value(r));
	fclose(f);
	return buf;
}

static void note_interaction(dsc *d, const char *what, const char *who)
{
	pthread_mutex_lock(&d->mu);
	snprintf(d->last_interaction, sizeof(d->last_interaction), "%s by %s",
		 what, who ? who : "?");
	d->last_interaction_at = time(NULL);
	pthread_mutex_unlock(&d->mu);
}

/* APPLICATION_COMMAND (2) and MESSAGE_COMPONENT (3) as an invocation. */
static int run(dsc *d, const json_t *in, int type, im_http_response *resp)
{
	const json_t *data = json_object_get(in, "data");
	const json_t *user = user_of(in);
	char command[80], action[101] = "";
	char *text = NULL, *roles = roles_csv(in);
	const char *value = NULL;
	if (type == 2) {
		snprintf(command, sizeof(command), "/%s",
			 str(data, "name") ? str(data, "name") : "incident");
		text = dsc_command_text(d, data);
	} else {
		const char *cid = str(data, "custom_id");
		if (!cid) {
			free(roles);
			return bad_request(d, resp, "a component interaction "
						    "without data.custom_id");
		}
		snprintf(command, sizeof(command), "/incident");
		snprintf(action, sizeof(action), "%s", cid);
		char *colon = strchr(action, ':');
		if (colon) {
			*colon = '\0';
			value = colon + 1;
		}
		text = strdup("");
	}
	const char *name = str(user, "global_name");
	if (!name)
		name = str(user, "username");
	im_invocation inv = {
	    .struct_size = sizeof(inv),
	    .platform = "discord",
	    .instance = d->id,
	    .team = str(in, "guild_id"),
	    .channel = str(in, "channel_id"),
	    .user_id = str(user, "id"),
	    .user_name = name,
	    .command = command,
	    .text = text ? text : "",
	    .action_id = type == 3 ? action : NULL,
	    .action_value = value,
	    .response_ref = str(in, "token"),
	    .user_groups = roles && *roles ? roles : NULL,
	};
	char what[200];
	snprintf(what, sizeof(what), "%s %.60s", type == 2 ? command : "button",
		 type == 2 ? inv.text : action);
	note_interaction(d, what, name);
	int rc = d->host->command_handle(d->inst, &inv, resp);
	free(text);
	free(roles);
	return rc;
}

int dsc_on_interactions(void *state, const im_http_request *req,
			im_http_response *resp)
{
	dsc *d = state;
	const im_host *h = d->host;
	size_t len = 0;
	const char *body = h->req_body(req, &len);
	char why[200];
	if (dsc_verify(d->public_key, h->req_header(req, "X-Signature-Ed25519"),
		       h->req_header(req, "X-Signature-Timestamp"), body, len,
		       time(NULL), why, sizeof(why)) != 0)
		return refuse(d, resp, why);
	json_error_t je;
	json_t *in = json_loadb(body, len, 0, &je);
	if (!json_is_object(in)) {
		json_decref(in);
		snprintf(why, sizeof(why), "malformed JSON: %s (line %d)",
			 je.text, je.line);
		return bad_request(d, resp, why);
	}
	uint64_t id = 0;
	const char *app = str(in, "application_id");
	json_t *type = json_object_get(in, "type");
	int rc;
	if (!dsc_snowflake(str(in, "id"), &id) || !json_is_integer(type)) {
		rc = bad_request(d, resp, "an interaction needs an id "
					  "(snowflake) and an integer type");
	} else if (!app || strcmp(app, d->cfg.application_id)) {
		snprintf(why, sizeof(why), "interaction for application %.30s, "
					   "this instance is %.30s",
			 app ? app : "(none)", d->cfg.application_id);
		rc = refuse(d, resp, why);
	} else if (!dsc_seen_add(d->seen, id)) {
		snprintf(why, sizeof(why), "interaction %.24s seen before "
					   "(replayed)",
			 str(in, "id"));
		rc = refuse(d, resp, why);
	} else {
		switch (json_integer_value(type)) {
		case 1: /* PING */
			rc = answer_json(d, resp, 200, json_pack("{s:i}", "type", 1));
			break;
		case 2:
		case 3:
			rc = run(d, in, (int)json_integer_value(type), resp);
			break;
		case 4: /* autocomplete: im's options offer no suggestions */
			rc = answer_json(d, resp, 200,
					 json_pack("{s:i,s:{s:[]}}", "type", 8,
						   "data", "choices"));
			break;
		case 5:
			rc = bad_request(d, resp, "modal submits are not used by "
						  "this connector");
			break;
		default:
			snprintf(why, sizeof(why), "unknown interaction type %lld",
				 (long long)json_integer_value(type));
			rc = bad_request(d, resp, why);
		}
	}
	json_decref(in);
	return rc;
}

/* --- replies ------------------------------------------------------------- */

static int button_style(const char *s)
{
	if (s && !strcmp(s, "primary"))
		return 1;
	if (s && !strcmp(s, "danger"))
		return 4;
	return 2;
}

static json_t *buttons(const json_t *actions)
{
	json_t *rows = json_array(), *row = NULL;
	size_t i;
	json_t *a;
	json_array_foreach(actions, i, a)
	{
		if (i >= 25)
			break;
		if (i % 5 == 0) {
			row = json_array();
			json_array_append_new(rows, json_pack("{s:i,s:o}", "type",
							      1, "components",
							      row));
		}
		char cid[101];
		snprintf(cid, sizeof(cid), "%s:%s", str(a, "id") ? str(a, "id") : "",
			 str(a, "value") ? str(a, "value") : "");
		json_array_append_new(
		    row, json_pack("{s:i,s:i,s:o,s:s}", "type", 2, "style",
				   button_style(str(a, "style")), "label",
				   dsc_cut(str(a, "label"), 80), "custom_id", cid));
	}
	return rows;
}

json_t *dsc_reply_message(const json_t *reply)
{
	json_t *m = json_pack("{s:o,s:{s:[]}}", "content",
			      dsc_cut(str(reply, "text"), CONTENT_MAX),
			      "allowed_mentions", "parse");
	const json_t *fields = json_object_get(reply, "fields");
	if (json_array_size(fields)) {
		json_t *ef = json_array();
		size_t i;
		json_t *f;
		json_array_foreach(fields, i, f)
		{
			if (i >= 25)
				break;
			json_array_append_new(
			    ef, json_pack("{s:o,s:o,s:b}", "name",
					  dsc_cut(str(f, "title"), 256), "value",
					  dsc_cut(str(f, "value"), 1024), "inline",
					  json_is_true(json_object_get(f, "short"))));
		}
		json_object_set_new(m, "embeds",
				    json_pack("[{s:o}]", "fields", ef));
	}
	if (json_array_size(json_object_get(reply, "actions")))
		json_object_set_new(m, "components",
				    buttons(json_object_get(reply, "actions")));
	return m;
}

static bool ephemeral(const json_t *reply)
{
	const char *vis = str(reply, "visibility");
	const char *st = str(reply, "status");
	return (vis && !strcmp(vis, "ephemeral")) || (st && !strcmp(st, "error"));
}

/* What a button's result changes on its message: the line above the card
 * (and new buttons when the reply has some); the card's embeds stay. */
static json_t *button_update(const json_t *reply)
{
	json_t *m = json_pack("{s:o,s:{s:[]}}", "content",
			      dsc_cut(str(reply, "text"), CONTENT_MAX),
			      "allowed_mentions", "parse");
	if (json_array_size(json_object_get(reply, "actions")))
		json_object_set_new(m, "components",
				    buttons(json_object_get(reply, "actions")));
	return m;
}

int dsc_answer(void *state, const im_invocation *inv, const json_t *reply,
	       im_http_response *resp)
{
	dsc *d = state;
	bool button = inv->action_id != NULL;
	const char *st = str(reply, "status");
	if (st && !strcmp(st, "working"))
		return answer_json(d, resp, 200,
				   json_pack("{s:i}", "type", button ? 6 : 5));
	if (button && !ephemeral(reply))
		return answer_json(d, resp, 200,
				   json_pack("{s:i,s:o}", "type", 7, "data",
					     button_update(reply)));
	json_t *m = dsc_reply_message(reply);
	if (ephemeral(reply))
		json_object_set_new(m, "flags", json_integer(FLAG_EPHEMERAL));
	return answer_json(d, resp, 200,
			   json_pack("{s:i,s:o}", "type", 4, "data", m));
}

/* The late result: it edits @original (the "thinking" message, or the
 * message the button is on); a late error after a button goes out as an
 * ephemeral follow-up instead, so the card is left alone. */
int dsc_followup(void *state, const im_invocation *inv, const json_t *reply)
{
	dsc *d = state;
	const char *token = inv->response_ref;
	if (!token || !*token || strlen(token) > 500)
		return IM_EINVAL;
	bool button = inv->action_id != NULL;
	char path[700];
	json_t *m;
	const char *method;
	if (button && ephemeral(reply)) {
		method = "POST";
		snprintf(path, sizeof(path), "/webhooks/%s/%s",
			 d->cfg.application_id, token);
		m = dsc_reply_message(reply);
		json_object_set_new(m, "flags", json_integer(FLAG_EPHEMERAL));
	} else {
		method = "PATCH";
		snprintf(path, sizeof(path), "/webhooks/%s/%s/messages/@original",
			 d->cfg.application_id, token);
		m = button ? button_update(reply) : dsc_reply_message(reply);
	}
	dsc_res res;
	int rc = dsc_call(d->rest, method, "webhook", token, path, m, false, 5,
			  &res);
	if (rc != 0)
		dsc_note_error(d, "follow-up to an interaction failed: %s "
				  "(HTTP %ld, code %d)",
			       res.message, res.status, res.code);
	dsc_res_clear(&res);
	json_decref(m);
	return rc;
}
