/* Admin API of the pipeline (HTTP worker threads): subscriptions, the
 * outbox and its dead letters, and the runtime settings. Every handler
 * checks the caller with the app's admin authorization first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident/incident.h"
#include "notify/internal.h"

static im_notify_auth_fn auth_fn;

/* Route user data: the app's, handed back to its auth function. */
static bool allowed(void *ud, const im_http_request *req,
		    im_http_response *resp)
{
	if (!auth_fn(ud, req, resp))
		return false;
	if (!nt_store()) {
		im_resp_error(resp, 503, "unavailable",
			      "the notification pipeline is not running");
		return false;
	}
	return true;
}

static bool parse_id(const char *s, long long *id)
{
	char *end;
	long long v = s ? strtoll(s, &end, 10) : 0;
	if (!s || end == s || v <= 0)
		return false;
	*id = v;
	return *end == '\0' || *end == '/';
}

static int subs_list(void *ud, const im_http_request *req,
		     im_http_response *resp)
{
	if (!allowed(ud, req, resp))
		return 0;
	return im_resp_json(resp, 200,
			    json_pack("{s:o}", "items", nt_subs_list()));
}

static int subs_add(void *ud, const im_http_request *req,
		    im_http_response *resp)
{
	if (!allowed(ud, req, resp))
		return 0;
	json_error_t je;
	json_t *body = json_loadb(req->body, req->body_len, 0, &je);
	if (!body)
		return im_resp_error(resp, 400, "invalid_json",
				     "the body is not JSON: %s", je.text);
	char err[512];
	long long id = 0;
	int rc = nt_subs_add(nt_store(), body, &id, err, sizeof(err));
	json_decref(body);
	if (rc == IM_EINVAL)
		return im_resp_error(resp, 400, "invalid_subscription", "%s",
				     err);
	if (rc != 0)
		return im_resp_error(resp, 500, "internal", "%s", err);
	json_t *items = nt_subs_list(), *found = NULL;
	size_t i;
	json_t *s;
	json_array_foreach(items, i, s)
	{
		if (json_integer_value(json_object_get(s, "id")) == id)
			found = s;
	}
	json_t *out = json_pack("{s:I,s:O*}", "id", (json_int_t)id,
				"subscription", found);
	json_decref(items);
	return im_resp_json(resp, 201, out);
}

static int subs_remove(void *ud, const im_http_request *req,
		       im_http_response *resp)
{
	if (!allowed(ud, req, resp))
		return 0;
	long long id;
	if (!parse_id(req->rest, &id) || strchr(req->rest, '/'))
		return im_resp_error(resp, 404, "not_found",
				     "use DELETE /api/v1/admin/subscriptions/"
				     "<id>; ids are in the list");
	int rc = nt_subs_remove(nt_store(), id);
	if (rc == IM_ENOTFOUND)
		return im_resp_error(
		    resp, 404, "not_found",
		    "no stored subscription %lld (subscriptions from the "
		    "config are changed in the YAML)",
		    id);
	if (rc != 0)
		return im_resp_error(resp, 500, "internal",
				     "could not remove subscription %lld", id);
	return im_resp_json(
	    resp, 200,
	    json_pack("{s:I,s:b}", "id", (json_int_t)id, "removed", 1));
}

static int outbox_list(void *ud, const im_http_request *req,
		       im_http_response *resp)
{
	if (!allowed(ud, req, resp))
		return 0;
	const char *d = im_req_query(req, "dead");
	const char *l = im_req_query(req, "limit");
	bool dead = d && strcmp(d, "0") && strcmp(d, "false");
	int limit = l ? atoi(l) : 100;
	if (limit < 1 || limit > 10000)
		limit = 100;
	json_t *counts = nt_outbox_counts(nt_store());
	return im_resp_json(resp, 200,
			    json_pack("{s:o,s:o}", "items",
				      nt_outbox_list(nt_store(), dead, limit),
				      "counts", counts));
}

