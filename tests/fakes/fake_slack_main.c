/* fake-slack: the fake Slack as a program, for benchmarks and manual
 * runs. Prints the API base URL and the port, then serves until SIGINT or
 * SIGTERM.
 *
 *   fake-slack [--port N] [--scopes a,b,c] [--bot-token T] [--app-token T]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_slack.h"

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	quit = 1;
}

int main(int argc, char **argv)
{
	unsigned port = 0;
	const char *scopes = NULL, *bot = "xoxb-test", *app = "xapp-test";
	for (int i = 1; i < argc; i++) {
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--port") && next)
			port = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--scopes") && next)
			scopes = argv[++i];
		else if (!strcmp(argv[i], "--bot-token") && next)
			bot = argv[++i];
		else if (!strcmp(argv[i], "--app-token") && next)
			app = argv[++i];
		else {
			fprintf(stderr,
				"usage: fake-slack [--port N] [--scopes a,b] "
				"[--bot-token T] [--app-token T]\n");
			return 2;
		}
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fake_slack *f = fake_slack_start(port);
	if (!f) {
		fprintf(stderr, "fake-slack: cannot listen on port %u\n", port);
		return 1;
	}
	fake_slack_set_tokens(f, bot, app);
	if (scopes)
		fake_slack_set_scopes(f, scopes);
	printf("FAKE_SLACK_API=%s\nFAKE_SLACK_PORT=%u\n", fake_slack_api_url(f),
	       fake_slack_port(f));
	fflush(stdout);
	while (!quit)
		pause();
	fake_slack_stop(f);
	return 0;
}
