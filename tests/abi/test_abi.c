/* Pins the size and field offsets of every public ABI struct (x86_64 /
 * LP64). A failure here means a change broke binary compatibility: structs
 * may only grow at their end, with an IM_ABI_MINOR bump; anything else
 * needs an IM_ABI_MAJOR bump and new pinned values. */
#include <stddef.h>

#include <criterion/criterion.h>

#include <im/im.h>

Test(abi, version_is_1_4)
{
	cr_expect_eq(IM_ABI_MAJOR, 1);
	cr_expect_eq(IM_ABI_MINOR, 6);
	cr_expect_eq(IM_PLUGIN_MAGIC, 0x31504d49u);
}

Test(abi, result_codes_keep_their_numbers)
{
	cr_expect_eq(IM_EINVAL, -1);
	cr_expect_eq(IM_EUNCONFIGURED, -8);
	cr_expect_eq(IM_EASYNC, -12);
	cr_expect_eq(IM_EUNSUPPORTED, -14);
	cr_expect_eq(IM_COMPONENT_CONNECTOR, 1);
	cr_expect_eq(IM_COMPONENT_FORMATTER, 2);
	cr_expect_eq(IM_COMPONENT_COMMAND, 3);
	cr_expect_eq(IM_STATE_UNCONFIGURED, 2);
}

static int fake_enabled(im_instance *in, im_log_level l)
{
	return 1;
}

static int fake_route_add(im_instance *in, const char *m, const char *p,
			  im_route_fn fn)
{
	return 0;
}

Test(abi, host_has_tests_table_size)
{
	/* A table from an older host ends before route_add. */
	im_host small = {.struct_size = offsetof(im_host, route_add)};
	small.log_enabled = fake_enabled;
	small.route_add = fake_route_add;
	cr_expect(IM_HOST_HAS(&small, log_enabled));
	cr_expect_not(IM_HOST_HAS(&small, route_add));
	cr_expect_not(IM_HOST_HAS((const im_host *)NULL, log));
}

Test(abi, descriptor_layout_is_pinned)
{
	cr_expect_eq(sizeof(im_plugin_desc), 88);
	cr_expect_eq(offsetof(im_plugin_desc, magic), 0);
	cr_expect_eq(offsetof(im_plugin_desc, abi_major), 4);
	cr_expect_eq(offsetof(im_plugin_desc, abi_minor), 6);
	cr_expect_eq(offsetof(im_plugin_desc, struct_size), 8);
	cr_expect_eq(offsetof(im_plugin_desc, name), 16);
	cr_expect_eq(offsetof(im_plugin_desc, version), 24);
	cr_expect_eq(offsetof(im_plugin_desc, description), 32);
	cr_expect_eq(offsetof(im_plugin_desc, vendor), 40);
	cr_expect_eq(offsetof(im_plugin_desc, license), 48);
	cr_expect_eq(offsetof(im_plugin_desc, components), 56);
	cr_expect_eq(offsetof(im_plugin_desc, config_keys), 64);
	cr_expect_eq(offsetof(im_plugin_desc, create), 72);
	cr_expect_eq(offsetof(im_plugin_desc, destroy), 80);
}

Test(abi, component_header_layout_is_pinned)
{
	cr_expect_eq(sizeof(im_component), 16);
	cr_expect_eq(offsetof(im_component, struct_size), 0);
	cr_expect_eq(offsetof(im_component, kind), 4);
	cr_expect_eq(offsetof(im_component, name), 8);
}

Test(abi, config_key_layout_is_pinned)
{
	cr_expect_eq(sizeof(im_config_key), 64);
	cr_expect_eq(offsetof(im_config_key, struct_size), 0);
	cr_expect_eq(offsetof(im_config_key, name), 8);
	cr_expect_eq(offsetof(im_config_key, type), 16);
	cr_expect_eq(offsetof(im_config_key, default_value), 24);
	cr_expect_eq(offsetof(im_config_key, flags), 32);
	cr_expect_eq(offsetof(im_config_key, description), 40);
	cr_expect_eq(offsetof(im_config_key, offset), 48);
	cr_expect_eq(offsetof(im_config_key, store), 56);
	cr_expect_eq(IM_STORE_STRING, 1);
	cr_expect_eq(IM_STORE_JSON, 6);
}

