/* One source, many broken plugins: BROKEN selects what is wrong. */
#include <stdlib.h>

#include <im/im.h>

#ifndef PLUGIN_NAME
#error PLUGIN_NAME must be defined
#endif

#if defined(BROKEN_CTOR_CRASH) || defined(BROKEN_CREATE_CRASH) || \
    defined(BROKEN_ROUTE_CRASH)
#include <signal.h>
#endif

#if defined(BROKEN_ROUTE_CRASH)
static int crash_route(void *state, const im_http_request *req,
		       im_http_response *resp)
{
	raise(SIGSEGV);
	return 0;
}
#endif

#if defined(BROKEN_CTOR_CRASH)
/* Dies as soon as it is mapped, before the host sees a descriptor. */
__attribute__((constructor)) static void crash_on_load(void)
{
	raise(SIGSEGV);
}
#endif

static int create(const im_host *host, im_instance *inst,
		  const json_t *config, void **state)
{
#if defined(BROKEN_CREATE_CRASH)
	raise(SIGSEGV);
	return IM_EIO;
#elif defined(BROKEN_ROUTE_CRASH)
	*state = NULL;
	return host->route_add(inst, "POST", "crash", crash_route);
#elif defined(BROKEN_INIT)
	host->set_state(inst, IM_STATE_FAILED, "cannot reach the backend");
	return IM_EIO;
#elif defined(BROKEN_UNCONFIGURED)
	host->set_state(inst, IM_STATE_UNCONFIGURED,
			"set token (TEST_TOKEN) to enable it");
	return IM_EUNCONFIGURED;
#else
	*state = NULL;
	return 0;
#endif
}

static const im_component *const components[] = {NULL};

static const im_plugin_desc desc = {
#if defined(BROKEN_MAGIC)
    .magic = 0xdeadbeef,
#else
    .magic = IM_PLUGIN_MAGIC,
#endif
#if defined(BROKEN_MAJOR)
    .abi_major = IM_ABI_MAJOR + 1,
#else
    .abi_major = IM_ABI_MAJOR,
#endif
#if defined(BROKEN_MINOR)
    .abi_minor = IM_ABI_MINOR + 1,
#else
    .abi_minor = IM_ABI_MINOR,
#endif
    .struct_size = sizeof(im_plugin_desc),
    .name = PLUGIN_NAME,
    .version = "0.0.1",
    .vendor = "tests",
#if !defined(BROKEN_LICENSE)
    .license = "MIT",
#endif
    .components = components,
    .create = create,
};

#if defined(BROKEN_NO_ENTRY)
IM_PLUGIN_EXPORT const im_plugin_desc *im_plugin_entry_typo(void);
IM_PLUGIN_EXPORT const im_plugin_desc *im_plugin_entry_typo(void)
{
	return &desc;
}
#else
IM_PLUGIN_DEFINE(desc)
#endif
