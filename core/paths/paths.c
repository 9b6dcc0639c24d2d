/* Where this binary's files are: see paths.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <im/types.h>

#include "paths/paths.h"
#include "paths/paths_config.h"

int im_paths_exe_dir(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s", exe) >= len)
		return -1;
	return 0;
}

static bool same_dir(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];
	return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

bool im_paths_in_build(void)
{
	char dir[PATH_MAX];
	return im_paths_exe_dir(dir, sizeof(dir)) == 0 &&
	       same_dir(dir, IM_BUILD_ROOT);
}

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* Tries "<exe dir>/<rel>" (rel may start with "../"), then `abs`. */
static int pick(const char *rel, const char *abs, char *buf, size_t len)
{
	char dir[PATH_MAX];
	if (!buf || !len)
		return IM_EINVAL;
	if (rel && im_paths_exe_dir(dir, sizeof(dir)) == 0 &&
	    (size_t)snprintf(buf, len, "%s/%s", dir, rel) < len && exists(buf))
		return 0;
	snprintf(buf, len, "%s", abs);
	return exists(buf) ? 0 : IM_ENOTFOUND;
}

int im_paths_get(im_path_kind kind, char *buf, size_t len)
{
	bool build = im_paths_in_build();
	switch (kind) {
	case IM_PATH_PLUGINS:
		return pick(build ? "plugins"
				  : "../" IM_REL_LIBDIR "/im/plugins",
			    IM_ABS_LIBDIR "/im/plugins", buf, len);
	case IM_PATH_NET_MODULE:
		return pick(build ? "imnet.so" : "../" IM_REL_LIBDIR "/im/imnet.so",
			    IM_ABS_LIBDIR "/im/imnet.so", buf, len);
	case IM_PATH_TEMPLATES:
		if (build)
			return pick(NULL, IM_SOURCE_ROOT "/conf.d/templates",
				    buf, len);
		return pick("../" IM_REL_DATADIR "/im/templates",
			    IM_ABS_DATADIR "/im/templates", buf, len);
	case IM_PATH_CONFIG:
		return pick(NULL, build ? "conf.d" : IM_ABS_SYSCONFDIR "/im/conf.d",
			    buf, len);
	}
	return IM_EINVAL;
}
