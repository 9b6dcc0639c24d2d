/* The SDK promise: a vendor builds a plugin outside the tree with only the
 * public headers, and the host loads it and runs an instance of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "plugin/plugin.h"

Test(sdk, example_builds_out_of_tree_and_loads)
{
	const char *src = getenv("IM_TEST_SRCDIR");
	cr_assert(src);
	char dir[] = "/tmp/im-sdk-XXXXXX", cmd[2048];
	cr_assert(mkdtemp(dir));
	chmod(dir, 0755);
	snprintf(cmd, sizeof(cmd),
		 "make -s -C %s/sdk/example O=%s IM_INCLUDE=%s/include "
		 ">%s/make.log 2>&1",
		 src, dir, src, dir);
	int rc = system(cmd);
	cr_assert_eq(rc, 0, "make failed: see %s/make.log", dir);

	char yaml[1024], err[1024] = "";
	snprintf(yaml, sizeof(yaml),
		 "plugins:\n  dirs: [\"%s\"]\n  instances:\n"
		 "    - {id: hi, module: hello}\n",
		 dir);
	im_config *cfg = im_config_load_string("sdk.yaml", yaml, err,
					       sizeof(err));
	cr_assert(cfg, "%s", err);
	im_snapshot *s = im_registry_build(cfg, err, sizeof(err));
	cr_assert(s, "%s", err);
	im_registry_swap(s);
	im_instance *in = im_snapshot_find(s, "hi");
	cr_assert(in);
	cr_expect_eq(in->st, IM_STATE_RUNNING, "%s", in->reason);
	cr_expect_str_eq(in->mod->desc.vendor, "Example Corp");
	cr_expect_eq(in->n_routes, 1);
	cr_expect_str_eq(json_string_value(json_object_get(in->config,
							   "greeting")),
			 "hello from a vendor");
	im_registry_shutdown();
	im_config_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}
