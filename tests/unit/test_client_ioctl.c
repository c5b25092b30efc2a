/* SPDX-License-Identifier: MIT */
/*
 * test_client_ioctl - the client library reaches KVM_GET_STATS_FD through
 * the system call, never through an ioctl() symbol.
 *
 * Linked into the preload shim, the client's ioctl() would bind to the
 * shim's interposer, so the shim's own helper would come back into the
 * shim. This program plays the shim: it defines ioctl() itself, which
 * interposes libc's for everything linked here, the client library
 * included, and counts the calls that reach it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "kvmstat_client.h"

static unsigned interposed_calls;

/* The fake interposer: counts, and answers what no kernel would. */
int ioctl(int fd, unsigned long request, ...);
int ioctl(int fd, unsigned long request, ...)
{
	(void)fd;
	(void)request;
	interposed_calls++;
	errno = EXDEV;
	return -1;
}

static void test_the_fake_interposes_a_plain_ioctl_call(void **state)
{
	(void)state;
	interposed_calls = 0;
	/* through a pointer, so the compiler cannot fold the call away */
	int (*volatile call)(int, unsigned long, ...) = ioctl;

	assert_int_equal(call(0, KVM_GET_STATS_FD, NULL), -1);
	assert_int_equal(interposed_calls, 1);
}

static void test_get_stats_fd_bypasses_an_interposed_ioctl(void **state)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	interposed_calls = 0;
	/* the kernel's answer for a file that is no KVM object */
	assert_int_equal(kvmstat_get_stats_fd(fd), -ENOTTY);
	assert_int_equal(interposed_calls, 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_fake_interposes_a_plain_ioctl_call),
		cmocka_unit_test(test_get_stats_fd_bypasses_an_interposed_ioctl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
