/* Placeholder until the incident CLI lands (issue 3). */
#include <stdio.h>

#include "cli/cli.h"

static int not_yet(cli_ctx *ctx)
{
	fprintf(stderr, "im: %s is not available in this build yet\n",
		cli_current_command);
	return CLI_FAIL;
}

int cli_declare(cli_ctx *ctx) { return not_yet(ctx); }
int cli_incident_list(cli_ctx *ctx) { return not_yet(ctx); }
int cli_incident_show(cli_ctx *ctx) { return not_yet(ctx); }
int cli_incident_transition(cli_ctx *ctx) { return not_yet(ctx); }
int cli_incident_note(cli_ctx *ctx) { return not_yet(ctx); }
int cli_incident_timeline(cli_ctx *ctx) { return not_yet(ctx); }
