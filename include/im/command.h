/*
 * im/command.h - chat-command components: verbs under /incident (or any
 * other command) that connectors route to, and the reply they build.
 *
 * Contract:
 * - invoke() runs on a host worker thread, possibly many at once, and may
 *   take as long as it needs: the host answers the platform within its
 *   deadline ("still working") and sends the result later through the
 *   connector's follow-up path. Never block on the platform from here.
 * - The invocation and everything it points to is borrowed for the call.
 * - The reply is a host-owned builder: fill it with host->reply_text,
 *   reply_visibility, reply_field and reply_action (all copy their
 *   arguments). Connectors receive it rendered as JSON:
 *   {"text":..,"visibility":"ephemeral"|"in_channel",
 *    "fields":[{"title":..,"value":..,"short":bool}],
 *    "actions":[{"id":..,"label":..,"value":..,"style":..}],
 *    "status":"ok"|"error"|"working"}
 */
#ifndef IM_COMMAND_H
#define IM_COMMAND_H

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Verb and action tables are read with the stride of their first entry's
 * struct_size (since 1.3; plugins built against 1.0-1.2 use the layout
 * without it and the host reads them as such). */
typedef struct im_command_verb {
	uint32_t struct_size; /* sizeof(im_command_verb); since 1.3 */
	const char *name;    /* "declare" */
	const char *usage;   /* "declare <title> [--sev SEV-n]" */
	const char *summary; /* one line for help */
	uint32_t flags;      /* IM_VERB_*; since 1.5 */
} im_command_verb;

/* im_command_verb.flags (since 1.5). IM_VERB_FAST: the verb never blocks
 * (no network, no waiting on others; at most a local read) and answers
 * in well under a millisecond, so the host may run it on the thread that
 * received the command, without the hand-off to a command worker. A
 * fast verb that runs longer than the host's limit anyway is logged,
 * counted (chatops_fast_verb_overruns_total) and runs on the workers
 * from then on, until the next reload. */
#define IM_VERB_FAST 0x1u

/* A chat command (or a button press) normalized across platforms (since
 * 1.1). A
 * connector fills what its platform tells; unknown fields stay NULL. */
struct im_invocation {
	uint32_t struct_size;
	const char *platform;  /* "slack" */
	const char *instance;  /* connector instance id */
	const char *team;      /* workspace / tenant / guild id */
	const char *channel;   /* channel id */
	const char *user_id;
	const char *user_name; /* display name */
	const char *command;   /* "/incident" */
	/* Typed command: everything after the command ("ack INC-7"). When a
	 * command component is invoked, the verb is removed: "INC-7". */
	const char *text;
	/* Button press: the action id ("im_ack") and its value ("INC-7");
	 * NULL for typed commands. */
	const char *action_id;
	const char *action_value;
	/* Connector-private reference for follow-ups (Slack response_url,
	 * Discord interaction token, Teams conversation reference). */
	const char *response_ref;
	/* Comma-separated group or role ids of the user, when the platform
	 * says (Discord roles); used by per-verb allow lists. */
	const char *user_groups;
};

typedef enum im_visibility {
	IM_REPLY_EPHEMERAL = 0,
	IM_REPLY_IN_CHANNEL = 1,
} im_visibility;

/* A button that runs a verb: pressing `action_id` runs `verb` with the
 * button's value as the argument text. */
typedef struct im_command_action {
	uint32_t struct_size;  /* sizeof(im_command_action); since 1.3 */
	const char *action_id; /* "im_ack" */
	const char *verb;      /* "ack" */
} im_command_action;

/* Entry initializers: IM_VERB("ack", "ack <id>", "Acknowledge"),
 * IM_ACTION("im_ack", "ack"); end tables with {0}. */
#define IM_VERB(name, usage, summary)                                         \
	{ sizeof(im_command_verb), (name), (usage), (summary), 0 }
/* The same with IM_VERB_* flags (since 1.5). */
#define IM_VERB_FLAGS(name, usage, summary, flags)                            \
	{ sizeof(im_command_verb), (name), (usage), (summary), (flags) }
#define IM_ACTION(action_id, verb)                                            \
	{ sizeof(im_command_action), (action_id), (verb) }

/* The command component (since 1.1). */
typedef struct im_command {
	im_component base;           /* kind = IM_COMPONENT_COMMAND */
	const im_command_verb *verbs; /* ended by {NULL} */
	/* Runs `verb` (one of verbs[].name) and fills `reply` through the
	 * host's reply_* functions. Returns 0, or IM_E* (the reply, if any,
	 * is still sent: say what went wrong in it). */
	int (*invoke)(void *state, const char *verb, const im_invocation *inv,
		      im_reply *reply);
	/* Buttons this component serves, ended by {NULL}; may be NULL. */
	const im_command_action *actions;
} im_command;

#ifdef __cplusplus
}
#endif
#endif
