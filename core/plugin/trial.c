/* Trial loads: a new plugin module is loaded and its instance created in
 * a forked child first, so a module that crashes in its constructor or in
 * create() takes down the child, not the server (see plugin.h).
 *
 * The child is a copy of this process at the moment of the fork: it runs
 * only the loads and creates, with the host's database and network cut
 * off (im_host_isolate), reports each instance id on a pipe before it
 * tries it, and leaves with _exit(0) without cleaning up. A child that
 * does not end in time is killed and counts as no crash seen: a fork of a
 * threaded process can block on a lock another thread held. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock/clock.h"
#include "log/log.h"
#include "plugin/plugin.h"

#define TRIAL_MS 10000

static void child(int wfd, const im_config *cfg, const im_plugin_dirs *dirs,
		  const json_t *entries)
{
	im_host_isolate();
	size_t i;
	const json_t *e;
	json_array_foreach(entries, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *mod = json_string_value(json_object_get(e, "module"));
		char line[200];
		int n = snprintf(line, sizeof(line), "%s\n", id ? id : "?");
		if (write(wfd, line, (size_t)n) < 0)
			_exit(3);
		char err[1024];
		im_module *m = im_module_load(dirs, mod, err, sizeof(err));
		if (!m)
			continue; /* refused in the parent too, with the reason */
		char path[300];
		snprintf(path, sizeof(path), "plugins.instances[%s].config", id);
		json_t *conf = NULL;
		if (im_config_apply_keys(cfg, path,
					 json_object_get(e, "config"),
					 m->desc.config_keys, &conf, err,
					 sizeof(err)) != 0)
			continue;
		im_instance in = {.refs = 1, .id = (char *)id,
				  .module_name = (char *)mod, .mod = m,
				  .config = conf, .creating = true};
		void *state = NULL;
		m->desc.create(im_host_table(m), &in, conf, &state);
	}
	if (write(wfd, ".\n", 2) < 0)
		_exit(3);
	_exit(0);
}

json_t *im_plugin_trial(const im_config *cfg, const im_plugin_dirs *dirs,
			const json_t *entries)
{
	json_t *crashed = json_object();
	if (!crashed || json_array_size(entries) == 0)
		return crashed;
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return crashed;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		LOG_WARN("loader", "trial load skipped: fork: %s",
			 strerror(errno));
		return crashed;
	}
	if (pid == 0) {
		close(p[0]);
		child(p[1], cfg, dirs, entries);
	}
	close(p[1]);
	char buf[4096], last[200] = "";
	size_t got = 0;
	bool done = false;
	int status = 0;
	long long end = im_mono_ms() + TRIAL_MS;
	for (;;) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		long long left = end - im_mono_ms();
		if (left <= 0)
			break;
		if (poll(&pf, 1, (int)(left < 50 ? left : 50)) == 1) {
			ssize_t n = read(p[0], buf + got, sizeof(buf) - 1 - got);
			if (n > 0)
				got += (size_t)n;
			buf[got] = '\0';
			/* Keep the last complete line: the instance tried. */
			char *nl;
			while ((nl = strchr(buf, '\n'))) {
				*nl = '\0';
				if (strcmp(buf, ".") == 0)
					done = true;
				else
					snprintf(last, sizeof(last), "%.190s", buf);
				memmove(buf, nl + 1, got - (size_t)(nl + 1 - buf) + 1);
				got -= (size_t)(nl + 1 - buf);
			}
			if (got >= sizeof(buf) - 1)
				got = 0;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			pid = 0;
			break;
		}
	}
	close(p[0]);
	if (pid > 0) { /* out of time: no crash seen */
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		LOG_WARN("loader", "trial load of %s did not finish in %d s; "
				   "loading without it",
			 *last ? last : "the new instances", TRIAL_MS / 1000);
		return crashed;
	}
	if (WIFSIGNALED(status) && !done && *last) {
		int sig = WTERMSIG(status);
		json_object_set_new(crashed, last,
				    json_sprintf("crashed with %s (signal %d) "
						 "while its module loaded or "
						 "create() ran, in a trial "
						 "process; the server runs "
						 "without it",
						 strsignal(sig), sig));
		LOG_ERROR("loader", "instance %s: plugin crashed with %s in a "
				    "trial load; refused",
			  last, strsignal(sig));
		/* The rest were not tried: try them again without it. */
		json_t *rest = json_array();
		size_t i;
		const json_t *e;
		bool after = false;
		json_array_foreach(entries, i, e)
		{
			const char *id =
			    json_string_value(json_object_get(e, "id"));
			if (after)
				json_array_append(rest, (json_t *)e);
			else if (id && !strcmp(id, last))
				after = true;
		}
		json_t *more = im_plugin_trial(cfg, dirs, rest);
		json_object_update(crashed, more);
		json_decref(more);
		json_decref(rest);
	}
	return crashed;
}
