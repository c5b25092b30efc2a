/* SPDX-License-Identifier: MIT */
/* test_loglimit - a burst of lines, then a few a second, and the count of
 * those left out said with the next line logged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "loglimit.h"

#define MS 1000000ull
#define T0 (1000 * 1000 * MS) /* a monotonic clock well past 0 */

static void test_a_burst_is_logged_then_lines_are_left_out(void **state)
{
	struct loglimit l;
	unsigned left;

	(void)state;
	loglimit_init(&l);
	for (unsigned i = 0; i < LOGLIMIT_BURST; i++) {
		assert_true(loglimit_take(&l, T0, &left));
		assert_int_equal(left, 0);
	}
	for (unsigned i = 0; i < 1000; i++)
		assert_false(loglimit_take(&l, T0 + i, &left));
}

static void test_next_line_logged_counts_those_left_out(void **state)
{
	struct loglimit l;
	unsigned left;

	(void)state;
	loglimit_init(&l);
	for (unsigned i = 0; i < LOGLIMIT_BURST + 7; i++)
		loglimit_take(&l, T0, &left);
	assert_true(loglimit_take(&l, T0 + 1000 * MS / LOGLIMIT_PER_S, &left));
	assert_int_equal(left, 7);
	assert_false(loglimit_take(&l, T0 + 1000 * MS / LOGLIMIT_PER_S, &left));
	assert_true(loglimit_take(&l, T0 + 2 * 1000 * MS / LOGLIMIT_PER_S, &left));
	assert_int_equal(left, 1); /* the count starts again after each report */
}

static void test_rate_after_the_burst_is_per_second(void **state)
{
	struct loglimit l;
	unsigned left, logged = 0;

	(void)state;
	loglimit_init(&l);
	for (unsigned i = 0; i < LOGLIMIT_BURST; i++)
		loglimit_take(&l, T0, &left);
	/* a request every ms for 10 s: 10 s of tokens, not one more */
	for (uint64_t t = 1; t <= 10000; t++)
		logged += loglimit_take(&l, T0 + t * MS, &left);
	assert_int_equal(logged, 10 * LOGLIMIT_PER_S);
}

static void test_a_quiet_while_refills_only_the_burst(void **state)
{
	struct loglimit l;
	unsigned left, logged = 0;

	(void)state;
	loglimit_init(&l);
	for (unsigned i = 0; i < LOGLIMIT_BURST; i++)
		loglimit_take(&l, T0, &left);
	for (unsigned i = 0; i < 100; i++)
		logged += loglimit_take(&l, T0 + 3600 * 1000 * MS, &left);
	assert_int_equal(logged, LOGLIMIT_BURST);
}

static void test_clock_going_back_gives_nothing(void **state)
{
	struct loglimit l;
	unsigned left;

	(void)state;
	loglimit_init(&l);
	for (unsigned i = 0; i < LOGLIMIT_BURST; i++)
		loglimit_take(&l, T0, &left);
	assert_false(loglimit_take(&l, T0 - 5000 * MS, &left));
	assert_false(loglimit_take(&l, T0, &left));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_burst_is_logged_then_lines_are_left_out),
		cmocka_unit_test(test_next_line_logged_counts_those_left_out),
		cmocka_unit_test(test_rate_after_the_burst_is_per_second),
		cmocka_unit_test(test_a_quiet_while_refills_only_the_burst),
		cmocka_unit_test(test_clock_going_back_gives_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
