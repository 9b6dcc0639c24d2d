/* Measures `im serve` from exec to the first 200 from /health, and the
 * idle resident memory, over several runs.
 * usage: bench-startup IM_BINARY CONFIG_DIR PORT [RUNS] */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One GET /health on a fresh connection; true on a 200. */
static int health_ok(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int ok = 0;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		const char *req = "GET /health HTTP/1.1\r\nHost: x\r\n"
				  "Connection: close\r\n\r\n";
		char buf[256];
		if (write(fd, req, strlen(req)) > 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			ok = n > 12 && memcmp(buf + 9, "200", 3) == 0;
		}
	}
	close(fd);
	return ok;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s IM CONFIG_DIR PORT [RUNS]\n", argv[0]);
		return 2;
	}
	unsigned port = (unsigned)atoi(argv[3]);
	int runs = argc > 4 ? atoi(argv[4]) : 20;
	if (runs < 1 || runs > 200)
		runs = 20;
	double t[200];
	long rss = -1;
	for (int i = 0; i < runs; i++) {
		double t0 = now_ms();
		pid_t pid = fork();
		if (pid == 0) {
			freopen("/dev/null", "w", stderr);
			execl(argv[1], argv[1], "serve", "--config", argv[2],
			      (char *)NULL);
			_exit(127);
		}
		double deadline = t0 + 5000;
		while (!health_ok(port) && now_ms() < deadline)
			usleep(200);
		t[i] = now_ms() - t0;
		if (i == runs - 1) {
			sleep(1); /* idle: after start-up settles */
			rss = rss_kb(pid);
		}
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	qsort(t, (size_t)runs, sizeof(double), cmp);
	printf("RESULT startup_ms_median=%.1f startup_ms_max=%.1f runs=%d "
	       "idle_rss_kb=%ld\n",
	       t[runs / 2], t[runs - 1], runs, rss);
	return 0;
}