Test(abi, host_table_layout_is_pinned)
{
	cr_expect_eq(sizeof(im_host), 336);
	cr_expect_eq(offsetof(im_host, struct_size), 0);
	cr_expect_eq(offsetof(im_host, abi_major), 4);
	cr_expect_eq(offsetof(im_host, abi_minor), 6);
	cr_expect_eq(offsetof(im_host, log), 8);
	cr_expect_eq(offsetof(im_host, logv), 16);
	cr_expect_eq(offsetof(im_host, log_enabled), 24);
	cr_expect_eq(offsetof(im_host, instance_id), 32);
	cr_expect_eq(offsetof(im_host, config), 40);
	cr_expect_eq(offsetof(im_host, set_state), 48);
	cr_expect_eq(offsetof(im_host, set_connected), 56);
	cr_expect_eq(offsetof(im_host, route_add), 64);
	cr_expect_eq(offsetof(im_host, req_method), 72);
	cr_expect_eq(offsetof(im_host, req_path), 80);
	cr_expect_eq(offsetof(im_host, req_header), 88);
	cr_expect_eq(offsetof(im_host, req_query), 96);
	cr_expect_eq(offsetof(im_host, req_body), 104);
	cr_expect_eq(offsetof(im_host, resp_set), 112);
	cr_expect_eq(offsetof(im_host, resp_header), 120);
	cr_expect_eq(offsetof(im_host, http_send), 128);
	cr_expect_eq(offsetof(im_host, metric), 136);
	cr_expect_eq(offsetof(im_host, metric_add), 144);
	cr_expect_eq(offsetof(im_host, metric_set), 152);
	cr_expect_eq(offsetof(im_host, metric_observe), 160);
	cr_expect_eq(offsetof(im_host, resp_defer), 168);
	cr_expect_eq(offsetof(im_host, deferred_complete), 176);
	cr_expect_eq(offsetof(im_host, command_handle), 184);
	cr_expect_eq(offsetof(im_host, command_dispatch), 192);
	cr_expect_eq(offsetof(im_host, reply_text), 200);
	cr_expect_eq(offsetof(im_host, reply_visibility), 208);
	cr_expect_eq(offsetof(im_host, reply_field), 216);
	cr_expect_eq(offsetof(im_host, reply_action), 224);
	cr_expect_eq(offsetof(im_host, incident_op), 232);
	cr_expect_eq(offsetof(im_host, kv_get), 240);
	cr_expect_eq(offsetof(im_host, kv_put), 248);
	cr_expect_eq(offsetof(im_host, kv_del), 256);
	cr_expect_eq(offsetof(im_host, http_fetch), 264);
	cr_expect_eq(offsetof(im_host, http_result_free), 272);
	cr_expect_eq(offsetof(im_host, config_fill), 280);
	cr_expect_eq(offsetof(im_host, ws_open), 288);
	cr_expect_eq(offsetof(im_host, ws_send), 296);
	cr_expect_eq(offsetof(im_host, ws_close), 304);
	cr_expect_eq(offsetof(im_host, ws_release), 312);
	cr_expect_eq(offsetof(im_host, command_verbs), 320);
	cr_expect_eq(offsetof(im_host, incident_op_then), 328);
}

Test(abi, ws_call_layout_is_pinned)
{
	cr_expect_eq(sizeof(im_ws_call), 96);
	cr_expect_eq(offsetof(im_ws_call, struct_size), 0);
	cr_expect_eq(offsetof(im_ws_call, url), 8);
	cr_expect_eq(offsetof(im_ws_call, headers), 16);
	cr_expect_eq(offsetof(im_ws_call, n_headers), 24);
	cr_expect_eq(offsetof(im_ws_call, ca_file), 32);
	cr_expect_eq(offsetof(im_ws_call, connect_timeout_ms), 40);
	cr_expect_eq(offsetof(im_ws_call, ping_interval_ms), 44);
	cr_expect_eq(offsetof(im_ws_call, max_message), 48);
	cr_expect_eq(offsetof(im_ws_call, max_queue), 56);
	cr_expect_eq(offsetof(im_ws_call, on_open), 64);
	cr_expect_eq(offsetof(im_ws_call, on_message), 72);
	cr_expect_eq(offsetof(im_ws_call, on_close), 80);
	cr_expect_eq(offsetof(im_ws_call, userdata), 88);
}

