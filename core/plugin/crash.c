/* A crash inside a plugin leaves one log line naming the plugin, the
 * instance and what it was doing (see plugin.h), written from the signal
 * handler with write(2) only. Then the previous handler runs (the
 * sanitizers' report, say) or the default action ends the process; the
 * service manager restarts it and the outbox keeps every notification. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "plugin/plugin.h"

static _Thread_local im_plugin_call current;
static struct sigaction previous[32];
static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

void im_plugin_call_enter(const char *module, const char *instance,
			  const char *what, const char *detail)
{
	current = (im_plugin_call){module, instance, what, detail};
}

void im_plugin_call_leave(void)
{
	current = (im_plugin_call){0};
}

static void put(const char *s)
{
	if (s && write(2, s, strlen(s)) < 0)
		return; /* nothing left to do about it */
}

static void on_fatal(int sig, siginfo_t *info, void *uctx)
{
	im_plugin_call c = current;
	if (c.module) {
		put("FATAL [core:plugin] ");
		put(sig == SIGSEGV   ? "SIGSEGV"
		    : sig == SIGBUS  ? "SIGBUS"
		    : sig == SIGFPE  ? "SIGFPE"
		    : sig == SIGILL  ? "SIGILL"
				     : "SIGABRT");
		put(" in plugin ");
		put(c.module);
		put(" (instance ");
		put(c.instance);
		put(") during ");
		put(c.what);
		if (c.detail) {
			put(" ");
			put(c.detail);
		}
		put("; the process stops, notifications wait in the outbox\n");
	}
	struct sigaction *prev = sig < 32 ? &previous[sig] : NULL;
	if (prev && (prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
		prev->sa_sigaction(sig, info, uctx);
		return;
	}
	if (prev && prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN &&
	    prev->sa_handler) {
		prev->sa_handler(sig);
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

void im_plugin_crash_guard_install(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fatal;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, &previous[fatal[i]]);
}
