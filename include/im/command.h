/*
 * im/command.h - a chat-command component: verbs under /incident (or any
 * other command) that connectors route to.
 *
 * Contract: invoke() may run on any host thread, concurrently. The
 * invocation and everything it points to is borrowed for the call. The
 * reply text is malloc'd by the plugin and freed by the host with free().
 * Later ABI minors append asynchronous completion and reply fields.
 */
#ifndef IM_COMMAND_H
#define IM_COMMAND_H

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct im_command_verb {
	const char *name;    /* "declare" */
	const char *usage;   /* "declare <title> [--sev SEV-n]" */
	const char *summary; /* one line for help */
} im_command_verb;

/* A chat command normalized across platforms. */
typedef struct im_invocation {
	uint32_t struct_size;
	const char *platform;  /* "slack" */
	const char *instance;  /* connector instance id */
	const char *team;      /* workspace / tenant / guild id */
	const char *channel;   /* channel id */
	const char *user_id;
	const char *user_name; /* display name */
	const char *command;   /* "/incident" */
	const char *text;      /* argument text after the verb */
} im_invocation;

typedef enum im_visibility {
	IM_REPLY_EPHEMERAL = 0,
	IM_REPLY_IN_CHANNEL = 1,
} im_visibility;

typedef struct im_reply {
	uint32_t struct_size;
	char *text;          /* CommonMark; malloc'd by the plugin */
	uint32_t visibility; /* im_visibility */
} im_reply;

typedef struct im_command {
	im_component base;           /* kind = IM_COMPONENT_COMMAND */
	const im_command_verb *verbs; /* ended by {NULL} */
	/* Runs `verb` (one of verbs[].name) and fills `reply`. */
	int (*invoke)(void *state, const char *verb, const im_invocation *inv,
		      im_reply *reply);
} im_command;

#ifdef __cplusplus
}
#endif
#endif