Test(abi, http_call_layout_is_pinned)
{
	cr_expect_eq(sizeof(im_http_call), 64);
	cr_expect_eq(offsetof(im_http_call, struct_size), 0);
	cr_expect_eq(offsetof(im_http_call, method), 8);
	cr_expect_eq(offsetof(im_http_call, url), 16);
	cr_expect_eq(offsetof(im_http_call, headers), 24);
	cr_expect_eq(offsetof(im_http_call, n_headers), 32);
	cr_expect_eq(offsetof(im_http_call, body), 40);
	cr_expect_eq(offsetof(im_http_call, body_len), 48);
	cr_expect_eq(offsetof(im_http_call, timeout_ms), 56);
	cr_expect_eq(offsetof(im_http_call, connect_timeout_ms), 60);
}

Test(abi, http_result_layout_is_pinned)
{
	cr_expect_eq(sizeof(im_http_result), 64);
	cr_expect_eq(offsetof(im_http_result, struct_size), 0);
	cr_expect_eq(offsetof(im_http_result, error), 4);
	cr_expect_eq(offsetof(im_http_result, error_text), 8);
	cr_expect_eq(offsetof(im_http_result, status), 16);
	cr_expect_eq(offsetof(im_http_result, headers), 24);
	cr_expect_eq(offsetof(im_http_result, n_headers), 32);
	cr_expect_eq(offsetof(im_http_result, body), 40);
	cr_expect_eq(offsetof(im_http_result, body_len), 48);
	cr_expect_eq(offsetof(im_http_result, elapsed_s), 56);
	cr_expect_eq(sizeof(im_http_header), 24);
	cr_expect_eq(offsetof(im_http_header, struct_size), 0);
	cr_expect_eq(offsetof(im_http_header, name), 8);
	cr_expect_eq(offsetof(im_http_header, value), 16);
}

Test(abi, connector_layout_is_pinned)
{
	cr_expect_eq(sizeof(im_connector), 120);
	cr_expect_eq(offsetof(im_connector, rules), 96);
	cr_expect_eq(offsetof(im_connector, fit_payload), 104);
	cr_expect_eq(offsetof(im_connector, action), 112);
	cr_expect_eq(sizeof(im_platform_rules), 64);
	cr_expect_eq(offsetof(im_platform_rules, backslash), 8);
	cr_expect_eq(offsetof(im_platform_rules, replace), 16);
	cr_expect_eq(offsetof(im_platform_rules, defuse), 24);
	cr_expect_eq(offsetof(im_platform_rules, mentions), 32);
	cr_expect_eq(offsetof(im_platform_rules, severity_emoji), 40);
	cr_expect_eq(offsetof(im_platform_rules, severity_color), 48);
	cr_expect_eq(offsetof(im_platform_rules, secret_prefixes), 56);
	cr_expect_eq(sizeof(im_payload_ops), 40);
	cr_expect_eq(offsetof(im_payload_ops, validating), 4);
	cr_expect_eq(offsetof(im_payload_ops, length), 8);
	cr_expect_eq(offsetof(im_payload_ops, cut), 16);
	cr_expect_eq(offsetof(im_payload_ops, problem), 24);
	cr_expect_eq(offsetof(im_payload_ops, host_private), 32);
	cr_expect_eq(offsetof(im_connector, base), 0);
	cr_expect_eq(offsetof(im_connector, platform), 16);
	cr_expect_eq(offsetof(im_connector, start), 24);
	cr_expect_eq(offsetof(im_connector, stop), 32);
	cr_expect_eq(offsetof(im_connector, status), 40);
	cr_expect_eq(offsetof(im_connector, answer), 48);
	cr_expect_eq(offsetof(im_connector, followup), 56);
	cr_expect_eq(offsetof(im_connector, send), 64);
	cr_expect_eq(offsetof(im_connector, rate_per_channel), 72);
	cr_expect_eq(offsetof(im_connector, burst_per_channel), 80);
	cr_expect_eq(offsetof(im_connector, rate_global), 88);
	cr_expect_eq(sizeof(im_send), 64);
	cr_expect_eq(offsetof(im_send, channel), 8);
	cr_expect_eq(offsetof(im_send, payload), 16);
	cr_expect_eq(offsetof(im_send, message_id), 24);
	cr_expect_eq(offsetof(im_send, thread_id), 32);
	cr_expect_eq(offsetof(im_send, dedup_key), 40);
	cr_expect_eq(offsetof(im_send, event_type), 48);
	cr_expect_eq(offsetof(im_send, mode), 56);
	cr_expect_eq(sizeof(im_send_result), 672);
	cr_expect_eq(offsetof(im_send_result, flags), 664);
	cr_expect_eq(offsetof(im_send_result, verdict), 4);
	cr_expect_eq(offsetof(im_send_result, http_status), 8);
	cr_expect_eq(offsetof(im_send_result, retry_after_s), 16);
	cr_expect_eq(offsetof(im_send_result, message_id), 24);
	cr_expect_eq(offsetof(im_send_result, thread_id), 152);
	cr_expect_eq(offsetof(im_send_result, error), 280);
	cr_expect_eq(offsetof(im_send_result, hint), 408);
}

