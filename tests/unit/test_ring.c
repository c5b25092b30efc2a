/* SPDX-License-Identifier: MIT */
/*
 * test_ring - the one-writer, many-reader sample ring.
 *
 * The concurrency test asserts only properties that must hold under any
 * interleaving (no torn sample, no going back in time, the last sample is
 * seen once the writer stops); how many reads happen depends on timing and
 * is only printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ring.h"

static void fill(uint64_t *v, uint32_t words, uint64_t x)
{
	for (uint32_t i = 0; i < words; i++)
		v[i] = x;
}

static void write_sample(struct ring *r, uint64_t x)
{
	fill(ring_begin_write(r), ring_words(r), x);
	ring_commit(r, x);
}

static void assert_latest(const struct ring *r, uint64_t x)
{
	uint64_t v[16], ts = 0;

	assert_true(ring_words(r) <= 16);
	assert_int_equal(ring_read_latest(r, v, &ts), 0);
	assert_int_equal(ts, x);
	for (uint32_t i = 0; i < ring_words(r); i++)
		assert_int_equal(v[i], x);
}

static void test_ring_needs_at_least_two_slots(void **state)
{
	struct ring *r = NULL;

	(void)state;
	assert_int_equal(ring_new(&r, 0, 4), -EINVAL);
	assert_int_equal(ring_new(&r, 1, 4), -EINVAL);
	assert_int_equal(ring_new(&r, 2, 4), 0);
	ring_free(r);
	ring_free(NULL);
}

static void test_empty_ring_has_no_data(void **state)
{
	struct ring *r = NULL;
	uint64_t v[4], ts;

	(void)state;
	assert_int_equal(ring_new(&r, 4, 4), 0);
	assert_int_equal(ring_words(r), 4);
	assert_int_equal(ring_count(r), 0);
	assert_int_equal(ring_read_latest(r, v, &ts), -ENODATA);
	ring_free(r);
}

static void test_committed_sample_is_read_back(void **state)
{
	struct ring *r = NULL;
	uint64_t *w, v[3] = { 0 }, ts = 0;

	(void)state;
	assert_int_equal(ring_new(&r, 4, 3), 0);
	w = ring_begin_write(r);
	w[0] = 1;
	w[1] = UINT64_MAX;
	w[2] = 42;
	ring_commit(r, 123456789);
	assert_int_equal(ring_count(r), 1);
	assert_int_equal(ring_read_latest(r, v, &ts), 0);
	assert_int_equal(ts, 123456789);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], UINT64_MAX);
	assert_int_equal(v[2], 42);
	ring_free(r);
}

static void test_uncommitted_write_is_invisible(void **state)
{
	struct ring *r = NULL;
	uint64_t v[2], ts;

	(void)state;
	assert_int_equal(ring_new(&r, 4, 2), 0);
	write_sample(r, 7);
	fill(ring_begin_write(r), 2, 8); /* in progress */
	assert_latest(r, 7);
	ring_commit(r, 8);
	assert_latest(r, 8);
	ring_free(r);
	assert_int_equal(ring_new(&r, 4, 2), 0);
	fill(ring_begin_write(r), 2, 1);
	assert_int_equal(ring_read_latest(r, v, &ts), -ENODATA);
	ring_free(r);
}

static void test_abort_keeps_the_previous_sample(void **state)
{
	struct ring *r = NULL;
	uint64_t v[2], ts;

	(void)state;
	assert_int_equal(ring_new(&r, 2, 2), 0);
	fill(ring_begin_write(r), 2, 99);
	ring_abort(r);
	assert_int_equal(ring_count(r), 0);
	assert_int_equal(ring_read_latest(r, v, &ts), -ENODATA);
	write_sample(r, 1);
	for (int i = 0; i < 5; i++) { /* repeated failed polls */
		fill(ring_begin_write(r), 2, 99);
		ring_abort(r);
		assert_latest(r, 1);
	}
	assert_int_equal(ring_count(r), 1);
	write_sample(r, 2); /* the aborted slot is reused cleanly */
	assert_latest(r, 2);
	write_sample(r, 3);
	assert_latest(r, 3);
	ring_free(r);
}

