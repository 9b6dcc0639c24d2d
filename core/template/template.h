/*
 * core/template - chat message templates: which file serves a platform and
 * event, which engine renders it, how incident text is escaped, and the
 * platform limits every payload is held to, as the platform's connector
 * declares them.
 *
 * Files. A template is <dir>/<platform>/<event>.<ext> ("chat/declare.mustache");
 * its name is "<platform>/<event>" and <ext> picks the engine: the running
 * formatter instance serving that extension (im_snapshot_formatter).
 * Partials ({{> name}}) are <dir>/<platform>/partials/<name>.<ext>, then
 * <dir>/partials/<name>.<ext>. Two folders are read:
 *   - defaults: $IM_TEMPLATES_DEFAULT, else im_paths_get(IM_PATH_TEMPLATES):
 *     <source tree>/conf.d/templates for a binary in its build folder,
 *     else <bin>/../<datadir>/im/templates, else <datadir>/im/templates
 *     (where `meson install` puts conf.d/templates);
 *   - overrides: chatops.templates_dir (default "templates"), relative to
 *     the config folder. A file there with the same <platform>/<event> (or
 *     partial name) wins over the default. When both resolve to the same
 *     folder there are no overrides.
 * A broken override (it does not compile, or renders to something that is
 * not a valid payload) never stops delivery: it is logged, counted in
 * im_template_errors_total{template="<platform>/<event>"}, and the default
 * is used.
 *
 * Escaping is the host's decision, never the template's. The rules come
 * from the connector component serving the platform (im_connector.rules
 * and fit_payload, see im/connector.h), collected at load from the
 * connector modules of the snapshot, per platform name (the first
 * connector of a platform wins). Before rendering, every string of the
 * context is escaped by those rules (a backslash before the declared
 * characters, the declared replacements such as "&" -> "&amp;", a
 * zero-width space after the first byte of a declared mention sequence),
 * control characters other than newline and tab are dropped, and then
 * the template renders with IM_ESCAPE_JSON. Host-made machine values
 * (ids, states, times, URLs: keys such as id, status, severity, url,
 * time) pass through unchanged when they look like one, so button values
 * and links keep working. The context also gets severity_emoji and
 * severity_color from the rules. The result must parse as JSON; then the
 * connector's fit_payload holds it to the platform limits: what a cut can
 * repair is cut (on a UTF-8 boundary, ending in "…", never inside an
 * escape the rules made), the rest is reported and makes the render fail.
 * A platform with templates but no loaded connector renders with no
 * escaping (only control characters are dropped), no severity_emoji or
 * severity_color, and no limits; validate checks it for valid JSON only.
 *
 * Threads and lifetime: a set is immutable once loaded; render, list and
 * validate may run on any thread, concurrently. A set borrows the formatter
 * instances of the snapshot it was loaded from: render while holding a
 * snapshot that contains them (im_registry_acquire), and drop the last
 * reference to a set before that snapshot can drain. Sets are reference
 * counted so an owner can publish a new one while renders of the old one
 * finish. JSON passed in is borrowed; JSON returned is new (caller owns).
 */
#ifndef IM_CORE_TEMPLATE_H
#define IM_CORE_TEMPLATE_H

#include <stddef.h>

#include <jansson.h>

#include "config/config.h"
#include "plugin/plugin.h"

typedef struct im_template_set im_template_set;

/* Loads and compiles every template (control thread: it reads files).
 * Returns 0 with a set, or IM_ENOMEM. Problems with single files (compile
 * errors, no engine for an extension, no default folder) do not fail the
 * load: they are logged, counted, and reported by im_template_validate. */
int im_template_load(const im_config *cfg, const im_snapshot *snap,
		     im_template_set **out, char *err, size_t errlen);
im_template_set *im_template_set_ref(im_template_set *set);
/* Drops a reference; the last one frees the set. NULL is fine. */
void im_template_set_unref(im_template_set *set);

/* Renders template <platform>/<event> (`event` may also be the event type
 * "im.incident.<event>") with `context` (borrowed; see
 * conf.d/templates/README.md for its shape, and im_template_context).
 * On success *payload is the parsed, limit-checked JSON payload (new).
 * Errors: IM_ENOTFOUND (no such template), IM_EINVAL (render, JSON or an
 * unrepairable platform rule: err says "file:line: why"). */
int im_template_render(const im_template_set *set, const char *platform,
		       const char *event, const json_t *context,
		       json_t **payload, char *err, size_t errlen);

/* [{name, platform, event, engine, file, source: "default"|"override",
 *   default_file, error}] sorted by name; error only when the override or
 * the file is broken. */
json_t *im_template_list(const im_template_set *set);

/* Renders every template (of `platform`, or all when NULL) with sample
 * incidents (normal, 10,000-character texts, Unicode with emoji and RTL,
 * hostile text) and checks JSON validity and the platform rules. Returns
 * the problems as an array of "file:line: rule broken" strings (empty when
 * all is well). *checked, when not NULL, gets [{name, file, ok}]. */
json_t *im_template_validate(const im_template_set *set, const char *platform,
			     json_t **checked);

/* The context a template sees for one incident event (a CloudEvent from
 * core/incident/repo.h): {"incident", "event" (the envelope without data),
 * "change", "actor", "verb", "verb_past", "public_url"}. The host adds
 * severity_emoji and severity_color from the platform's rules when
 * rendering. */
json_t *im_template_context(const json_t *event, const char *public_url);
/* The digest context: {"events": [context + "index" (1-based) + "last"],
 * "count", "channel", "public_url"} from an array of CloudEvents. */
json_t *im_template_digest_context(const json_t *events, const char *channel,
				   const char *public_url);
/* A sample context for `event` ("declare" .. "digest"): kind is "normal",
 * "long", "unicode" or "hostile". NULL for an unknown kind. */
json_t *im_template_sample(const char *event, const char *kind,
			   const char *public_url);

/* The default templates folder (see above); IM_ENOTFOUND when none. */
int im_template_default_dir(char *buf, size_t len);

#endif
