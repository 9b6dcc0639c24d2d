/* The in-process bus: ring, cursors, waiters, globs. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <criterion/criterion.h>

#include <im/types.h>

#include "bus/bus.h"

static void setup(void)
{
	im_bus_reset();
	im_bus_configure(8);
}

static void teardown(void)
{
	im_bus_reset();
}

TestSuite(bus, .init = setup, .fini = teardown);

static void publish(long long seq)
{
	char subject[32];
	snprintf(subject, sizeof(subject), "INC-%lld", seq);
	json_t *ev = json_pack("{s:I}", "sequence", (json_int_t)seq);
	im_bus_publish(seq, "im.incident.note", subject, ev);
	json_decref(ev);
}

Test(bus, reads_events_after_a_cursor_in_order)
{
	for (int i = 1; i <= 5; i++)
		publish(i);
	im_bus_event *evs[10];
	int n = im_bus_read(2, evs, 10);
	cr_assert_eq(n, 3);
	for (int i = 0; i < n; i++) {
		cr_expect_eq(evs[i]->seq, 3 + i);
		cr_expect(strstr(evs[i]->json, "\"sequence\""));
		im_bus_event_unref(evs[i]);
	}
	cr_expect_eq(im_bus_read(5, evs, 10), 0);
	cr_expect_eq(im_bus_last_seq(), 5);
}

Test(bus, tells_a_reader_that_fell_behind_the_ring)
{
	for (int i = 1; i <= 20; i++)
		publish(i);
	im_bus_event *evs[10];
	cr_expect_eq(im_bus_read(3, evs, 10), IM_EAGAIN);
	cr_expect_eq(im_bus_first_seq(), 13);
	int n = im_bus_read(12, evs, 10);
	cr_expect_eq(n, 8);
	for (int i = 0; i < n; i++)
		im_bus_event_unref(evs[i]);
}

Test(bus, keeps_an_event_alive_while_a_reader_holds_it)
{
	publish(1);
	im_bus_event *ev;
	cr_assert_eq(im_bus_read(0, &ev, 1), 1);
	for (int i = 2; i <= 20; i++)
		publish(i); /* evicts seq 1 from the ring */
	cr_expect_eq(ev->seq, 1);
	cr_expect(strstr(ev->json, "\"sequence\":1"));
	im_bus_event_unref(ev);
}

static void count_wake(void *ud)
{
	atomic_fetch_add((atomic_int *)ud, 1);
}

Test(bus, wakes_watchers_on_every_publish_until_removed)
{
	atomic_int n = 0;
	im_bus_watch *w = im_bus_watch_add(count_wake, &n);
	publish(1);
	publish(2);
	cr_expect_eq(atomic_load(&n), 2);
	im_bus_watch_remove(w);
	publish(3);
	cr_expect_eq(atomic_load(&n), 2);
}

static void *publish_on_another_thread(void *arg)
{
	publish(5);
	(void)arg;
	return NULL;
}

Test(bus, holds_a_threads_wake_ups_until_released_then_wakes_once)
{
	atomic_int n = 0;
	im_bus_watch *w = im_bus_watch_add(count_wake, &n);
	im_bus_hold();
	im_bus_hold(); /* nested */
	publish(1);
	publish(2);
	im_bus_release();
	publish(3);
	cr_expect_eq(atomic_load(&n), 0, "woken while held");
	/* Readers see the events at once; only the wake-up waits. */
	cr_expect_eq(im_bus_last_seq(), 3);
	/* Another thread's publish is not held. */
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, publish_on_another_thread, NULL),
		     0);
	pthread_join(th, NULL);
	cr_expect_eq(atomic_load(&n), 1);
	im_bus_release();
	cr_expect_eq(atomic_load(&n), 2, "one wake for the held publishes");
	im_bus_hold();
	im_bus_release(); /* nothing published: no wake */
	im_bus_release(); /* unbalanced: ignored */
	cr_expect_eq(atomic_load(&n), 2);
	publish(6);
	cr_expect_eq(atomic_load(&n), 3);
	im_bus_watch_remove(w);
}

Test(bus, starts_after_the_stored_timeline)
{
	im_bus_set_start(41);
	cr_expect_eq(im_bus_last_seq(), 41);
	im_bus_event *evs[4];
	cr_expect_eq(im_bus_read(41, evs, 4), 0);
	publish(42);
	cr_expect_eq(im_bus_read(41, evs, 4), 1);
	im_bus_event_unref(evs[0]);
	cr_expect_eq(im_bus_read(30, evs, 4), IM_EAGAIN,
		     "older events must be replayed from the store");
}

Test(bus, matches_type_globs)
{
	cr_expect(im_bus_glob("im.incident.*", "im.incident.declare"));
	cr_expect(im_bus_glob("*", "anything"));
	cr_expect(im_bus_glob("im.*.resolve", "im.incident.resolve"));
	cr_expect(im_bus_glob("im.incident.declare", "im.incident.declare"));
	cr_expect_not(im_bus_glob("im.incident.*", "im.other.declare"));
	cr_expect_not(im_bus_glob("im.incident.note", "im.incident.notes"));
	cr_expect_not(im_bus_glob("*.x", "a.y"));
}

static void *publisher(void *ud)
{
	for (int i = 1; i <= 5000; i++)
		publish(i);
	return NULL;
}

Test(bus, serves_a_reader_while_another_thread_publishes)
{
	im_bus_configure(8192);
	pthread_t th;
	pthread_create(&th, NULL, publisher, NULL);
	long long cursor = 0;
	im_bus_event *evs[64];
	/* Bounded: the publisher finishes, and each loop makes progress or
	 * waits for it. */
	for (int spins = 0; cursor < 5000 && spins < 10000000; spins++) {
		int n = im_bus_read(cursor, evs, 64);
		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			cr_assert_eq(evs[i]->seq, cursor + 1, "no gap, no dup");
			cursor = evs[i]->seq;
			im_bus_event_unref(evs[i]);
		}
	}
	pthread_join(th, NULL);
	cr_expect_eq(cursor, 5000);
	im_bus_stats st;
	im_bus_stats_get(&st);
	cr_expect_eq(st.published, 5000);
}