static void test_wraparound_always_returns_the_newest(void **state)
{
	static const uint32_t slot_counts[] = { 2, 3, 4, 7, 64 };

	(void)state;
	for (size_t k = 0; k < sizeof(slot_counts) / sizeof(slot_counts[0]); k++) {
		struct ring *r = NULL;

		assert_int_equal(ring_new(&r, slot_counts[k], 5), 0);
		for (uint64_t x = 1; x <= 1000; x++) {
			write_sample(r, x);
			assert_latest(r, x);
			if (x % 7 == 0) {
				fill(ring_begin_write(r), 5, 0xdead);
				ring_abort(r);
				assert_latest(r, x);
			}
		}
		assert_int_equal(ring_count(r), 1000);
		ring_free(r);
	}
}

static void test_zero_word_ring_still_counts_samples(void **state)
{
	struct ring *r = NULL;
	uint64_t ts = 0, dummy;

	(void)state;
	assert_int_equal(ring_new(&r, 2, 0), 0);
	ring_begin_write(r);
	ring_commit(r, 5);
	assert_int_equal(ring_read_latest(r, &dummy, &ts), 0);
	assert_int_equal(ts, 5);
	ring_free(r);
}

/* ---- one writer, many readers -------------------------------------------- */

#define N_READERS 3
#define WORDS 138 /* a real vCPU data block */
#define RUN_NS 300000000ull

struct shared {
	struct ring *r;
	atomic_bool stop;
	atomic_uint_fast64_t last_written;
};

