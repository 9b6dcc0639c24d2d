/*
 * plugins/teams/activity - inbound Bot Framework activities as chat
 * commands: a message to the bot ("<at>im</at> declare Payments down
 * --sev SEV-1", or "incident declare ..."), a card's Action.Submit (a
 * message with `value`) or Action.Execute (an `invoke` named
 * adaptiveCard/action) becomes an im_invocation for the /incident verbs;
 * and the invoke's answer in the HTTP body.
 *
 * Card buttons carry data {"action": "ack", "incident": "INC-7"} (see
 * conf.d/templates/teams/partials/actions.mustache): the action id is
 * "im_" + action, the value the incident id, as the command component's
 * actions expect.
 */
#ifndef IM_TEAMS_ACTIVITY_H
#define IM_TEAMS_ACTIVITY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include <im/im.h>

typedef enum tms_kind {
	TMS_IGNORE = 0,  /* nothing to run (updates, typing, other bots) */
	TMS_COMMAND,     /* typed text */
	TMS_SUBMIT,      /* Action.Submit: a message with value */
	TMS_EXECUTE,     /* Action.Execute: invoke adaptiveCard/action */
	TMS_BAD_INVOKE,  /* another invoke: answer 200 with an error */
} tms_kind;

/* An invocation and the strings it points into (owned here). */
typedef struct tms_inv {
	im_invocation inv;
	tms_kind kind;
	char *text;         /* command text, mention and "incident" stripped */
	char *action_id;    /* "im_ack" */
	char *response_ref; /* {"service_url","conversation","activity_id"} */
} tms_inv;

/* Reads activity `a` (borrowed; strings of `inv` point into it or into
 * the tms_inv, so keep both until done). Returns the kind; for
 * TMS_IGNORE nothing needs freeing but tms_inv_clear is always safe. */
tms_kind tms_inv_from(const json_t *a, const char *instance, tms_inv *out);
void tms_inv_clear(tms_inv *t);

/* The body answering an adaptiveCard/action invoke with a message:
 * {"statusCode":200,"type":"application/vnd.microsoft.activity.message",
 *  "value":text}; or with an error when `error`. New JSON. */
json_t *tms_invoke_answer(const char *text, bool error);

/* A command reply (im/command.h JSON) as a message activity to post in
 * the conversation: markdown text, or with fields or buttons an Adaptive
 * Card 1.5 (FactSet, Action.Submit with the cards' button data). New. */
json_t *tms_reply_activity(const json_t *reply);

#endif
