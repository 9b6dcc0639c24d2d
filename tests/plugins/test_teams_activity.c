/* plugins/teams/activity.c alone: activities as Teams sends them. */
#include <string.h>

#include <criterion/criterion.h>

#include "activity.h"

static json_t *message(const char *text)
{
	return json_pack(
	    "{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:{s:s},s:{s:{s:s},s:{s:s},"
	    "s:{s:s}},s:s}",
	    "type", "message", "id", "1700", "serviceUrl",
	    "https://smba.example/teams/", "channelId", "msteams", "from", "id",
	    "29:user", "name", "Ada", "aadObjectId", "aad-ada", "conversation",
	    "id", "19:c1@thread.tacv2;messageid=1700", "channelData", "tenant",
	    "id", "tn-1", "team", "id", "19:team@thread.tacv2", "channel",
	    "id", "19:c1@thread.tacv2", "text", text);
}

Test(teams_activity, a_mention_becomes_the_command_text)
{
	json_t *a = message("<at>im</at>&nbsp;declare Payments &amp; billing "
			    "down --sev SEV-1\n");
	tms_inv t;
	cr_assert_eq(tms_inv_from(a, "teams-prod", &t), TMS_COMMAND);
	cr_expect_str_eq(t.inv.text, "declare Payments & billing down --sev SEV-1");
	cr_expect_str_eq(t.inv.platform, "teams");
	cr_expect_str_eq(t.inv.instance, "teams-prod");
	cr_expect_str_eq(t.inv.user_id, "aad-ada");
	cr_expect_str_eq(t.inv.user_name, "Ada");
	cr_expect_str_eq(t.inv.channel, "19:c1@thread.tacv2");
	cr_expect_str_eq(t.inv.team, "19:team@thread.tacv2");
	json_t *ref = json_loads(t.inv.response_ref, 0, NULL);
	cr_expect_str_eq(json_string_value(json_object_get(ref, "conversation")),
			 "19:c1@thread.tacv2;messageid=1700");
	cr_expect_str_eq(json_string_value(json_object_get(ref, "activity_id")),
			 "1700");
	json_decref(ref);
	tms_inv_clear(&t);
	json_decref(a);
}

Test(teams_activity, accepts_incident_as_a_prefix_and_drops_other_markup)
{
	json_t *a = message("<p>incident  ack <b>INC-7</b></p>");
	tms_inv t;
	cr_assert_eq(tms_inv_from(a, "i", &t), TMS_COMMAND);
	cr_expect_str_eq(t.inv.text, "ack INC-7");
	tms_inv_clear(&t);
	json_decref(a);
	a = message("incidents are fun");
	cr_assert_eq(tms_inv_from(a, "i", &t), TMS_COMMAND);
	cr_expect_str_eq(t.inv.text, "incidents are fun", "only the word");
	tms_inv_clear(&t);
	json_decref(a);
}

Test(teams_activity, a_submit_button_names_the_action_and_incident)
{
	json_t *a = message("");
	json_object_del(a, "text");
	json_object_set_new(a, "value",
			    json_pack("{s:s,s:s}", "action", "ack", "incident",
				      "INC-7"));
	tms_inv t;
	cr_assert_eq(tms_inv_from(a, "i", &t), TMS_SUBMIT);
	cr_expect_str_eq(t.inv.action_id, "im_ack");
	cr_expect_str_eq(t.inv.action_value, "INC-7");
	cr_expect_null(t.inv.text);
	tms_inv_clear(&t);
	json_decref(a);
}

Test(teams_activity, an_execute_invoke_is_a_button_and_others_are_refused)
{
	json_t *a = message("");
	json_object_del(a, "text");
	json_object_set_new(a, "type", json_string("invoke"));
	json_object_set_new(a, "name", json_string("adaptiveCard/action"));
	json_object_set_new(
	    a, "value",
	    json_pack("{s:{s:s,s:s,s:{s:s,s:s}}}", "action", "type",
		      "Action.Execute", "verb", "resolve", "data", "action",
		      "resolve", "incident", "INC-9"));
	tms_inv t;
	cr_assert_eq(tms_inv_from(a, "i", &t), TMS_EXECUTE);
	cr_expect_str_eq(t.inv.action_id, "im_resolve");
	cr_expect_str_eq(t.inv.action_value, "INC-9");
	tms_inv_clear(&t);
	json_object_set_new(a, "name", json_string("composeExtension/query"));
	cr_expect_eq(tms_inv_from(a, "i", &t), TMS_BAD_INVOKE);
	tms_inv_clear(&t);
	json_decref(a);
	json_t *ans = tms_invoke_answer("Acknowledged INC-9", false);
	cr_expect_eq(json_integer_value(json_object_get(ans, "statusCode")), 200);
	cr_expect_str_eq(json_string_value(json_object_get(ans, "type")),
			 "application/vnd.microsoft.activity.message");
	json_decref(ans);
	ans = tms_invoke_answer("no", true);
	cr_expect_str_eq(json_string_value(json_object_get(ans, "type")),
			 "application/vnd.microsoft.error");
	json_decref(ans);
}

Test(teams_activity, ignores_what_is_not_a_command)
{
	tms_inv t;
	json_t *a = json_pack("{s:s}", "type", "conversationUpdate");
	cr_expect_eq(tms_inv_from(a, "i", &t), TMS_IGNORE);
	json_decref(a);
	a = message("declare x");
	json_object_del(a, "from"); /* no user: never run anonymously */
	cr_expect_eq(tms_inv_from(a, "i", &t), TMS_IGNORE);
	json_decref(a);
	json_t *x = json_string("x");
	cr_expect_eq(tms_inv_from(x, "i", &t), TMS_IGNORE);
	json_decref(x);
	tms_inv_clear(&t);
}
