/* Deferred answers: a handler returns at once and the answer follows from
 * another thread (chat commands answer within their budget while the
 * command runs on a worker). The connection is suspended meanwhile, so no
 * worker thread waits and nothing polls.
 *
 * Two owners share a deferred: the server side (the request, until it
 * ends) and the completer (until it has called complete). `mu` orders
 * complete() against suspend/resume so a completion that races the
 * handler's return is never lost.
 *
 * Half-closed clients. A client may shut down its sending side once the
 * request is out (some proxies and HTTP clients do) and still read.
 * libmicrohttpd 0.9 takes that end-of-input for an aborted request when
 * it resumes the connection, and may close it before the answer is
 * written. So a deferred request keeps its own descriptor of the socket
 * (a dup) and the count of bytes the socket had sent when it was
 * suspended: when the request ends as aborted with an answer at hand and
 * not one byte more went out, the answer is written on that descriptor
 * (with Connection: close), so every client that still reads gets it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf/buf.h"
#include "clock/clock.h"
#include "http/internal.h"
#include "log/log.h"

struct im_http_deferred {
	pthread_mutex_t mu;
	im_deferred_reg *reg;
	struct im_http_deferred *next, *prev; /* in reg, while suspended */
	struct MHD_Connection *conn;
	int refs;
	bool suspended, completed, taken, gone;
	bool rescue;            /* ended aborted before its answer existed */
	pthread_cond_t done;    /* complete() for im_deferred_wait */
	int fd;                 /* dup of the socket, or -1 */
	unsigned long long sent0; /* tcpi_bytes_sent when suspended */
	im_http_response final;
};

static bool bytes_sent(int fd, unsigned long long *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_sent) +
		      sizeof(ti.tcpi_bytes_sent))
		return false;
	*out = ti.tcpi_bytes_sent;
	return true;
}

/* Writes the answer as HTTP/1.1 on d->fd and closes it (d->mu held). */
static void write_raw(im_http_deferred *d)
{
	const im_http_response *r = &d->final;
	im_buf b = IM_BUF_INIT;
	const char *reason = MHD_get_reason_phrase_for((unsigned)r->status);
	im_buf_printf(&b, "HTTP/1.1 %d %s\r\n", r->status,
		      reason && *reason ? reason : "Status");
	if (r->content_type)
		im_buf_printf(&b, "Content-Type: %s\r\n", r->content_type);
	for (im_http_hdr_node *h = r->headers; h; h = h->next)
		im_buf_printf(&b, "%s: %s\r\n", h->name, h->value);
	im_buf_printf(&b, "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		      r->body_len);
	im_buf_put(&b, r->body ? r->body : "", r->body_len);
	struct timeval tv = {.tv_sec = 2};
	setsockopt(d->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	size_t off = 0;
	while (!b.oom && off < b.len) {
		ssize_t w = send(d->fd, b.p + off, b.len - off, MSG_NOSIGNAL);
		if (w <= 0 && errno != EINTR)
			break;
		if (w > 0)
			off += (size_t)w;
	}
	LOG_DEBUG("http", "answer to a half-closed client written directly "
			  "(%zu of %zu bytes)",
		  off, b.len);
	im_buf_free(&b);
	shutdown(d->fd, SHUT_RDWR);
	close(d->fd);
	d->fd = -1;
}

void im_deferred_reg_init(im_deferred_reg *reg)
{
	pthread_mutex_init(&reg->mu, NULL);
	reg->head = NULL;
	reg->stopping = false;
}

void im_deferred_reg_destroy(im_deferred_reg *reg)
{
	pthread_mutex_destroy(&reg->mu);
}

im_http_deferred *im_resp_defer(im_http_response *resp)
{
	if (!resp || resp->deferred)
		return resp ? resp->deferred : NULL;
	im_http_deferred *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->done, NULL);
	d->refs = 2;
	d->fd = -1;
	resp->deferred = d;
	resp->status = 202; /* placeholder: the handler answered "later" */
	return d;
}

static void unref(im_http_deferred *d)
{
	pthread_mutex_lock(&d->mu);
	int left = --d->refs;
	pthread_mutex_unlock(&d->mu);
	if (left > 0)
		return;
	if (d->fd >= 0)
		close(d->fd);
	im_http_response_clear(&d->final);
	pthread_cond_destroy(&d->done);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static void reg_remove(im_deferred_reg *reg, im_http_deferred *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else if (reg->head == d)
		reg->head = d->next;
	if (d->next)
		d->next->prev = d->prev;
	d->next = d->prev = NULL;
}

int im_deferred_complete(im_http_deferred *d, int status, const char *ctype,
			 const void *body, size_t len,
			 const char *const *headers)
{
	if (!d)
		return IM_EINVAL;
	im_http_response r = {0};
	int rc = im_resp_set(&r, status, ctype, body, len);
	for (const char *const *h = headers; rc == 0 && h && h[0] && h[1];
	     h += 2)
		rc = im_resp_header(&r, h[0], h[1]);
	pthread_mutex_lock(&d->mu);
	if (d->completed) {
		/* Answered already (the server stopped): drop our share. */
		pthread_mutex_unlock(&d->mu);
		im_http_response_clear(&r);
		unref(d);
		return IM_ECONFLICT;
	}
	d->completed = true;
	d->final = r;
	if (rc != 0) /* answer something rather than nothing */
		im_resp_set(&d->final, 500, "text/plain", "out of memory", 13);
	if (d->rescue && d->fd >= 0)
		write_raw(d);
	pthread_cond_broadcast(&d->done);
	if (d->suspended && !d->gone) {
		im_deferred_reg *reg = d->reg;
		pthread_mutex_lock(&reg->mu);
		reg_remove(reg, d);
		pthread_mutex_unlock(&reg->mu);
		d->suspended = false;
		MHD_resume_connection(d->conn);
	}
	pthread_mutex_unlock(&d->mu);
	unref(d);
	return 0;
}

int im_deferred_begin(im_deferred_reg *reg, im_http_deferred *d,
		      struct MHD_Connection *conn)
{
	pthread_mutex_lock(&d->mu);
	d->conn = conn;
	d->reg = reg;
	bool ready = d->completed;
	if (!ready) {
		pthread_mutex_lock(&reg->mu);
		if (reg->stopping) {
			pthread_mutex_unlock(&reg->mu);
			pthread_mutex_unlock(&d->mu);
			return -1;
		}
		d->next = reg->head;
		if (reg->head)
			reg->head->prev = d;
		reg->head = d;
		pthread_mutex_unlock(&reg->mu);
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		    conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && d->fd < 0 && bytes_sent(ci->connect_fd, &d->sent0))
			d->fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0);
		d->suspended = true;
		MHD_suspend_connection(conn);
	}
	pthread_mutex_unlock(&d->mu);
	return ready ? 1 : 0;
}