static int outbox_retry(void *ud, const im_http_request *req,
			im_http_response *resp)
{
	if (!allowed(ud, req, resp))
		return 0;
	long long id;
	const char *slash = strchr(req->rest, '/');
	if (!parse_id(req->rest, &id) || !slash || strcmp(slash, "/retry"))
		return im_resp_error(
		    resp, 404, "not_found",
		    "use POST /api/v1/admin/outbox/<id>/retry");
	int rc = nt_outbox_retry(nt_store(), id);
	if (rc == IM_ENOTFOUND)
		return im_resp_error(resp, 404, "not_found",
				     "no outbox row %lld (delivered rows are "
				     "removed)",
				     id);
	if (rc == IM_ECONFLICT)
		return im_resp_error(resp, 409, "already_queued",
				     "row %lld is not a dead letter: it is "
				     "queued and will be tried again on its "
				     "own",
				     id);
	if (rc != 0)
		return im_resp_error(resp, 500, "internal",
				     "could not re-queue row %lld", id);
	nt_dispatch_poke_all();
	return im_resp_json(
	    resp, 200,
	    json_pack("{s:I,s:b}", "id", (json_int_t)id, "queued", 1));
}

static json_t *settings_json(void)
{
	nt_settings s;
	nt_settings_get(&s);
	json_t *crit = json_array();
	for (int k = 1; k <= 4; k++)
		if (s.crit_mask & (1u << k))
			json_array_append_new(crit,
					      json_string(im_inc_sev_name(k)));
	json_t *o = json_pack(
	    "{s:f,s:s,s:o,s:i,s:i,s:i,s:O?}", "batch_window", s.batch_window,
	    "batch_window_source", s.window_override ? "runtime" : "config",
	    "critical_severities", crit, "delivery_workers", s.workers,
	    "digest_max", s.digest_max, "max_attempts", s.max_attempts,
	    "rate_limits", s.rate_limits);
	nt_settings_clear(&s);
	return o;
}

static int settings_get(void *ud, const im_http_request *req,
			im_http_response *resp)
{
	if (!allowed(ud, req, resp))
		return 0;
	return im_resp_json(resp, 200, settings_json());
}

/* 0 with *secs (< 0: back to the config), or -1 when `w` is no window. */
static int window_from(const json_t *w, double *secs)
{
	*secs = -1;
	if (!w)
		return -1;
	if (json_is_null(w) ||
	    (json_is_string(w) && !strcmp(json_string_value(w), "default")))
		return 0;
	if (json_is_number(w))
		*secs = json_number_value(w);
	else if (!json_is_string(w) ||
		 im_config_parse_duration(json_string_value(w), secs) != 0)
		return -1;
	return *secs >= 0 && *secs <= 3600 ? 0 : -1;
}

static int settings_put(void *ud, const im_http_request *req,
			im_http_response *resp)
{
	if (!allowed(ud, req, resp))
		return 0;
	json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
	double secs;
	int bad = window_from(json_object_get(body, "batch_window"), &secs);
	json_decref(body);
	if (bad)
		return im_resp_error(
		    resp, 400, "invalid_batch_window",
		    "send {\"batch_window\": \"5s\"}: a duration from 0s to 1h "
		    "(250ms, 5s, 2m), or \"default\" to use the config again");
	if (nt_settings_set_window(nt_store(), secs) != 0)
		return im_resp_error(resp, 500, "internal",
				     "could not store the batch window");
	nt_dispatch_reconfig();
	return im_resp_json(resp, 200, settings_json());
}

int im_notify_admin_routes(im_router *r, im_notify_auth_fn auth, void *ud)
{
	auth_fn = auth;
	int rc = 0;
	rc |= im_router_add(r, "GET", "/api/v1/admin/subscriptions", subs_list,
			    ud);
	rc |= im_router_add(r, "POST", "/api/v1/admin/subscriptions", subs_add,
			    ud);
	rc |= im_router_add(r, "DELETE", "/api/v1/admin/subscriptions/*",
			    subs_remove, ud);
	rc |= im_router_add(r, "GET", "/api/v1/admin/outbox", outbox_list, ud);
	rc |= im_router_add(r, "POST", "/api/v1/admin/outbox/*", outbox_retry,
			    ud);
	rc |=
	    im_router_add(r, "GET", "/api/v1/admin/chatops", settings_get, ud);
	rc |=
	    im_router_add(r, "PUT", "/api/v1/admin/chatops", settings_put, ud);
	return rc ? IM_ENOMEM : 0;
}
