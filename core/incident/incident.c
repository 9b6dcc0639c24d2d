/* The incident state machine and severity names. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf/buf.h"
#include "incident/incident.h"

static const char *const state_names[IM_INC_N_STATES] = {
    "open", "acknowledged", "mitigated", "resolved",
    "closed", "canceled", "duplicate",
};

/* allowed[from] is a bit set of the states `from` may go to. */
#define B(s) (1u << (s))
static const unsigned allowed[IM_INC_N_STATES] = {
    [IM_INC_OPEN] = B(IM_INC_ACKNOWLEDGED) | B(IM_INC_RESOLVED) |
		    B(IM_INC_CANCELED) | B(IM_INC_DUPLICATE),
    [IM_INC_ACKNOWLEDGED] =
	B(IM_INC_MITIGATED) | B(IM_INC_RESOLVED) | B(IM_INC_DUPLICATE),
    [IM_INC_MITIGATED] = B(IM_INC_RESOLVED) | B(IM_INC_DUPLICATE),
    [IM_INC_RESOLVED] = B(IM_INC_CLOSED) | B(IM_INC_DUPLICATE),
    [IM_INC_CLOSED] = B(IM_INC_DUPLICATE),
    [IM_INC_CANCELED] = B(IM_INC_DUPLICATE),
    [IM_INC_DUPLICATE] = 0,
};

const char *im_inc_state_name(im_inc_state st)
{
	return (unsigned)st < IM_INC_N_STATES ? state_names[st] : "unknown";
}

int im_inc_state_parse(const char *name)
{
	for (int i = 0; name && i < IM_INC_N_STATES; i++)
		if (strcasecmp(name, state_names[i]) == 0)
			return i;
	if (name && strcasecmp(name, "cancelled") == 0)
		return IM_INC_CANCELED;
	return -1;
}

bool im_inc_can(im_inc_state from, im_inc_state to)
{
	if ((unsigned)from >= IM_INC_N_STATES || (unsigned)to >= IM_INC_N_STATES)
		return false;
	return (allowed[from] & B(to)) != 0;
}

void im_inc_next_text(im_inc_state from, char *buf, size_t len)
{
	im_buf b = {.max = len ? len - 1 : 0};
	for (int s = 0; s < IM_INC_N_STATES; s++)
		if (im_inc_can(from, (im_inc_state)s))
			im_buf_printf(&b, "%s%s", b.len ? ", " : "",
				      state_names[s]);
	snprintf(buf, len, "%s", b.len ? im_buf_str(&b) : "none");
	im_buf_free(&b);
}

int im_inc_sev_parse(const char *text)
{
	if (!text)
		return 0;
	const char *p = text;
	if (strncasecmp(p, "sev", 3) == 0) {
		p += 3;
		if (*p == '-' || *p == ' ')
			p++;
	}
	if (p[0] >= '1' && p[0] <= '4' && p[1] == '\0')
		return p[0] - '0';
	static const char *const labels[] = {"critical", "major", "minor",
					     "informational"};
	for (int i = 0; i < 4; i++)
		if (strcasecmp(text, labels[i]) == 0)
			return i + 1;
	return 0;
}

const char *im_inc_sev_name(int sev)
{
	static const char *const names[] = {"SEV-?", "SEV-1", "SEV-2", "SEV-3",
					    "SEV-4"};
	return sev >= 1 && sev <= 4 ? names[sev] : names[0];
}

const char *im_inc_sev_label(int sev)
{
	static const char *const names[] = {"unknown", "critical", "major",
					    "minor", "informational"};
	return sev >= 1 && sev <= 4 ? names[sev] : names[0];
}

static const char *const verbs[IM_INC_N_STATES] = {
    NULL, "acknowledge", "mitigate", "resolve", "close", "cancel", "duplicate",
};

const char *im_inc_verb(im_inc_state to)
{
	return (unsigned)to < IM_INC_N_STATES ? verbs[to] : NULL;
}

int im_inc_verb_target(const char *verb)
{
	if (!verb)
		return -1;
	if (strcasecmp(verb, "ack") == 0)
		return IM_INC_ACKNOWLEDGED;
	for (int s = 1; s < IM_INC_N_STATES; s++)
		if (strcasecmp(verb, verbs[s]) == 0)
			return s;
	return -1;
}
