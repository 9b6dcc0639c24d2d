/* The incident state machine and severity names. */
#include <string.h>

#include <criterion/criterion.h>

#include "incident/incident.h"

Test(incident, follows_the_lifecycle_in_the_design)
{
	cr_expect(im_inc_can(IM_INC_OPEN, IM_INC_ACKNOWLEDGED));
	cr_expect(im_inc_can(IM_INC_ACKNOWLEDGED, IM_INC_MITIGATED));
	cr_expect(im_inc_can(IM_INC_MITIGATED, IM_INC_RESOLVED));
	cr_expect(im_inc_can(IM_INC_RESOLVED, IM_INC_CLOSED));
	cr_expect(im_inc_can(IM_INC_OPEN, IM_INC_RESOLVED));
	cr_expect(im_inc_can(IM_INC_ACKNOWLEDGED, IM_INC_RESOLVED));
	cr_expect(im_inc_can(IM_INC_OPEN, IM_INC_CANCELED));
}

Test(incident, refuses_skips_and_going_back)
{
	cr_expect_not(im_inc_can(IM_INC_OPEN, IM_INC_CLOSED));
	cr_expect_not(im_inc_can(IM_INC_OPEN, IM_INC_MITIGATED));
	cr_expect_not(im_inc_can(IM_INC_RESOLVED, IM_INC_OPEN));
	cr_expect_not(im_inc_can(IM_INC_ACKNOWLEDGED, IM_INC_CANCELED));
	cr_expect_not(im_inc_can(IM_INC_CLOSED, IM_INC_RESOLVED));
	cr_expect_not(im_inc_can(IM_INC_OPEN, IM_INC_OPEN));
}

Test(incident, allows_duplicate_from_every_state_but_duplicate)
{
	for (int s = 0; s < IM_INC_N_STATES; s++)
		cr_expect_eq(im_inc_can((im_inc_state)s, IM_INC_DUPLICATE),
			     s != IM_INC_DUPLICATE, "from %s",
			     im_inc_state_name((im_inc_state)s));
	for (int s = 0; s < IM_INC_N_STATES; s++)
		cr_expect_not(im_inc_can(IM_INC_DUPLICATE, (im_inc_state)s));
}

Test(incident, names_the_legal_next_states)
{
	char buf[128];
	im_inc_next_text(IM_INC_OPEN, buf, sizeof(buf));
	cr_expect_str_eq(buf, "acknowledged, resolved, canceled, duplicate");
	im_inc_next_text(IM_INC_DUPLICATE, buf, sizeof(buf));
	cr_expect_str_eq(buf, "none");
}

Test(incident, parses_severities_in_several_spellings)
{
	cr_expect_eq(im_inc_sev_parse("SEV-1"), 1);
	cr_expect_eq(im_inc_sev_parse("sev-2"), 2);
	cr_expect_eq(im_inc_sev_parse("SEV3"), 3);
	cr_expect_eq(im_inc_sev_parse("4"), 4);
	cr_expect_eq(im_inc_sev_parse("critical"), 1);
	cr_expect_eq(im_inc_sev_parse("SEV-5"), 0);
	cr_expect_eq(im_inc_sev_parse("SEV-12"), 0);
	cr_expect_eq(im_inc_sev_parse(""), 0);
	cr_expect_eq(im_inc_sev_parse(NULL), 0);
	cr_expect_str_eq(im_inc_sev_name(2), "SEV-2");
	cr_expect_str_eq(im_inc_sev_label(4), "informational");
}

Test(incident, maps_verbs_to_states_and_back)
{
	cr_expect_eq(im_inc_verb_target("ack"), IM_INC_ACKNOWLEDGED);
	cr_expect_eq(im_inc_verb_target("acknowledge"), IM_INC_ACKNOWLEDGED);
	cr_expect_eq(im_inc_verb_target("resolve"), IM_INC_RESOLVED);
	cr_expect_eq(im_inc_verb_target("note"), -1);
	cr_expect_str_eq(im_inc_verb(IM_INC_CANCELED), "cancel");
	cr_expect_null(im_inc_verb(IM_INC_OPEN));
	cr_expect_eq(im_inc_state_parse("Resolved"), IM_INC_RESOLVED);
	cr_expect_eq(im_inc_state_parse("bogus"), -1);
}
