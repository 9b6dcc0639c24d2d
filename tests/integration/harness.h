/* Integration-test harness: runs the real `im` binary of this build as a
 * child process against a config folder made by the test, and talks to it
 * over loopback HTTP with libcurl. */
#ifndef IM_TEST_HARNESS_H
#define IM_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

typedef struct srv {
	pid_t pid;
	unsigned port, mport;
	char dir[128];     /* temp folder: conf/, plugins/, var/, log */
	char conf[160];    /* its conf.d */
	char log[160];     /* server stderr */
} srv;

typedef struct reply {
	long status;
	char *body;
	char *headers;
} reply;

/* Makes the temp folder with conf/ and a 00-server.yaml using free ports. */
void srv_init(srv *s);
/* Writes conf/<name> (printf-style content). */
void srv_conf(srv *s, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Starts `im serve`; waits until /health answers (true) or the process
 * exits / 10 s pass (false). */
bool srv_start(srv *s);
/* SIGTERM, then waits; returns the exit status (or -1 on a signal). */
int srv_stop(srv *s);
/* Stops if running and removes the folder. */
void srv_cleanup(srv *s);
/* The server's log so far (malloc'd). */
char *srv_log(const srv *s);
/* Test-side shorthands: start, failing the test with the server's log
 * when it does not come up; stop, expecting a clean exit (a leak fails
 * the ASan build), with the log in the message when not. */
void srv_must_start(srv *s);
void srv_must_stop(srv *s);

/* HTTP to the API port (or metrics port when `metrics`). `headers` is a
 * NULL-terminated list of "Name: value" or NULL. */
reply http(const srv *s, bool metrics, const char *method, const char *path,
	   const char *body, size_t len, const char *const *headers);
void reply_free(reply *r);

/* Runs `im <args...>` with IM_URL pointing at the server and --config set;
 * returns the exit code and captures stdout/stderr (malloc'd). */
int cli(const srv *s, char **out, char **err, const char *const *args);

/* Sleeps (tests poll with these between checks). */
void sleep_ms(long ms);
void sleep_s(double secs);
/* The string member `k` of `o`, or "" when absent or not a string. */
const char *sfield(const json_t *o, const char *k);

/* Path of the build folder and of a file inside it. */
const char *build_dir(void);
void copy_file(const char *from, const char *to, mode_t mode);

#endif
