/*
 * core/plugin - loading plugin modules, making instances from the config,
 * and swapping the running set on reload.
 *
 * Threads: the control thread (main) loads, builds, swaps and destroys;
 * HTTP workers and other threads only acquire the current snapshot, use its
 * instances, and release it. A snapshot is immutable once published. The
 * control thread destroys an old snapshot's instances only after every
 * acquire of it has been released (drain), so a plugin's create(), start(),
 * stop() and destroy() all run on the control thread.
 *
 * Lifetimes: a snapshot holds a reference on each of its instances; an
 * instance holds one on its module; dlclose() happens when a module's count
 * reaches zero (unless IM_DLCLOSE=0, for leak checkers).
 */
#ifndef IM_CORE_PLUGIN_H
#define IM_CORE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include <im/im.h>

#include "config/config.h"

/* --- modules (module.c) ------------------------------------------------ */

typedef struct im_module {
	struct im_module *next; /* in the module cache */
	int refs;
	char *name;  /* "echo" */
	char *path;  /* resolved file path */
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	off_t size;
	void *dl;
	im_plugin_desc desc; /* copy of min(struct_size, sizeof) bytes */
	/* Components copied into zeroed memory of the host's size. */
	const im_connector *connectors[8];
	size_t n_connectors;
	const im_formatter *formatters[8];
	size_t n_formatters;
	const im_command *commands[8];
	size_t n_commands;
	void *copies; /* allocation holding the component copies */
	/* Host copies of the key, verb and action tables (tables.c): the
	 * descriptor's config_keys and the command copies point at them. */
	void *tables[1 + 2 * 8];
	size_t n_tables;
	/* Loaded through /proc/self/fd/<dl_fd> (a file that replaced a loaded
	 * one): the descriptor stays open while the object is loaded, so no
	 * later module gets the same name and with it this object. -1 when
	 * loaded by path. */
	int dl_fd;
} im_module;

/* Plugin folders in search order: IM_PLUGIN_PATH, plugins.dirs (relative
 * ones from the config folder), then <folder of the im binary>/plugins. */
typedef struct im_plugin_dirs {
	char **dirs; /* resolved real paths of existing folders */
	size_t n;
} im_plugin_dirs;

int im_plugin_dirs_from(const im_config *cfg, im_plugin_dirs *out);
void im_plugin_dirs_free(im_plugin_dirs *d);

/* Finds `name`.so in the dirs, checks it and loads it (or returns the
 * cached module when the same file is loaded already), taking a reference.
 * On failure writes one line: "<file>: <reason>; <what to do>". */
im_module *im_module_load(const im_plugin_dirs *dirs, const char *name,
			  char *err, size_t errlen);
/* Loads a module from an explicit file path (still checked). */
im_module *im_module_load_file(const char *path, const char *name,
			       char *err, size_t errlen);
void im_module_unref(im_module *m);

/* tables.c: whether a plugin of this ABI minor wrote its tables in the
 * 1.0-1.2 layout (no struct_size), and host copies of its tables in the
 * current layout (calloc'd, ended by a zeroed entry; NULL with err). */
bool im_abi_legacy_tables(uint16_t abi_minor);
im_config_key *im_tables_keys(const im_config_key *keys, bool legacy,
			      char *err, size_t errlen);
im_command_verb *im_tables_verbs(const im_command_verb *verbs, bool legacy,
				 char *err, size_t errlen);
im_command_action *im_tables_actions(const im_command_action *actions,
				     bool legacy, char *err, size_t errlen);
/* Names of every *.so in the dirs (sorted, unique), for listings. */
json_t *im_module_scan(const im_plugin_dirs *dirs);
/* Module as JSON: name, version, abi, components, file, vendor, ... */
json_t *im_module_describe(const im_module *m);

/* --- instances and snapshots (registry.c) ------------------------------- */

typedef struct im_route {
	char *method;
	char *path;
	im_route_fn fn;
} im_route;