struct reader {
	pthread_t thread;
	struct shared *sh;
	uint64_t reads, eagain, last;
	uint64_t torn, backwards, nodata_after_data;
	uint64_t torn_ts, torn_first, torn_last, back_from, back_to;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *writer_main(void *arg)
{
	struct shared *sh = arg;
	uint64_t end = now_ns() + RUN_NS;
	uint64_t x = 0;

	while ((x & 1023) || now_ns() < end) {
		x++;
		if (x % 5 == 0) { /* a failed poll now and then */
			fill(ring_begin_write(sh->r), WORDS, ~x);
			ring_abort(sh->r);
		}
		write_sample(sh->r, x);
		atomic_store(&sh->last_written, x);
	}
	atomic_store(&sh->stop, true);
	return NULL;
}

static void check_sample(struct reader *rd, const uint64_t *v, uint64_t ts)
{
	for (uint32_t i = 0; i < WORDS; i++)
		if (v[i] != ts) {
			if (!rd->torn++) {
				rd->torn_ts = ts;
				rd->torn_first = v[0];
				rd->torn_last = v[WORDS - 1];
			}
			break;
		}
	if (ts < rd->last) {
		if (!rd->backwards++) {
			rd->back_from = rd->last;
			rd->back_to = ts;
		}
	}
	rd->last = ts;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	uint64_t v[WORDS], ts;

	while (!atomic_load(&rd->sh->stop)) {
		int rc = ring_read_latest(rd->sh->r, v, &ts);

		if (rc == 0) {
			rd->reads++;
			check_sample(rd, v, ts);
		} else if (rc == -EAGAIN) {
			rd->eagain++;
		} else if (rc == -ENODATA && rd->reads) {
			rd->nodata_after_data++;
		}
	}
	return NULL;
}

static void run_readers_against_writer(uint32_t slots)
{
	struct shared sh = { 0 };
	struct reader rd[N_READERS];
	pthread_t writer;
	uint64_t v[WORDS], ts = 0;

	assert_int_equal(ring_new(&sh.r, slots, WORDS), 0);
	atomic_init(&sh.stop, false);
	atomic_init(&sh.last_written, 0);
	memset(rd, 0, sizeof(rd));
	for (int i = 0; i < N_READERS; i++) {
		rd[i].sh = &sh;
		assert_int_equal(pthread_create(&rd[i].thread, NULL, reader_main, &rd[i]), 0);
	}
	assert_int_equal(pthread_create(&writer, NULL, writer_main, &sh), 0);
	assert_int_equal(pthread_join(writer, NULL), 0);
	for (int i = 0; i < N_READERS; i++) {
		assert_int_equal(pthread_join(rd[i].thread, NULL), 0);
		print_message("slots %u reader %d: %llu reads, %llu EAGAIN, last %llu of %llu\n",
			      slots, i, (unsigned long long)rd[i].reads,
			      (unsigned long long)rd[i].eagain, (unsigned long long)rd[i].last,
			      (unsigned long long)atomic_load(&sh.last_written));
		if (rd[i].torn)
			fail_msg("reader %d: %llu inconsistent samples (first: timestamp %llu, "
				 "words %#llx .. %#llx)",
				 i, (unsigned long long)rd[i].torn,
				 (unsigned long long)rd[i].torn_ts,
				 (unsigned long long)rd[i].torn_first,
				 (unsigned long long)rd[i].torn_last);
		if (rd[i].backwards)
			fail_msg("reader %d: went back %llu times (first %llu -> %llu)", i,
				 (unsigned long long)rd[i].backwards,
				 (unsigned long long)rd[i].back_from,
				 (unsigned long long)rd[i].back_to);
		assert_int_equal(rd[i].nodata_after_data, 0);
	}
	/* quiescent: everybody sees the last sample */
	assert_int_equal(ring_read_latest(sh.r, v, &ts), 0);
	assert_int_equal(ts, atomic_load(&sh.last_written));
	for (uint32_t i = 0; i < WORDS; i++)
		assert_int_equal(v[i], ts);
	assert_int_equal(ring_count(sh.r), ts);
	ring_free(sh.r);
}

static void test_concurrent_readers_never_see_torn_or_older_samples(void **state)
{
	(void)state;
	run_readers_against_writer(4);
}

static void test_concurrent_readers_on_the_smallest_ring(void **state)
{
	(void)state;
	run_readers_against_writer(2);
}

static void put(struct ring *r, uint64_t v, uint64_t ts)
{
	uint64_t *slot = ring_begin_write(r);

	slot[0] = v;
	slot[1] = v * 10;
	slot[2] = v * 100;
	ring_commit(r, ts);
}

static void test_read_back_reaches_every_kept_sample_and_no_further(void **state)
{
	struct ring *r = NULL;
	uint64_t v[2], ts;

	(void)state;
	assert_int_equal(ring_new(&r, 4, 3), 0);
	assert_int_equal(ring_read_back(r, 0, 0, 1, v, &ts), -ENODATA);
	for (uint64_t i = 1; i <= 10; i++)
		put(r, i, i * 1000);
	/* 4 slots keep 3 samples: 10, 9, 8 */
	for (uint32_t back = 0; back < 3; back++) {
		assert_int_equal(ring_read_back(r, back, 1, 2, v, &ts), 0);
		assert_int_equal(ts, (10 - back) * 1000);
		assert_int_equal(v[0], (10 - back) * 10);
		assert_int_equal(v[1], (10 - back) * 100);
	}
	assert_int_equal(ring_read_back(r, 3, 0, 1, v, &ts), -ENODATA);
	assert_int_equal(ring_read_back(r, 1000, 0, 1, v, &ts), -ENODATA);
	assert_int_equal(ring_slots(r), 4);
	assert_true(ring_bytes(r) >= 4 * (8 + 8 + 3 * 8));
	ring_free(r);
}

static void test_read_back_of_a_young_ring_stops_at_its_first_sample(void **state)
{
	struct ring *r = NULL;
	uint64_t v, ts;

	(void)state;
	assert_int_equal(ring_new(&r, 64, 3), 0);
	put(r, 7, 70);
	put(r, 8, 80);
	assert_int_equal(ring_read_back(r, 1, 0, 1, &v, &ts), 0);
	assert_int_equal(v, 7);
	assert_int_equal(ts, 70);
	assert_int_equal(ring_read_back(r, 2, 0, 1, &v, &ts), -ENODATA);
	ring_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_needs_at_least_two_slots),
		cmocka_unit_test(test_empty_ring_has_no_data),
		cmocka_unit_test(test_committed_sample_is_read_back),
		cmocka_unit_test(test_uncommitted_write_is_invisible),
		cmocka_unit_test(test_abort_keeps_the_previous_sample),
		cmocka_unit_test(test_wraparound_always_returns_the_newest),
		cmocka_unit_test(test_zero_word_ring_still_counts_samples),
		cmocka_unit_test(test_concurrent_readers_never_see_torn_or_older_samples),
		cmocka_unit_test(test_concurrent_readers_on_the_smallest_ring),
		cmocka_unit_test(test_read_back_reaches_every_kept_sample_and_no_further),
		cmocka_unit_test(test_read_back_of_a_young_ring_stops_at_its_first_sample),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
