/* SPDX-License-Identifier: MIT */
/* test_schedstat - parsing /proc/<pid>/task/<tid>/schedstat, and a real one. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "schedstat.h"

static void test_the_kernels_format_parses(void **state)
{
	static const char line[] = "123456789 42 17\n";
	uint64_t run = 0, delay = 0;

	(void)state;
	assert_int_equal(schedstat_parse(line, sizeof(line) - 1, &run, &delay), 0);
	assert_int_equal(run, 123456789);
	assert_int_equal(delay, 42);
}

static void test_malformed_text_is_refused(void **state)
{
	static const char *const bad[] = {
		"", "1", "1 2", "x 2 3\n", "1  2 3\n", "-1 2 3\n", "99999999999999999999 1 1\n"
	};
	uint64_t run, delay;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(schedstat_parse(bad[i], strlen(bad[i]), &run, &delay), -EINVAL);
}

static void test_this_threads_own_schedstat_reads(void **state)
{
	struct source s = { .sched_fd = -1 };
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", (int)gettid());
	s.sched_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s.sched_fd < 0)
		skip(); /* no CONFIG_SCHED_INFO */
	for (volatile int i = 0; i < 1000000; i++)
		;
	schedstat_sample(&s);
	assert_true(atomic_load(&s.sched_ok));
	assert_true(atomic_load(&s.sched_run_ns) > 0);
	close(s.sched_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_kernels_format_parses),
		cmocka_unit_test(test_malformed_text_is_refused),
		cmocka_unit_test(test_this_threads_own_schedstat_reads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
