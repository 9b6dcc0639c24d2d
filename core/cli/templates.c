/* Placeholder until the template CLI lands (issue 5). */
#include <stdio.h>

#include "cli/cli.h"

static int not_yet(cli_ctx *ctx)
{
	fprintf(stderr, "im: %s is not available in this build yet\n",
		cli_current_command);
	return CLI_FAIL;
}

int cli_templates_list(cli_ctx *ctx) { return not_yet(ctx); }
int cli_templates_validate(cli_ctx *ctx) { return not_yet(ctx); }
int cli_templates_render(cli_ctx *ctx) { return not_yet(ctx); }