Test(abi, formatter_layout_is_pinned)
{
	cr_expect_eq(sizeof(im_formatter), 56);
	cr_expect_eq(offsetof(im_formatter, extensions), 16);
	cr_expect_eq(offsetof(im_formatter, compile), 24);
	cr_expect_eq(offsetof(im_formatter, render), 32);
	cr_expect_eq(offsetof(im_formatter, release), 40);
	cr_expect_eq(offsetof(im_formatter, compile_with), 48);
}

Test(abi, command_layouts_are_pinned)
{
	cr_expect_eq(sizeof(im_command), 40);
	cr_expect_eq(offsetof(im_command, verbs), 16);
	cr_expect_eq(offsetof(im_command, invoke), 24);
	cr_expect_eq(offsetof(im_command, actions), 32);
	cr_expect_eq(sizeof(im_command_verb), 40);
	cr_expect_eq(offsetof(im_command_verb, struct_size), 0);
	cr_expect_eq(offsetof(im_command_verb, name), 8);
	cr_expect_eq(offsetof(im_command_verb, usage), 16);
	cr_expect_eq(offsetof(im_command_verb, summary), 24);
	cr_expect_eq(offsetof(im_command_verb, flags), 32);
	cr_expect_eq(sizeof(im_command_action), 24);
	cr_expect_eq(offsetof(im_command_action, struct_size), 0);
	cr_expect_eq(offsetof(im_command_action, action_id), 8);
	cr_expect_eq(offsetof(im_command_action, verb), 16);
	cr_expect_eq(sizeof(im_invocation), 104);
	cr_expect_eq(offsetof(im_invocation, platform), 8);
	cr_expect_eq(offsetof(im_invocation, instance), 16);
	cr_expect_eq(offsetof(im_invocation, team), 24);
	cr_expect_eq(offsetof(im_invocation, channel), 32);
	cr_expect_eq(offsetof(im_invocation, user_id), 40);
	cr_expect_eq(offsetof(im_invocation, user_name), 48);
	cr_expect_eq(offsetof(im_invocation, command), 56);
	cr_expect_eq(offsetof(im_invocation, text), 64);
	cr_expect_eq(offsetof(im_invocation, action_id), 72);
	cr_expect_eq(offsetof(im_invocation, action_value), 80);
	cr_expect_eq(offsetof(im_invocation, response_ref), 88);
	cr_expect_eq(offsetof(im_invocation, user_groups), 96);
}