struct im_instance {
	int refs;             /* snapshots holding it; control thread only */
	char *id;
	char *module_name;
	im_module *mod;       /* NULL when loading failed */
	char *where;          /* "file:line" of the entry */
	bool required;
	json_t *raw_config;   /* as written, for reload comparison */
	json_t *config;       /* validated, defaults filled */
	void *state;          /* from create() */
	im_instance_state st; /* guarded by the registry's state lock */
	char *reason;
	bool creating;        /* route_add allowed */
	/* A route handler took too long once: its routes run offloaded
	 * (off the HTTP workers) until the instance is recreated. Atomic. */
	bool slow_routes;
	bool started;
	im_route *routes;
	size_t n_routes;
	/* Set (atomically) when it stops: its connection gauge belongs to
	 * its successor then, and what it reports is ignored. */
	bool stopping;
	/* The platform it reported a connection state for (its gauge's
	 * label), "" before. Control thread and the connector's own. */
	char platform[32];
};

typedef struct im_snapshot {
	im_instance **insts;
	size_t n;
	int inflight;  /* guarded by the registry lock */
	bool retired;
	unsigned long generation;
} im_snapshot;

/* chatops_connection_status{platform,instance}, registered on first use. */
im_metric *im_connection_gauge(void);

/* The instance's connector component, or NULL (not loaded, or a module
 * without one). An instance serves one connector: a module's first. */
static inline const im_connector *im_instance_connector(const im_instance *in)
{
	return in && in->mod && in->mod->n_connectors ? in->mod->connectors[0]
						      : NULL;
}

/* The host services handed to plugins (host.c). */
/* The host table for a plugin of module `m` (its ABI minor decides the
 * layout of HTTP result headers it reads). */
const im_host *im_host_table(const im_module *m);

/* The chat-command entries of the host table. They belong to
 * core/command (they route through the registry, which lives here), so
 * core/command installs them at start-up, before any plugin is created;
 * until then they are NULL (IM_HOST_HAS says so). This is the only way
 * core/plugin reaches command code. */
typedef struct im_host_commands {
	__typeof__(((im_host *)0)->command_handle) command_handle;
	__typeof__(((im_host *)0)->command_dispatch) command_dispatch;
	__typeof__(((im_host *)0)->reply_text) reply_text;
	__typeof__(((im_host *)0)->reply_visibility) reply_visibility;
	__typeof__(((im_host *)0)->reply_field) reply_field;
	__typeof__(((im_host *)0)->reply_action) reply_action;
	__typeof__(((im_host *)0)->incident_op) incident_op;
	__typeof__(((im_host *)0)->command_verbs) command_verbs;
	__typeof__(((im_host *)0)->incident_op_then) incident_op_then;
} im_host_commands;
void im_host_install_commands(const im_host_commands *c);
/* Sets what the host table reaches (the store) and allows outbound HTTP;
 * the network thread starts on first use. unbind stops it (cancelling
 * pending requests) and is called at shutdown, after the instances are
 * gone. */
struct im_store;
void im_host_bind(struct im_store *store);
void im_host_unbind(void);
/* In a forked trial child only: the host's database and network are cut
 * off without touching the parent's threads or locks. */
void im_host_isolate(void);

/* crash.c: while a thread runs plugin code it names the call, so a fatal
 * signal leaves "FATAL [core:plugin] SIGSEGV in plugin chat (instance
 * chat-prod) during route POST commands" on stderr before the process dies
 * (the previous handler, e.g. a sanitizer's, still runs after it).
 * install: once, at start (serve). Strings are borrowed for the call. */
typedef struct im_plugin_call {
	const char *module, *instance, *what, *detail;
} im_plugin_call;
void im_plugin_crash_guard_install(void);
void im_plugin_call_enter(const char *module, const char *instance,
			  const char *what, const char *detail);
void im_plugin_call_leave(void);

