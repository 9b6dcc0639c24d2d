/* Which incident a command is about: an id in the arguments, or the
 * incident the channel was declared in. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ic.h"

bool ic_parse_id(const char *s, char *id, size_t idlen)
{
	if (!s)
		return false;
	const char *p = s;
	if (strncasecmp(p, "INC-", 4) == 0)
		p += 4;
	size_t n = strlen(p);
	if (n == 0 || n > 15 || *p == '0')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	return (size_t)snprintf(id, idlen, "INC-%s", p) < idlen;
}

static bool channel_key(const ic_call *c, char *key, size_t len)
{
	const im_invocation *inv = c->inv;
	if (!c->self->binding || !c->self->has_kv || !inv->channel ||
	    !*inv->channel)
		return false;
	return (size_t)snprintf(key, len, "channel:%s:%s",
				inv->platform ? inv->platform : "",
				inv->channel) < len;
}

/* The id the channel is bound to, or false. */
static bool bound_id(const ic_call *c, char *id, size_t idlen)
{
	char key[512];
	char *v = NULL;
	if (!channel_key(c, key, sizeof(key)))
		return false;
	const im_host *h = c->self->host;
	if (h->kv_get(c->self->inst, key, &v) != 0 || !v)
		return false;
	bool ok = ic_parse_id(v, id, idlen);
	free(v);
	return ok;
}

int ic_target(ic_call *c, size_t min_rest, char *id, size_t idlen,
	      size_t *next)
{
	/* "INC-7" is always an id; a bare "7" only when the verb's other
	 * arguments follow it, so that `sev 2` means SEV-2. */
	const char *first = c->args.n ? c->args.v[0] : "";
	bool prefixed = strncasecmp(first, "INC-", 4) == 0;
	if ((prefixed || c->args.n > min_rest) &&
	    ic_parse_id(first, id, idlen)) {
		*next = 1;
		return 0;
	}
	*next = 0;
	if (prefixed)
		return ic_usage(c, "`%s` is not an incident id; ids look like "
				   "INC-7.",
				first);
	if (bound_id(c, id, idlen))
		return 0;
	return ic_usage(
	    c, "Which incident? Name it (e.g. `INC-7`)%s.",
	    c->self->binding ? ", or run this in the channel where it was "
			       "declared"
			     : "");
}

bool ic_bind(ic_call *c, const char *id)
{
	char key[512];
	if (!channel_key(c, key, sizeof(key)))
		return false;
	int rc = c->self->host->kv_put(c->self->inst, key, id);
	if (rc != 0)
		IM_WARN(c->self->host, c->self->inst,
			"could not bind %s to %s (%d)", key, id, rc);
	return rc == 0;
}

bool ic_unbind(ic_call *c, const char *id)
{
	char key[512], cur[32];
	if (!bound_id(c, cur, sizeof(cur)) || strcmp(cur, id) != 0 ||
	    !channel_key(c, key, sizeof(key)))
		return false;
	return c->self->host->kv_del(c->self->inst, key) == 0;
}
