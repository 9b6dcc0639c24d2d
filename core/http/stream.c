/* Stream answers over libmicrohttpd: a content-reader callback that asks
 * the handler's producer for bytes and, when there are none, suspends the
 * connection instead of returning 0 (which MHD would call again at once:
 * a busy loop). im_http_stream_wake resumes it.
 *
 * Locking: each stream has a mutex guarding its flags; the registry mutex
 * guards the list. Order: registry, then stream, then MHD's own locks
 * (MHD_suspend/resume_connection take the daemon's). closed() and the
 * producer run without any of our locks held. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/internal.h"
#include "log/log.h"

struct im_http_stream {
	pthread_mutex_t mu;
	im_http_stream_ops ops;
	void *ud;
	int status;
	im_stream_reg *reg;
	struct MHD_Connection *conn;
	int fd;
	bool suspended; /* MHD_suspend_connection done, no resume yet */
	bool wake;      /* woken while running: try once more */
	bool ending;    /* server stopping: end the answer */
	bool aborted;   /* im_http_stream_abort: close hard */
	bool closed;    /* the connection is gone; wake is a no-op */
	im_http_stream *prev, *next;
};

void im_stream_reg_init(im_stream_reg *reg)
{
	memset(reg, 0, sizeof(*reg));
	pthread_mutex_init(&reg->mu, NULL);
}

void im_stream_reg_destroy(im_stream_reg *reg)
{
	pthread_mutex_destroy(&reg->mu);
}

im_http_stream *im_resp_stream(im_http_response *resp, int status,
			       const char *ctype,
			       const im_http_stream_ops *ops, void *ud)
{
	if (!ops || !ops->produce || !ops->closed || resp->stream ||
	    resp->upgrade)
		return NULL;
	im_http_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	/* The body stays empty; the content type travels as usual. */
	if (im_resp_set(resp, status, ctype, "", 0) != 0) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->ops = *ops;
	s->ud = ud;
	s->status = status;
	s->fd = -1;
	resp->stream = s;
	return s;
}

static void unlink_stream(im_http_stream *s)
{
	im_stream_reg *reg = s->reg;
	if (!reg)
		return;
	pthread_mutex_lock(&reg->mu);
	if (s->prev)
		s->prev->next = s->next;
	else if (reg->head == s)
		reg->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&reg->mu);
}

/* The last word on a stream: mark it closed (so wake/abort from other
 * threads stop touching the connection), tell the owner, free. */
static void finish(im_http_stream *s)
{
	pthread_mutex_lock(&s->mu);
	s->closed = true;
	pthread_mutex_unlock(&s->mu);
	s->ops.closed(s->ud);
	unlink_stream(s);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void im_stream_discard(im_http_stream *s)
{
	if (s)
		finish(s);
}

/* MHD's free callback: runs when the response is destroyed, which MHD does
 * while closing the connection and before it closes the socket, so `fd`
 * is still ours up to here. */
static void on_free(void *cls)
{
	finish(cls);
}

/* Returns true when the connection was suspended (the caller returns 0),
 * false when a wake came in meanwhile (try the producer again). */
static bool park(im_http_stream *s, ssize_t *ret)
{
	bool parked = false;
	pthread_mutex_lock(&s->mu);
	if (s->aborted) {
		*ret = MHD_CONTENT_READER_END_WITH_ERROR;
		parked = true;
	} else if (s->ending) {
		*ret = MHD_CONTENT_READER_END_OF_STREAM;
		parked = true;
	} else if (!s->wake) {
		s->suspended = true;
		MHD_suspend_connection(s->conn);
		*ret = 0;
		parked = true;
	}
	s->wake = false;
	pthread_mutex_unlock(&s->mu);
	return parked;
}

static ssize_t on_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	im_http_stream *s = cls;
	pthread_mutex_lock(&s->mu);
	bool aborted = s->aborted, ending = s->ending;
	s->wake = false;
	pthread_mutex_unlock(&s->mu);
	if (aborted)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (ending)
		return MHD_CONTENT_READER_END_OF_STREAM;
	for (;;) {
		long n = s->ops.produce(s->ud, buf, max);
		if (n > 0)
			return n > (long)max ? (ssize_t)max : (ssize_t)n;
		if (n < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		ssize_t ret;
		if (park(s, &ret))
			return ret;
	}
}

void im_http_stream_wake(im_http_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (!s->closed) {
		if (s->suspended) {
			s->suspended = false;
			MHD_resume_connection(s->conn);
		} else {
			s->wake = true;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

void im_http_stream_abort(im_http_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (!s->closed && !s->aborted) {
		s->aborted = true;
		/* A client that does not read keeps the socket unwritable, so
		 * MHD would never call us again: shut the socket down so that
		 * MHD sees the error and closes the connection. */
		if (s->fd >= 0)
			shutdown(s->fd, SHUT_RDWR);
		if (s->suspended) {
			s->suspended = false;
			MHD_resume_connection(s->conn);
		}
	}
	pthread_mutex_unlock(&s->mu);
}

static void link_stream(im_stream_reg *reg, im_http_stream *s)
{
	pthread_mutex_lock(&reg->mu);
	s->reg = reg;
	s->ending = reg->stopping;
	s->next = reg->head;
	if (reg->head)
		reg->head->prev = s;
	reg->head = s;
	pthread_mutex_unlock(&reg->mu);
}

static void attach(im_http_stream *s, struct MHD_Connection *conn)
{
	s->conn = conn;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	s->fd = ci ? ci->connect_fd : -1;
	if (s->fd >= 0 && s->ops.sndbuf > 0 &&
	    setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &s->ops.sndbuf,
		       sizeof(s->ops.sndbuf)) != 0)
		LOG_DEBUG("http", "SO_SNDBUF not set on a stream socket");
	/* The request timeout stays: MHD does not run it while the stream
	 * is suspended (idle), only while bytes wait for a client that does
	 * not read them - which is when it should fire. */
}

enum MHD_Result im_stream_queue(im_stream_reg *reg,
				struct MHD_Connection *conn,
				im_http_response *resp)
{
	im_http_stream *s = resp->stream;
	resp->stream = NULL;
	struct MHD_Response *mr = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, 1024, on_read, s, on_free);
	if (!mr) {
		finish(s);
		return MHD_NO;
	}
	link_stream(reg, s);
	attach(s, conn);
	im_resp_add_headers(mr, resp);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)s->status,
						 mr);
	/* On failure this is the last reference: on_free runs finish(). */
	MHD_destroy_response(mr);
	return ret;
}

void im_stream_reg_stop(im_stream_reg *reg)
{
	pthread_mutex_lock(&reg->mu);
	reg->stopping = true;
	for (im_http_stream *s = reg->head; s; s = s->next) {
		pthread_mutex_lock(&s->mu);
		s->ending = true;
		if (s->suspended && !s->closed) {
			s->suspended = false;
			MHD_resume_connection(s->conn);
		}
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&reg->mu);
}
