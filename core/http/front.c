/* The front acceptor: one thread owns the listening socket, accepts every
 * connection itself and hands it to a libmicrohttpd daemon with
 * MHD_add_connection. It peeks at the first bytes: a GET of a stream path
 * (the event streams: many long-lived, idle connections) goes to the
 * stream daemon, whose per-connection memory pool is small; everything
 * else, and whatever has not said enough within FRONT_WAIT_MS, goes to the
 * main daemon, whose pool has room for large headers (a stream request
 * that arrives late still works there, only with the larger pool).
 *
 * It also enforces the connection limit: a connection beyond it gets a
 * 503 with a JSON error and is closed, counted in
 * im_http_connections_refused_total. The connections handed to MHD are
 * counted in *live; server.c uncounts them on MHD's close notice. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock/clock.h"
#include "http/internal.h"
#include "log/log.h"
#include "metrics/metrics.h"

/* How long a new connection may take to show its request line before it
 * goes to the main daemon (whose guard then applies the deadlines). */
#define FRONT_WAIT_MS 200
/* Connections waiting here at most; beyond, the oldest is handed on. */
#define FRONT_MAX_PENDING IM_GUARD_PER_ADDRESS
/* Refused connections waiting for their request, to read it before the
 * 503 (closing with unread bytes would reset the connection and the
 * client might never see the answer); beyond, closed at once. */
#define FRONT_MAX_REFUSING 64
/* Bytes peeked: enough for "GET " and the longest stream path. */
#define FRONT_PEEK 128

typedef struct pend {
	struct pend *prev, *next;
	int fd;
	bool refuse, polled;
	long long at_ms;
	struct sockaddr_storage sa;
	socklen_t len;
} pend;

struct im_front {
	int lfd, ep, stopfd;
	pthread_t thread;
	im_mhd_slot *main;
	unsigned n_main, next_main;
	struct MHD_Daemon *streams;
	/* "GET <path>" of each stream path, made once; n_wants of them. */
	char (*wants)[FRONT_PEEK];
	size_t *want_len, n_wants;
	unsigned max_conns;
	char name[32];
	atomic_long *live; /* handed to MHD and not closed yet */
	/* front thread only */
	pend *head, *tail; /* oldest first */
	unsigned n_pending, n_refusing;
	bool accept_paused;
	long long resume_ms;
};

static void count_refused(const char *why)
{
	im_metrics_count("im_http_connections_refused_total",
			 "Connections refused: beyond the connection limit "
			 "(answered 503) or with no descriptor left",
			 "reason", why);
}

static void unlink_pend(im_front *f, pend *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		f->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		f->tail = p->prev;
	f->n_pending--;
	if (p->refuse)
		f->n_refusing--;
	if (p->polled)
		epoll_ctl(f->ep, EPOLL_CTL_DEL, p->fd, NULL);
}

static void drop(im_front *f, pend *p)
{
	unlink_pend(f, p);
	close(p->fd);
	free(p);
}

/* Reads what the client sent (so closing does not reset the connection),
 * answers 503 and closes. */
static void answer_refused(im_front *f, pend *p)
{
	static const char body[] =
	    "{\"error\":{\"code\":\"too_many_connections\",\"message\":"
	    "\"the server has as many connections as it may hold; retry "
	    "later\"}}";
	char buf[4096];
	for (int i = 0; i < 4 && recv(p->fd, buf, sizeof(buf), 0) > 0; i++)
		;
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 503 Service Unavailable\r\n"
			 "Content-Type: application/json\r\n"
			 "Retry-After: 1\r\nConnection: close\r\n"
			 "Content-Length: %zu\r\n\r\n%s",
			 sizeof(body) - 1, body);
	ssize_t w = send(p->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w; /* best effort: the connection is closed either way */
	shutdown(p->fd, SHUT_WR);
	drop(f, p);
}

static void hand(im_front *f, pend *p, struct MHD_Daemon *to)
{
	unlink_pend(f, p);
	atomic_fetch_add(f->live, 1);
	/* MHD closes the socket itself when it cannot take it. */
	if (MHD_add_connection(to, p->fd, (struct sockaddr *)&p->sa,
			       p->len) != MHD_YES) {
		atomic_fetch_sub(f->live, 1);
		LOG_DEBUG(f->name, "libmicrohttpd did not take a connection");
	}
	free(p);
}

