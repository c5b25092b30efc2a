/* SPDX-License-Identifier: MIT */
/* test_logbudget - the token bucket of log lines and its count of those left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "logbudget.h"

#define S 1000000000ull

static void test_a_burst_is_written_then_lines_are_left_out_and_counted(void **state)
{
	struct logbudget b;
	uint64_t left = 99;
	unsigned written = 0;

	(void)state;
	logbudget_init(&b, 20, 1, 0);
	for (int i = 0; i < 2000; i++)
		written += logbudget_take(&b, 1000, &left);
	assert_int_equal(written, 20);
	assert_int_equal(left, 0); /* none had been left out before the 20th */
	/* a second later one more line, told how many were left out */
	assert_true(logbudget_take(&b, 1000 + S, &left));
	assert_int_equal(left, 1980);
	assert_false(logbudget_take(&b, 1000 + S, &left));
}

static void test_a_quiet_spell_reports_the_count_without_a_new_line(void **state)
{
	struct logbudget b;
	uint64_t left = 0;

	(void)state;
	logbudget_init(&b, 2, 1, 0);
	for (int i = 0; i < 5; i++)
		(void)logbudget_take(&b, 0, &left);
	assert_false(logbudget_flush(&b, S / 2, &left)); /* no token yet */
	assert_true(logbudget_flush(&b, S, &left));
	assert_int_equal(left, 3);
	assert_false(logbudget_flush(&b, 5 * S, &left)); /* nothing left to report */
}

static void test_the_bucket_refills_to_the_burst_and_no_more(void **state)
{
	struct logbudget b;
	uint64_t left;
	unsigned written = 0;

	(void)state;
	logbudget_init(&b, 3, 10, 0);
	for (int i = 0; i < 3; i++)
		assert_true(logbudget_take(&b, 0, &left));
	assert_false(logbudget_take(&b, 0, &left));
	/* an hour later: 3 again, not 36,000 */
	for (int i = 0; i < 10; i++)
		written += logbudget_take(&b, 3600 * S, &left);
	assert_int_equal(written, 3);
	/* time going backwards takes nothing */
	assert_false(logbudget_take(&b, 1, &left));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_burst_is_written_then_lines_are_left_out_and_counted),
		cmocka_unit_test(test_a_quiet_spell_reports_the_count_without_a_new_line),
		cmocka_unit_test(test_the_bucket_refills_to_the_burst_and_no_more),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