/* trial.c: loads the modules of `entries` (plugins.instances entries:
 * {id, module, config}) and creates their instances in a forked child.
 * Returns {id: reason} for each instance whose load or create() killed
 * the child (an empty object when none did, or the trial could not run).
 * Control thread or CLI; blocks up to 10 s per crash. */
json_t *im_plugin_trial(const im_config *cfg, const im_plugin_dirs *dirs,
			const json_t *entries);
/* True when the file that would load as module `name` is the one `m` was
 * loaded from (same path, inode, size and time). */
bool im_module_file_same(const im_plugin_dirs *dirs, const char *name,
			 const im_module *m);

/* Builds a snapshot from `cfg`: loads modules, validates each instance's
 * config against its key table, creates instances (reusing running ones
 * whose module file and config are unchanged). Config errors (unknown key,
 * wrong type, missing key) and a failed `required: true` instance fail the
 * build (returns NULL, err says why); other plugin failures leave that
 * instance `failed` with its reason. Control thread only. */
im_snapshot *im_registry_build(const im_config *cfg, char *err,
			       size_t errlen);
/* Same, keeping only instances whose module has a component of `kind`
 * (e.g. IM_COMPONENT_FORMATTER for `im chatops templates validate`, which
 * must not start connectors). 0 keeps all. With IM_COMPONENT_FORMATTER,
 * instances of connector modules are kept too but never created (state
 * stopped): the templates read their platform rules. */
im_snapshot *im_registry_build_kind(const im_config *cfg, uint32_t only_kind,
				    char *err, size_t errlen);
/* Validates without creating anything (im config validate): loads
 * modules and checks keys. Returns 0 or IM_ECONFIG with err. Modules that
 * cannot be loaded are reported in `warnings` (a JSON array of strings). */
int im_registry_check(const im_config *cfg, json_t *warnings, char *err,
		      size_t errlen);
/* Publishes `s` as current, waits for the old one to drain, then stops and
 * destroys instances no longer used. Control thread only. */
void im_registry_swap(im_snapshot *s);
/* The same, calling on_drained(ud) after the old snapshot drained and
 * before its instances are stopped (to drop what borrows them). */
void im_registry_swap_with(im_snapshot *s, void (*on_drained)(void *ud),
			   void *ud);
/* Drops everything (shutdown). Control thread only. */
void im_registry_shutdown(void);

/* Any thread: the current snapshot, held until release. NULL when none. */
im_snapshot *im_registry_acquire(void);
void im_registry_release(im_snapshot *s);
im_instance *im_snapshot_find(const im_snapshot *s, const char *id);
/* The running command component serving `verb` (case-insensitive) or,
 * when action_id is set, that button; *verb_out is the verb as the
 * component spells it, *entry its entry in the component's verb table
 * (NULL for a button whose verb is not in it). IM_ENOTFOUND when none. */
int im_snapshot_command(const im_snapshot *s, const char *verb,
			const char *action_id, im_instance **in,
			const im_command **cmd, const im_command_verb **entry,
			const char **verb_out);
/* The running formatter serving file extension `ext` ("mustache"), and
 * its instance; NULL when none. Hold the snapshot while using it. */
const im_formatter *im_snapshot_formatter(const im_snapshot *s,
					  const char *ext, im_instance **in);

/* Any thread: JSON listing for `im plugins list`. */
json_t *im_registry_describe(void);

/* Routes /hooks/<id>/<path> to the instance's handler (router handler). */
int im_registry_hook_handler(void *ud, const struct im_http_request *req,
			     struct im_http_response *resp);

/* Runs a chat command verb on whichever command component serves it.
 * Returns IM_ENOTFOUND when no component has the verb. */
int im_registry_invoke(const char *verb, const im_invocation *inv,
		       im_reply *reply);

const char *im_instance_state_name(im_instance_state st);
/* Any thread: sets an instance's state and reason (copied). */
/* The instance's state, read under the registry's state lock. */
im_instance_state im_instance_get_state(im_instance *in);
void im_instance_set_state(im_instance *in, im_instance_state st,
			   const char *reason);

#endif
