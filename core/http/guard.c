/* The connection guard: deadlines and per-address limits for requests
 * still arriving, so clients that trickle bytes cannot hold the server's
 * connections (see internal.h). libmicrohttpd's own timeout is an idle
 * timeout, which a byte every few seconds never trips.
 *
 * Every connection has an entry (its MHD socket context) on one list,
 * under one mutex. A reaper thread looks twice a second and shuts down
 * (shutdown(2), so libmicrohttpd sees the socket end and cleans up) the
 * connections past their deadline. Before a shutdown the peer address is
 * compared, so a descriptor number reused by a new connection is never
 * cut by mistake. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock/clock.h"
#include "http/internal.h"
#include "log/log.h"
#include "metrics/metrics.h"

struct guard_conn {
	struct guard_conn *prev, *next;
	int fd;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	long long deadline_ms; /* 0: none (a request is being answered) */
	bool receiving;        /* between requests or in one not yet read */
	bool first;            /* no request finished on it yet */
};

static bool same_addr(const struct sockaddr_storage *a,
		      const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr,
			       sizeof(struct in6_addr));
	return false;
}

static void count_cut(const char *why)
{
	im_metrics_count(
	    "im_http_connections_cut_total",
	    "Connections closed by the guard: a request past its deadline, "
	    "or too many unfinished requests from one address or in all",
	    "reason", why);
}

/* Shuts the connection down if its descriptor still belongs to it. */
static void cut(im_guard *g, struct guard_conn *e, const char *why)
{
	struct sockaddr_storage now;
	socklen_t len = sizeof(now);
	e->deadline_ms = 0;
	e->receiving = false; /* counted once */
	g->n_receiving--;
	if (getpeername(e->fd, (struct sockaddr *)&now, &len) != 0 ||
	    len != e->peer_len || memcmp(&now, &e->peer, len) != 0)
		return;
	shutdown(e->fd, SHUT_RDWR);
	g->cut++;
	count_cut(why);
	char ip[INET6_ADDRSTRLEN] = "?";
	if (e->peer.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&e->peer)->sin_addr,
			  ip, sizeof(ip));
	else if (e->peer.ss_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((struct sockaddr_in6 *)&e->peer)->sin6_addr, ip,
			  sizeof(ip));
	LOG_DEBUG(g->name, "%s: connection closed (%s)", ip, why);
}

static void *reaper(void *arg)
{
	im_guard *g = arg;
	pthread_mutex_lock(&g->mu);
	while (!g->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts = im_ts_plus(ts, 500 * 1000000LL);
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
		long long now = im_mono_ms();
		for (struct guard_conn *e = g->head; e; e = e->next)
			if (e->receiving && e->deadline_ms &&
			    now >= e->deadline_ms)
				cut(g, e, e->first ? "header_deadline"
						   : "request_deadline");
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int im_guard_start(im_guard *g, const char *name, unsigned header_ms,
		   unsigned request_s, unsigned max_conns)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->first_ms = header_ms ? header_ms : 10000;
	g->request_ms = (long long)(request_s ? request_s : 30) * 1000;
	/* A quarter of the connections stays free for requests that arrive
	 * whole (a health check, the admin API). */
	g->max_receiving = max_conns - max_conns / 4;
	if (pthread_create(&g->thread, NULL, reaper, g) != 0)
		return IM_EIO;
	g->running = true;
	return 0;
}

void im_guard_stop(im_guard *g)
{
	if (!g->running)
		return;
	pthread_mutex_lock(&g->mu);
	g->stopping = true;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	g->running = false;
}

/* The oldest connection still receiving (from `from`'s address when
 * given); the list is newest first. */
static struct guard_conn *oldest_receiving(im_guard *g,
					   const struct guard_conn *from,
					   unsigned *count)
{
	struct guard_conn *old = NULL;
	*count = 0;
	for (struct guard_conn *e = g->head; e; e = e->next)
		if (e->receiving && (!from || same_addr(&e->peer, &from->peer))) {
			old = e;
			(*count)++;
		}
	return old;
}

/* A GET whose request line and headers are all in already (the front
 * acceptor hands connections on once their first bytes are there, and a
 * burst of them reaches MHD before it reads any): nothing is trickling,
 * so it does not count as receiving. */
static bool whole_get(int fd)
{
	char b[1024];
	ssize_t n = recv(fd, b, sizeof(b) - 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 4 || memcmp(b, "GET ", 4) != 0)
		return false;
	b[n] = '\0';
	return strstr(b, "\r\n\r\n") != NULL;
}

void im_guard_notify(void *cls, struct MHD_Connection *conn, void **ctx,
		     enum MHD_ConnectionNotificationCode toe)
{
	im_guard *g = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		struct guard_conn *e = calloc(1, sizeof(*e));
		const union MHD_ConnectionInfo *fi = MHD_get_connection_info(
		    conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!e || !fi) {
			free(e);
			return;
		}
		e->fd = fi->connect_fd;
		e->peer_len = sizeof(e->peer);
		if (getpeername(e->fd, (struct sockaddr *)&e->peer,
				&e->peer_len) != 0)
			e->peer_len = 0;
		e->first = true;
		bool whole = whole_get(e->fd);
		e->receiving = !whole;
		pthread_mutex_lock(&g->mu);
		e->deadline_ms = whole ? 0 : im_mono_ms() + g->first_ms;
		e->next = g->head;
		if (g->head)
			g->head->prev = e;
		g->head = e;
		if (whole) {
			pthread_mutex_unlock(&g->mu);
			*ctx = e;
			return;
		}
		g->n_receiving++;
		unsigned n;
		struct guard_conn *old = oldest_receiving(g, e, &n);
		if (n > IM_GUARD_PER_ADDRESS && old != e)
			cut(g, old, "per_address");
		if (g->n_receiving > g->max_receiving &&
		    (old = oldest_receiving(g, NULL, &n)) && old != e)
			cut(g, old, "total");
		pthread_mutex_unlock(&g->mu);
		*ctx = e;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct guard_conn *e = *ctx;
		if (!e)
			return;
		pthread_mutex_lock(&g->mu);
		if (e->prev)
			e->prev->next = e->next;
		else
			g->head = e->next;
		if (e->next)
			e->next->prev = e->prev;
		if (e->receiving)
			g->n_receiving--;
		pthread_mutex_unlock(&g->mu);
		free(e);
		*ctx = NULL;
	}
}

static struct guard_conn *entry(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
	    conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

void im_guard_headers_done(im_guard *g, struct MHD_Connection *conn)
{
	struct guard_conn *e = entry(conn);
	if (!e)
		return;
	pthread_mutex_lock(&g->mu);
	/* The body has the rest of the request time. */
	if (e->receiving)
		e->deadline_ms = im_mono_ms() + g->request_ms;
	pthread_mutex_unlock(&g->mu);
}

void im_guard_request_done(im_guard *g, struct MHD_Connection *conn)
{
	struct guard_conn *e = entry(conn);
	if (!e)
		return;
	pthread_mutex_lock(&g->mu);
	if (e->receiving)
		g->n_receiving--;
	e->receiving = false;
	e->deadline_ms = 0;
	pthread_mutex_unlock(&g->mu);
}

void im_guard_next_request(im_guard *g, struct MHD_Connection *conn)
{
	struct guard_conn *e = entry(conn);
	if (!e)
		return;
	pthread_mutex_lock(&g->mu);
	if (!e->receiving)
		g->n_receiving++;
	e->receiving = true;
	e->first = false;
	e->deadline_ms = im_mono_ms() + g->request_ms;
	pthread_mutex_unlock(&g->mu);
}
