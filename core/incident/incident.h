/*
 * core/incident - the incident model: states, severities and the legal
 * transitions between states. Pure functions, no I/O, any thread.
 *
 *   open -> acknowledged -> mitigated -> resolved -> closed
 *   open | acknowledged | mitigated -> resolved
 *   open -> canceled
 *   any state but duplicate -> duplicate (needs duplicate_of)
 */
#ifndef IM_CORE_INCIDENT_H
#define IM_CORE_INCIDENT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum im_inc_state {
	IM_INC_OPEN = 0,
	IM_INC_ACKNOWLEDGED,
	IM_INC_MITIGATED,
	IM_INC_RESOLVED,
	IM_INC_CLOSED,
	IM_INC_CANCELED,
	IM_INC_DUPLICATE,
	IM_INC_N_STATES
} im_inc_state;

/* "open", "acknowledged", ... */
const char *im_inc_state_name(im_inc_state st);
/* -1 when unknown. */
int im_inc_state_parse(const char *name);
/* Whether `from` may go to `to`. */
bool im_inc_can(im_inc_state from, im_inc_state to);
/* Writes the legal next states of `from` as "a, b, c" ("none" if none). */
void im_inc_next_text(im_inc_state from, char *buf, size_t len);

/* Severities 1 (critical) .. 4 (informational). parse accepts "SEV-1",
 * "sev-1", "SEV1", "1"; returns 0 when unknown. */
int im_inc_sev_parse(const char *text);
const char *im_inc_sev_name(int sev);  /* "SEV-1" */
const char *im_inc_sev_label(int sev); /* "critical", "major", "minor",
					  "informational" */

/* The verb of a transition into `to`, as in the event type
 * im.incident.<verb>: acknowledge, mitigate, resolve, close, cancel,
 * duplicate; NULL for open. */
const char *im_inc_verb(im_inc_state to);
/* The state a verb leads to ("ack" and "acknowledge" both work); -1 when
 * the verb is not a transition. */
int im_inc_verb_target(const char *verb);

#endif
