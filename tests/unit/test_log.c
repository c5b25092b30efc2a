/* SPDX-License-Identifier: MIT */
/*
 * test_log - what reaches stderr: one line per event, whatever the text
 * from outside holds (issue 14: a file name with a newline and terminal
 * escapes forged a log line of its own, in colour).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Run the logging in fn with stderr on a pipe; what it wrote, in out. */
static size_t capture(void (*fn)(void), char *out, size_t size)
{
	int p[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	n = read(p[0], out, size - 1);
	close(p[0]);
	assert_true(n >= 0);
	out[n] = '\0';
	return (size_t)n;
}

static size_t count(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static void forged(void)
{
	log_event(LOG_LVL_WARN, &(struct log_fields){ "vm\nx", 42, "bad_fd" },
		  "fd 0: \"%s\" is not a KVM VM stats fd",
		  "/tmp/x\nkvmstatd[helper]: info: FORGED\x1b[31m\xc2\x85");
}

static void test_text_from_outside_stays_on_one_escaped_line(void **state)
{
	char out[2048];

	(void)state;
	log_set_role("helper");
	capture(forged, out, sizeof(out));
	assert_int_equal(count(out, '\n'), 1);
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_non_null(strstr(out, "kvmstatd[helper]: warning: fd 0: \"/tmp/x\\nkvmstatd[helper]: "
				    "info: FORGED\\e[31m\\xc2\\x85\" is not"));
	assert_null(strchr(out, '\x1b'));
}

static void long_one(void)
{
	char big[3000];

	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_warn("%s", big); /* every byte doubles when escaped */
}

static void test_a_message_too_long_is_cut_but_stays_one_line(void **state)
{
	char out[4096];
	size_t n;

	(void)state;
	n = capture(long_one, out, sizeof(out));
	assert_true(n > 100 && n < 1200);
	assert_int_equal(count(out, '\n'), 1);
	assert_int_equal(out[n - 1], '\n');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_from_outside_stays_on_one_escaped_line),
		cmocka_unit_test(test_a_message_too_long_is_cut_but_stays_one_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