/* The main daemon with the fewest handlers running, taking turns. */
static struct MHD_Daemon *main_daemon(im_front *f)
{
	unsigned best = f->next_main % f->n_main;
	int low = atomic_load(&f->main[best].busy);
	for (unsigned i = 1; i < f->n_main && low > 0; i++) {
		unsigned k = (f->next_main + i) % f->n_main;
		int b = atomic_load(&f->main[k].busy);
		if (b < low)
			low = b, best = k;
	}
	f->next_main = best + 1;
	return f->main[best].mhd;
}

typedef enum { ROUTE_MORE, ROUTE_MAIN, ROUTE_STREAM } route;

/* Where a connection whose first `n` bytes are `b` belongs. */
static route classify(const im_front *f, const char *b, size_t n)
{
	route r = ROUTE_MAIN;
	for (size_t i = 0; i < f->n_wants; i++) {
		size_t l = f->want_len[i];
		if (n <= l) {
			if (!memcmp(b, f->wants[i], n))
				r = ROUTE_MORE;
		} else if (!memcmp(b, f->wants[i], l) &&
			   (b[l] == ' ' || b[l] == '?'))
			return ROUTE_STREAM;
	}
	return r;
}

/* The request-line prefixes of the stream paths; paths too long for a
 * peek are left out (they go to the main daemon). */
static bool make_wants(im_front *f, const char *const *paths)
{
	size_t n = 0;
	for (const char *const *pp = paths; pp && *pp; pp++)
		n++;
	f->wants = calloc(n ? n : 1, sizeof(*f->wants));
	f->want_len = calloc(n ? n : 1, sizeof(*f->want_len));
	if (!f->wants || !f->want_len)
		return false;
	for (const char *const *pp = paths; pp && *pp; pp++) {
		int wl = snprintf(f->wants[f->n_wants], FRONT_PEEK, "GET %s",
				  *pp);
		if (wl > 0 && (size_t)wl < FRONT_PEEK - 1)
			f->want_len[f->n_wants++] = (size_t)wl;
	}
	return true;
}

/* Decides where `p` goes if its bytes tell; false while they do not. */
static bool try_route(im_front *f, pend *p)
{
	char b[FRONT_PEEK];
	ssize_t n = recv(p->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return false;
	if (n <= 0) {
		drop(f, p); /* gone before it said anything */
		return true;
	}
	if (p->refuse) {
		answer_refused(f, p);
		return true;
	}
	route r = f->streams ? classify(f, b, (size_t)n) : ROUTE_MAIN;
	if (r == ROUTE_MORE && (size_t)n == sizeof(b))
		r = ROUTE_MAIN;
	if (r == ROUTE_MORE)
		return false;
	hand(f, p, r == ROUTE_STREAM ? f->streams : main_daemon(f));
	return true;
}

/* Its time here is up: on to the main daemon, or the 503. */
static void expire(im_front *f, pend *p)
{
	if (p->refuse)
		answer_refused(f, p);
	else
		hand(f, p, main_daemon(f));
}

static void take(im_front *f, int fd, const struct sockaddr_storage *sa,
		 socklen_t len)
{
	long live = atomic_load(f->live);
	bool refuse = (unsigned long)(live > 0 ? live : 0) + f->n_pending >=
		      f->max_conns;
	if (refuse) {
		count_refused("limit");
		if (f->n_refusing >= FRONT_MAX_REFUSING) {
			close(fd);
			return;
		}
	}
	pend *p = calloc(1, sizeof(*p));
	if (!p) {
		close(fd);
		return;
	}
	*p = (pend){.fd = fd, .refuse = refuse, .at_ms = im_mono_ms(),
		    .sa = *sa, .len = len, .prev = f->tail};
	if (f->tail)
		f->tail->next = p;
	else
		f->head = p;
	f->tail = p;
	f->n_pending++;
	f->n_refusing += refuse;
	if (try_route(f, p))
		return;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = p};
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		expire(f, p);
		return;
	}
	p->polled = true;
	if (f->n_pending > FRONT_MAX_PENDING)
		expire(f, f->head);
}

