/* incident-commands: the /incident chat commands. Every change goes
 * through host->incident_op, so the repository validates it, writes the
 * timeline and notifies subscribers exactly as for the REST API; this
 * plugin only turns chat text into operations and answers into replies. */
#include <stdlib.h>
#include <string.h>

#include "ic.h"

static const im_config_key keys[] = {
    {IM_CONFIG_KEY_HEADER, "channel_binding", IM_CFG_BOOL, "true", 0,
     "bind a channel to the incident declared in it, so commands there "
     "need no incident id", IM_CONFIG_STORE(ic, binding, IM_STORE_BOOL)},
    {0},
};

/* IM_VERB_FAST: reads of the store and the channel binding, and writes
 * answered once durable (ic_op_then): they run where the command arrives.
 * declare, close and cancel also bind or unbind the channel, a write of
 * their own, so they run on the command workers. */
#define FAST IM_VERB_FAST
static const im_command_verb verbs[] = {
    IM_VERB("declare", "declare <title> [--sev SEV-n] [--service S]",
     "declare an incident (binds this channel to it)"),
    IM_VERB_FLAGS("ack", "ack [INC-n]",
		  "acknowledge an incident: someone is on it", FAST),
    IM_VERB_FLAGS("mitigate", "mitigate [INC-n]",
		  "mark the impact as mitigated", FAST),
    IM_VERB_FLAGS("update", "update [INC-n] <text>",
		  "add a note to the timeline", FAST),
    IM_VERB_FLAGS("resolve", "resolve [INC-n] [note]", "resolve an incident",
		  FAST),
    IM_VERB("close", "close [INC-n]", "close a resolved incident"),
    IM_VERB("cancel", "cancel [INC-n]", "cancel an open incident declared by "
				 "mistake"),
    IM_VERB_FLAGS("sev", "sev [INC-n] SEV-n",
		  "change the severity (SEV-1 .. SEV-4)", FAST),
    IM_VERB_FLAGS("raise", "raise [INC-n]", "raise the severity by one level",
		  FAST),
    IM_VERB_FLAGS("assign", "assign [INC-n] @user",
		  "make someone incident commander", FAST),
    IM_VERB_FLAGS("status", "status [INC-n]", "show an incident", FAST),
    IM_VERB_FLAGS("list", "list [--sev SEV-n] [--service S]",
		  "list open incidents", FAST),
    {0},
};

/* Parallel to verbs[]. */
static const ic_verb_fn handlers[] = {
    ic_declare, ic_transition, ic_transition, ic_update,
    ic_transition, ic_transition, ic_transition, ic_sev,
    ic_raise, ic_assign, ic_status, ic_list,
};

_Static_assert(sizeof(handlers) / sizeof(handlers[0]) ==
		   sizeof(verbs) / sizeof(verbs[0]) - 1,
	       "one handler per verb");

static const im_command_action actions[] = {
    {sizeof(im_command_action), "im_ack", "ack"},
    {sizeof(im_command_action), "im_resolve", "resolve"},
    {sizeof(im_command_action), "im_sev_up", "raise"},
    {0},
};

static int cmd_invoke(void *state, const char *verb, const im_invocation *inv,
		      im_reply *reply)
{
	const ic *self = state;
	ic_call c = {.self = self, .inv = inv, .reply = reply};
	size_t i = 0;
	while (verbs[i].name && (!verb || strcmp(verbs[i].name, verb) != 0))
		i++;
	if (!verbs[i].name)
		return ic_say(&c, IM_EINVAL, IM_REPLY_EPHEMERAL,
			      "`%s` is not an incident command; `%s help` "
			      "lists them.",
			      verb ? verb : "", ic_cmd(&c));
	c.verb = &verbs[i];
	char err[1024];
	int rc = ic_args_split(inv->text, &c.args, err, sizeof(err));
	if (rc == IM_EINVAL)
		return ic_usage(&c, "%s", err);
	if (rc == 0)
		rc = handlers[i](&c);
	ic_args_free(&c.args);
	return rc;
}

static int create(const im_host *host, im_instance *inst,
		  const json_t *config, void **state)
{
	if (!IM_HOST_HAS(host, incident_op) ||
	    !IM_HOST_HAS(host, reply_action)) {
		if (IM_HOST_HAS(host, set_state))
			host->set_state(inst, IM_STATE_FAILED,
					"this host has no incident operations "
					"for command plugins; upgrade im");
		return IM_EUNSUPPORTED;
	}
	ic *self = calloc(1, sizeof(*self));
	if (!self)
		return IM_ENOMEM;
	/* Fills self->binding (the key table stores into ic itself). */
	int rc = host->config_fill(inst, self, sizeof(*self));
	if (rc) {
		free(self);
		return rc;
	}
	self->host = host;
	self->inst = inst;
	self->has_kv = IM_HOST_HAS(host, kv_get) && IM_HOST_HAS(host, kv_put) &&
		       IM_HOST_HAS(host, kv_del);
	if (self->binding && !self->has_kv)
		IM_WARN(host, inst, "this host has no key-value store: "
				    "channels are not bound to incidents");
	*state = self;
	return 0;
}

static void destroy(void *state)
{
	free(state);
}

static const im_command command = {
    .base = {.struct_size = sizeof(im_command),
	     .kind = IM_COMPONENT_COMMAND,
	     .name = "incident-commands"},
    .verbs = verbs,
    .invoke = cmd_invoke,
    .actions = actions,
};

static const im_component *const components[] = {&command.base, NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "incident-commands",
    .version = "1.0.0",
    .description = "The /incident chat commands: declare, ack, update, "
		   "resolve and more, with buttons",
    .vendor = "im",
    .license = "MIT",
    .components = components,
    .config_keys = keys,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
