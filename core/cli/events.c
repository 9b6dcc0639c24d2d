/* Placeholder until the events CLI lands (issue 3). */
#include <stdio.h>

#include "cli/cli.h"

static int not_yet(cli_ctx *ctx)
{
	fprintf(stderr, "im: %s is not available in this build yet\n",
		cli_current_command);
	return CLI_FAIL;
}

int cli_events_status(cli_ctx *ctx) { return not_yet(ctx); }
int cli_events_tail(cli_ctx *ctx) { return not_yet(ctx); }
