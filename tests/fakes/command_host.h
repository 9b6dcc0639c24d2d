/*
 * tests/fakes/command_host - a fake im_host for command components, as
 * the design asks ("tests pass a fake im_host"). incident_op runs the real
 * repository on a temporary SQLite file and records every call; replies
 * use the host's own reply builder, so tests see the JSON connectors get;
 * the key-value store is a small in-memory map.
 *
 * The test links the plugin's sources and calls its im_plugin_entry().
 * One instance per test process (criterion forks per test). The host
 * functions are thread-safe, so tests may invoke from many threads.
 */
#ifndef IM_TESTS_FAKE_COMMAND_HOST_H
#define IM_TESTS_FAKE_COMMAND_HOST_H

#include <stdbool.h>

#include <jansson.h>

#include <im/im.h>

/* Opens the store and creates the first command component's instance with
 * `config_json` as its config. */
void fake_cmd_start(const char *config_json);
void fake_cmd_stop(void);

/* Runs `verb` with `text` from user U1 ("Ada") on slack in `channel`.
 * Returns the reply JSON plus "rc" (the invoke result); caller decrefs. */
json_t *fake_cmd_run(const char *channel, const char *verb, const char *text);
/* Presses button `action` with `value` the way the host does: it runs the
 * verb the component maps the action to, with the value as the text. */
json_t *fake_cmd_press(const char *channel, const char *action,
		       const char *value);

/* Every later incident_op answers `answer` (borrowed; NULL: the real
 * repository again) and returns `rc`. */
void fake_cmd_canned(const json_t *answer, int rc);

/* incident_op calls so far: [{"op":..,"args":..}] (borrowed). */
const json_t *fake_cmd_calls(void);
/* The args of the last call; NULL when there was none. */
const json_t *fake_cmd_last_args(void);
/* A kv value (borrowed) or NULL. */
const char *fake_cmd_kv(const char *key);

/* Reply accessors. */
const char *fake_reply_text(const json_t *r);
const char *fake_reply_visibility(const json_t *r);
json_int_t fake_reply_rc(const json_t *r);
/* A field's value, or "(none)". */
const char *fake_reply_field(const json_t *r, const char *title);
/* Whether the reply has button `id` with `value`. */
bool fake_reply_has_action(const json_t *r, const char *id,
			   const char *value);
size_t fake_reply_n_actions(const json_t *r);

/* The stored incident's string member `key` (malloc'd) or NULL. */
char *fake_stored(const char *id, const char *key);

#endif