int im_deferred_wait(im_http_deferred *d, long ms, im_http_response *out)
{
	struct timespec end;
	clock_gettime(CLOCK_REALTIME, &end);
	end = im_ts_plus(end, (long long)ms * 1000000LL);
	pthread_mutex_lock(&d->mu);
	while (!d->completed &&
	       pthread_cond_timedwait(&d->done, &d->mu, &end) != ETIMEDOUT)
		;
	int rc = IM_ETIMEDOUT;
	if (d->completed && !d->taken) {
		d->taken = true;
		*out = d->final;
		memset(&d->final, 0, sizeof(d->final));
		rc = 0;
	} else {
		d->completed = true; /* a late complete() is refused */
	}
	pthread_mutex_unlock(&d->mu);
	im_deferred_end(d, true);
	return rc;
}

void im_deferred_add_completer(im_http_deferred *d)
{
	pthread_mutex_lock(&d->mu);
	d->refs++;
	pthread_mutex_unlock(&d->mu);
}

im_http_response *im_deferred_take(im_http_deferred *d)
{
	pthread_mutex_lock(&d->mu);
	im_http_response *r = d->completed && !d->taken ? &d->final : NULL;
	if (r)
		d->taken = true;
	pthread_mutex_unlock(&d->mu);
	return r;
}

void im_deferred_end(im_http_deferred *d, bool ok)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->gone = true;
	unsigned long long now;
	if (!ok && d->fd >= 0 && bytes_sent(d->fd, &now) && now == d->sent0) {
		/* Aborted with nothing of the answer sent: the client may
		 * only have closed its sending side. */
		if (d->completed)
			write_raw(d);
		else
			d->rescue = true;
	}
	if (d->fd >= 0 && !d->rescue) {
		close(d->fd);
		d->fd = -1;
	}
	if (d->suspended && d->reg) {
		pthread_mutex_lock(&d->reg->mu);
		reg_remove(d->reg, d);
		pthread_mutex_unlock(&d->reg->mu);
		d->suspended = false;
	}
	pthread_mutex_unlock(&d->mu);
	unref(d);
}

void im_deferred_reg_stop(im_deferred_reg *reg)
{
	pthread_mutex_lock(&reg->mu);
	reg->stopping = true;
	im_http_deferred *list = reg->head;
	reg->head = NULL;
	for (im_http_deferred *d = list; d; d = d->next)
		d->refs++; /* keep it while we answer below */
	pthread_mutex_unlock(&reg->mu);
	/* Answer what is still waiting so MHD can stop: it refuses to with
	 * a suspended connection. */
	for (im_http_deferred *d = list, *next; d; d = next) {
		next = d->next;
		pthread_mutex_lock(&d->mu);
		d->next = d->prev = NULL;
		if (!d->completed) {
			/* The completer still calls complete() later; it is
			 * refused then and drops its share. */
			d->completed = true;
			im_resp_error(&d->final, 503, "stopping",
				      "the server is stopping");
		}
		if (d->suspended && !d->gone) {
			d->suspended = false;
			MHD_resume_connection(d->conn);
		}
		pthread_mutex_unlock(&d->mu);
		unref(d);
	}
}
