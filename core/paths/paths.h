/*
 * core/paths - where an im binary finds its own files: plugins, the
 * outbound-HTTP module, default templates, the default config folder and
 * the state folder.
 *
 * Two cases, told apart by where the running binary sits:
 *   - in the build folder it was built in (`./im`, the tests): the build's
 *     plugins/ and imnet.so beside it, the source tree's conf.d/ (and its
 *     templates) as defaults, ./var for state (the default conf.d says so);
 *   - installed: everything relative to the binary's prefix first
 *     (<bin>/../<libdir>/im/plugins, <bin>/../<datadir>/im/templates), so
 *     a tree installed with DESTDIR or moved elsewhere works as a whole,
 *     then the absolute folders meson was configured with.
 * The config folder is --config, else $IM_CONFIG, else ./conf.d for a
 * binary in its build folder, else <sysconfdir>/im/conf.d.
 *
 * All functions are thread-safe and allocate nothing.
 */
#ifndef IM_CORE_PATHS_H
#define IM_CORE_PATHS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum im_path_kind {
	IM_PATH_PLUGINS,    /* folder of the bundled plugin modules */
	IM_PATH_NET_MODULE, /* imnet.so */
	IM_PATH_TEMPLATES,  /* default templates */
	IM_PATH_CONFIG,     /* default config folder */
} im_path_kind;

/* The folder holding the running binary; 0 or -1 (no /proc). */
int im_paths_exe_dir(char *buf, size_t len);

/* True when the running binary sits in the build folder it was built in. */
bool im_paths_in_build(void);

/* Writes the path of `kind` for this binary to buf. Returns 0 when that
 * path exists, IM_ENOTFOUND when none of the candidates does (buf then
 * holds the configured absolute one, for messages). */
int im_paths_get(im_path_kind kind, char *buf, size_t len);

#endif
