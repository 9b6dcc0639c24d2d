/* im: incident-management ChatOps server and its command line. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
	return im_cli_main(argc, argv);
}