static void pause_accept(im_front *f)
{
	if (f->accept_paused)
		return;
	f->accept_paused = true;
	f->resume_ms = im_mono_ms() + 100;
	epoll_ctl(f->ep, EPOLL_CTL_DEL, f->lfd, NULL);
}

static void accept_some(im_front *f)
{
	for (int i = 0; i < 256; i++) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int fd = accept4(f->lfd, (struct sockaddr *)&sa, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			take(f, fd, &sa, len);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* No descriptor for it: it waits in the backlog. */
			count_refused("descriptors");
			LOG_WARN(f->name,
				 "no file descriptor for a new connection (%s): "
				 "not accepting for 100 ms; raise the "
				 "descriptor limit or lower "
				 "server.max_connections",
				 strerror(errno));
			pause_accept(f);
		}
		return;
	}
}

static void *run(void *arg)
{
	im_front *f = arg;
	struct epoll_event evs[64];
	for (;;) {
		long long now = im_mono_ms();
		int timeout = -1;
		if (f->head) {
			long long due = f->head->at_ms + FRONT_WAIT_MS - now;
			timeout = due < 0 ? 0 : (int)due;
		}
		if (f->accept_paused) {
			long long due = f->resume_ms - now;
			if (due < 0)
				due = 0;
			if (timeout < 0 || due < timeout)
				timeout = (int)due;
		}
		int n = epoll_wait(f->ep, evs, 64, timeout);
		bool incoming = false;
		/* Accepting may hand on (free) waiting connections: only once
		 * this batch's events, which point at them, are done. */
		for (int i = 0; i < n; i++) {
			void *ptr = evs[i].data.ptr;
			if (ptr == &f->stopfd)
				return NULL;
			if (ptr == &f->lfd)
				incoming = true;
			else
				try_route(f, ptr);
		}
		if (incoming)
			accept_some(f);
		now = im_mono_ms();
		while (f->head && now - f->head->at_ms >= FRONT_WAIT_MS)
			expire(f, f->head);
		if (f->accept_paused && now >= f->resume_ms) {
			struct epoll_event ev = {.events = EPOLLIN,
						 .data.ptr = &f->lfd};
			if (epoll_ctl(f->ep, EPOLL_CTL_ADD, f->lfd, &ev) == 0)
				f->accept_paused = false;
			else
				f->resume_ms = now + 100;
		}
	}
}

int im_front_listen(const struct sockaddr_storage *ss, unsigned backlog)
{
	socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK |
					   SOCK_CLOEXEC, 0);
	int on = 1;
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    (ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) ||
	    bind(fd, (const struct sockaddr *)ss, len) != 0 ||
	    listen(fd, (int)backlog) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

im_front *im_front_start(const im_front_opts *o)
{
	im_front *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->lfd = o->listen_fd;
	f->main = o->main;
	f->n_main = o->n_main;
	f->streams = o->streams;
	f->max_conns = o->max_conns;
	f->live = o->live;
	snprintf(f->name, sizeof(f->name), "%s", o->name ? o->name : "http");
	f->ep = epoll_create1(EPOLL_CLOEXEC);
	f->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	bool wants = make_wants(f, o->stream_paths);
	struct epoll_event el = {.events = EPOLLIN, .data.ptr = &f->lfd},
			   es = {.events = EPOLLIN, .data.ptr = &f->stopfd};
	if (!wants || f->ep < 0 || f->stopfd < 0 ||
	    epoll_ctl(f->ep, EPOLL_CTL_ADD, f->lfd, &el) != 0 ||
	    epoll_ctl(f->ep, EPOLL_CTL_ADD, f->stopfd, &es) != 0 ||
	    pthread_create(&f->thread, NULL, run, f) != 0) {
		if (f->ep >= 0)
			close(f->ep);
		if (f->stopfd >= 0)
			close(f->stopfd);
		free(f->wants);
		free(f->want_len);
		free(f);
		return NULL;
	}
	return f;
}

void im_front_stop(im_front *f)
{
	if (!f)
		return;
	uint64_t one = 1;
	ssize_t w = write(f->stopfd, &one, sizeof(one));
	(void)w; /* an eventfd write only fails on overflow */
	pthread_join(f->thread, NULL);
	while (f->head)
		drop(f, f->head);
	close(f->stopfd);
	close(f->ep);
	close(f->lfd);
	free(f->wants);
	free(f->want_len);
	free(f);
}
