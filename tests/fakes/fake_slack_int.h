/* Private to tests/fakes/fake_slack*.c: the shared state of the fake. */
#ifndef IM_TESTS_FAKE_SLACK_INT_H
#define IM_TESTS_FAKE_SLACK_INT_H

#include <pthread.h>

#include <microhttpd.h>

#include "fake_slack.h"

typedef struct fake_ws fake_ws;

struct fake_slack {
	struct MHD_Daemon *d;
	unsigned port;
	char api_url[64];
	pthread_mutex_t mu; /* guards everything below, and fake_ws */
	pthread_cond_t cv;  /* records, acks and hellos changed */
	json_t *records;
	json_t *channels; /* [{id,name,is_private,is_member,is_archived}] */
	json_t *messages;
	json_t *fails;    /* api -> {times,status,error,retry_after} */
	json_t *delays;   /* api -> ms */
	json_t *revoked;  /* token -> true */
	char scopes[1024];
	char team[64], team_id[32], bot_user[64], bot_user_id[32];
	char bot_token[128], app_token[128];
	unsigned page_cap;
	unsigned long ts_counter;
	fake_ws *ws;
};

/* fake_slack_ws.c */
int fws_start(fake_slack *f);
void fws_stop(fake_slack *f);
/* A one-time Socket Mode URL (call with f->mu held). */
void fws_issue_url(fake_slack *f, char *buf, size_t len);

/* The conversations.list answer for `params` (call with f->mu held);
 * fake_slack_list.c. */
json_t *fake_list_channels(fake_slack *f, const json_t *params, int *status);

#endif
