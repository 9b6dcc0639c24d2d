/* `im chatops templates list|validate|render` on real config folders: the
 * built im finds the repository's default templates and mustache.so next
 * to itself; overrides go in <config>/templates/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

static srv s;
static char *out, *err;

static void setup(void)
{
	srv_init(&s);
	srv_conf(&s, "10-plugins.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: mustache, module: mustache}\n"
		 /* The platform rules: the connectors declare them. */
		 "    - {id: slack, module: slack}\n"
		 "    - {id: teams, module: teams}\n"
		 "    - {id: discord, module: discord}\n");
	out = err = NULL;
}

static void teardown(void)
{
	free(out);
	free(err);
	srv_cleanup(&s);
}

TestSuite(templates_cli, .init = setup, .fini = teardown, .timeout = 90);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static int run(const char *const *args)
{
	free(out);
	free(err);
	return cli(&s, &out, &err, args);
}

/* Writes <config>/templates/<platform>/<file>. */
static void override(const char *platform, const char *file,
		     const char *text)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/templates", s.conf);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/templates/%s", s.conf, platform);
	mkdir(path, 0755);
	char name[200];
	snprintf(name, sizeof(name), "templates/%s/%s", platform, file);
	srv_conf(&s, name, "%s", text);
}

Test(templates_cli, validate_passes_on_the_defaults)
{
	cr_expect_eq(run(ARGS("chatops", "templates", "validate")), 0,
		     "%s%s", out, err);
	cr_expect(strstr(out, "OK slack/declare ("), "%s", out);
	cr_expect(strstr(out, "OK teams/digest ("), "%s", out);
	cr_expect(strstr(out, "OK discord/resolve ("), "%s", out);
	cr_expect(strstr(out, "36 templates checked, 0 problems"), "%s", out);
}

Test(templates_cli, validate_fails_on_a_broken_override_with_file_and_line)
{
	override("slack", "declare.mustache",
		 "{\n  \"text\": \"{{#incident.title}}x\"\n}\n");
	override("discord", "note.mustache",
		 "{\"content\": \"{{incident.id}}\",\n \"embeds\": []}\n");
	cr_expect_eq(run(ARGS("chatops", "templates", "validate")), 1,
		     "%s", out);
	char want[300];
	snprintf(want, sizeof(want),
		 "%s/templates/slack/declare.mustache:2:12: unclosed section "
		 "'incident.title'",
		 s.conf);
	cr_expect(strstr(out, want), "want %s in\n%s", want, out);
	snprintf(want, sizeof(want),
		 "%s/templates/discord/note.mustache:1: a Discord payload "
		 "must carry \"allowed_mentions\"",
		 s.conf);
	cr_expect(strstr(out, want), "want %s in\n%s", want, out);
	cr_expect(strstr(out, "OK teams/declare"), "%s", out);
	/* Only teams: the broken slack and discord files are not checked. */
	cr_expect_eq(run(ARGS("chatops", "templates", "validate", "--platform",
			      "teams")),
		     0, "%s", out);
	cr_expect(strstr(out, "12 templates checked, 0 problems"), "%s", out);
	cr_expect_eq(run(ARGS("chatops", "templates", "validate", "--json")), 1);
	json_t *j = json_loads(out, 0, NULL);
	cr_assert(j, "%s", out);
	cr_expect(json_is_false(json_object_get(j, "ok")));
	cr_expect_eq(json_array_size(json_object_get(j, "problems")), 2,
		     "%s", out);
	json_decref(j);
}

static const char *source_of(const json_t *list, const char *name)
{
	size_t i;
	json_t *t;
	json_array_foreach(list, i, t)
		if (!strcmp(json_string_value(json_object_get(t, "name")), name))
			return json_string_value(json_object_get(t, "source"));
	return NULL;
}

Test(templates_cli, list_shows_default_and_override)
{
	override("discord", "note.mustache",
		 "{\"content\": \"{{incident.id}}\", \"allowed_mentions\": "
		 "{\"parse\": []}}\n");
	cr_expect_eq(run(ARGS("chatops", "templates", "list")), 0, "%s", err);
	cr_expect(strstr(out, "NAME"), "%s", out);
	cr_expect(strstr(out, "ENGINE"), "%s", out);
	char want[300];
	snprintf(want, sizeof(want), "override  %s/templates/discord/note.mustache",
		 s.conf);
	cr_expect(strstr(out, want), "%s", out);
	cr_expect(strstr(out, "discord/declare        discord   declare      "
			      "mustache   default   /"),
		  "%s", out);
	cr_expect_eq(run(ARGS("chatops", "templates", "list", "--json")), 0);
	json_t *j = json_loads(out, 0, NULL);
	cr_assert(j, "%s", out);
	cr_expect_eq(json_array_size(j), 36);
	cr_expect_str_eq(source_of(j, "discord/note"), "override");
	cr_expect_str_eq(source_of(j, "discord/declare"), "default");
	json_decref(j);
}

Test(templates_cli, render_prints_the_payload_for_a_live_incident)
{
	cr_assert(srv_start(&s), "server did not start:\n%s", srv_log(&s));
	cr_assert_eq(run(ARGS("declare", "--title", "<!channel> db *down*",
			      "--sev", "SEV-1")),
		     0, "%s", err);
	cr_expect_eq(run(ARGS("chatops", "templates", "render", "slack/declare",
			      "--incident", "INC-1")),
		     0, "%s", err);
	json_t *j = json_loads(out, 0, NULL);
	cr_assert(j, "%s", out);
	const char *text = json_string_value(json_object_get(j, "text"));
	cr_expect(text && strstr(text, "INC-1 declared: &lt;!channel&gt; db "
				       "*down*"),
		  "%s", out);
	cr_expect(strstr(out, "\n  \"blocks\": ["), "pretty JSON: %s", out);
	json_decref(j);
	cr_expect_eq(run(ARGS("chatops", "templates", "render",
			      "discord/declare", "--incident", "INC-404")),
		     1);
	srv_stop(&s);
}

Test(templates_cli, render_takes_a_data_file)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/ctx.json", s.dir);
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fputs("{\"id\":\"INC-5\",\"title\":\"cache @everyone\",\"severity\":"
	      "\"SEV-3\",\"status\":\"open\"}",
	      f);
	fclose(f);
	cr_expect_eq(run(ARGS("chatops", "templates", "render",
			      "discord/acknowledge", "--data", path)),
		     0, "%s", err);
	cr_expect(strstr(out, "\"custom_id\": \"im_ack:INC-5\""), "%s", out);
	cr_expect(strstr(out, "cache @\xe2\x80\x8b" "everyone"), "%s", out);
	cr_expect(strstr(out, "\"color\": 15844367"), "%s", out);
	cr_expect_eq(run(ARGS("chatops", "templates", "render", "nope")), 2);
}
