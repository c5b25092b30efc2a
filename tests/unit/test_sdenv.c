/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of sdenv: LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES and
 * WATCHDOG_USEC/WATCHDOG_PID as a hostile environment may set them, the
 * beats a watchdog period gets (helper_beat_ms), and activation_kind_of
 * on real sockets (what the kernel says they are).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "activation.h"
#include "helper_state.h"
#include "sdenv.h"

#define SELF 4242

static char why[256];

static int fds(const char *pid, const char *n, const char *names, struct sdenv_fds *out)
{
	why[0] = '\0';
	return sdenv_parse_fds(pid, n, names, SELF, out, why, sizeof(why));
}

static int wd(const char *usec, const char *pid, uint64_t *out)
{
	why[0] = '\0';
	return sdenv_parse_watchdog(usec, pid, SELF, out, why, sizeof(why));
}

static void test_nothing_passed_without_listen_pid_or_fds(void **state)
{
	struct sdenv_fds f;

	(void)state;
	assert_int_equal(fds(NULL, NULL, NULL, &f), 0);
	assert_int_equal(fds(NULL, "2", "http:register", &f), 0); /* not addressed to anybody */
	assert_int_equal(fds("4242", NULL, NULL, &f), 0);
	assert_int_equal(fds("4242", "0", "ignored:when:none", &f), 0);
	assert_int_equal(f.n, 0);
}

static void test_listen_pid_must_be_a_plain_pid(void **state)
{
	const char *bad[] = { "",      "abc",	 "-1", "+4242",	     " 4242",
			      "4242 ", "0x1092", "0",  "2147483648", "99999999999999999999999" };
	struct sdenv_fds f;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fds(bad[i], "1", NULL, &f), -EINVAL);
		assert_string_equal(why, "LISTEN_PID is not a process id");
	}
}

static void test_sockets_for_another_process_are_not_ours(void **state)
{
	struct sdenv_fds f;

	(void)state;
	assert_int_equal(fds("4243", "2", "http:register", &f), -ESRCH);
	assert_string_equal(why, "LISTEN_PID is 4243, not us (4242)");
	assert_int_equal(fds("2147483647", "1", NULL, &f), -ESRCH); /* the largest pid_t */
	assert_int_equal(f.n, 0);
}

static void test_listen_fds_is_a_small_plain_number(void **state)
{
	const char *bad[] = { "", "9", "-1", "1x", " 1", "4294967297", "18446744073709551617" };
	struct sdenv_fds f;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fds("4242", bad[i], NULL, &f), -EINVAL);
		assert_string_equal(why, "LISTEN_FDS is not a number of sockets from 0 to 8");
	}
	assert_int_equal(fds("4242", "8", NULL, &f), 8);
	assert_int_equal(fds("4242", "08", NULL, &f), 8); /* still decimal */
}

static void test_unset_names_leave_every_socket_unnamed(void **state)
{
	struct sdenv_fds f;

	(void)state;
	assert_int_equal(fds("4242", "2", NULL, &f), 2);
	assert_null(f.names[0]);
	assert_null(f.names[1]);
}

static void test_empty_names_name_no_socket_and_are_refused(void **state)
{
	struct sdenv_fds f;

	(void)state;
	assert_int_equal(fds("4242", "1", "", &f), -EINVAL);
	assert_string_equal(why, "LISTEN_FDNAMES names 0 sockets, LISTEN_FDS passes 1");
	assert_int_equal(f.n, 1); /* still ours to close */
	assert_int_equal(fds("4242", "2", "", &f), -EINVAL);
	assert_int_equal(fds("4242", "0", "", &f), 0); /* nothing passed, nothing to name */
}

static void test_names_are_split_in_order_empty_ones_kept(void **state)
{
	struct sdenv_fds f;

	(void)state;
	assert_int_equal(fds("4242", "3", "register::http", &f), 3);
	assert_string_equal(f.names[0], "register");
	assert_string_equal(f.names[1], "");
	assert_string_equal(f.names[2], "http");
	assert_int_equal(fds("4242", "1", "http", &f), 1);
	assert_string_equal(f.names[0], "http");
}

static void test_names_must_be_as_many_as_the_fds(void **state)
{
	struct sdenv_fds f;

	(void)state;
	assert_int_equal(fds("4242", "1", "http:register", &f), -EINVAL);
	assert_string_equal(why, "LISTEN_FDNAMES names 2 sockets, LISTEN_FDS passes 1");
	assert_int_equal(fds("4242", "3", "http:register", &f), -EINVAL);
	assert_string_equal(why, "LISTEN_FDNAMES names 2 sockets, LISTEN_FDS passes 3");
	assert_int_equal(fds("4242", "2", ":::::::::::::::::::::", &f), -EINVAL);
}

static void test_names_longer_than_the_buffer_are_refused(void **state)
{
	static char name[SDENV_NAMES_SIZE + 1];
	struct sdenv_fds f;

	(void)state;
	memset(name, 'a', SDENV_NAMES_SIZE);
	assert_int_equal(fds("4242", "1", name, &f), -EINVAL);
	assert_string_equal(why, "LISTEN_FDNAMES is longer than 2047 bytes");
	name[SDENV_NAMES_SIZE - 1] = '\0'; /* fits: the name's own length is activation's */
	assert_int_equal(fds("4242", "1", name, &f), 1);
	assert_int_equal(strlen(f.names[0]), SDENV_NAMES_SIZE - 1);
}

static void test_odd_names_pass_through_to_be_refused_by_activation(void **state)
{
	const enum activation_kind kinds[] = { ACT_KIND_TCP, ACT_KIND_SEQPACKET };
	struct sdenv_fds f;
	int h, r;

	(void)state;
	assert_int_equal(fds("4242", "2", "ht\033[2Jtp:register", &f), 2);
	assert_int_equal(activation_match(f.names, kinds, 2, &h, &r, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "socket fd 3: its name is not printable ASCII"));
}

static void test_no_watchdog_without_watchdog_usec(void **state)
{
	uint64_t u = 7;

	(void)state;
	assert_int_equal(wd(NULL, NULL, &u), 0);
	assert_int_equal(u, 0);
	assert_int_equal(wd(NULL, "4242", &u), 0);
}

static void test_watchdog_pid_names_who_is_watched(void **state)
{
	uint64_t u;

	(void)state;
	assert_int_equal(wd("1000000", NULL, &u), 1); /* unset: whoever reads it */
	assert_int_equal(u, 1000000);
	assert_int_equal(wd("1000000", "4242", &u), 1);
	assert_int_equal(wd("1000000", "1", &u), -ESRCH);
	assert_string_equal(why, "WATCHDOG_PID is 1, not us (4242)");
	assert_int_equal(u, 0);
	assert_int_equal(wd("1000000", "me", &u), -EINVAL);
	assert_string_equal(why, "WATCHDOG_PID is not a process id");
}

static void test_watchdog_usec_garbage_is_refused(void **state)
{
	const char *bad[] = { "",
			      "abc",
			      "1e6",
			      "-1000000",
			      " 1000000",
			      "1000000s",
			      "18446744073709551616",
			      "99999999999999999999999999" };
	uint64_t u;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(wd(bad[i], NULL, &u), -EINVAL);
		assert_string_equal(why, "WATCHDOG_USEC is not a decimal number of microseconds");
		assert_int_equal(u, 0);
	}
}

static void test_watchdog_period_of_0_or_infinity_is_refused(void **state)
{
	uint64_t u;

	(void)state;
	assert_int_equal(wd("0", NULL, &u), -EINVAL);
	assert_string_equal(why, "WATCHDOG_USEC=0 is 0 or infinity, not a period");
	assert_int_equal(wd("18446744073709551615", NULL, &u), -EINVAL); /* USEC_INFINITY */
	assert_int_equal(u, 0);
}

static void test_a_period_of_80_ms_is_accepted_and_beats_every_50_ms(void **state)
{
	uint64_t u;

	(void)state;
	assert_int_equal(wd("80000", NULL, &u), 1);
	assert_int_equal(u, 80000);
	assert_int_equal(helper_beat_ms(u), 50);
}

static void test_any_other_period_is_accepted_as_given(void **state)
{
	char s[32];
	uint64_t u;

	(void)state;
	assert_int_equal(wd("1", NULL, &u), 1);
	assert_int_equal(u, 1);
	assert_int_equal(wd("99999", NULL, &u), 1);
	assert_int_equal(u, 99999);
	snprintf(s, sizeof(s), "%llu", (unsigned long long)SDENV_WATCHDOG_MAX_USEC);
	assert_int_equal(wd(s, NULL, &u), 1);
	assert_int_equal(u, UINT64_MAX - 1);
}

static void test_beats_are_a_quarter_period_from_50_ms_to_an_hour(void **state)
{
	(void)state;
	assert_int_equal(helper_beat_ms(0), 0);			 /* no watchdog */
	assert_int_equal(helper_beat_ms(1), HELPER_BEAT_MIN_MS); /* under 1 ms: still beats */
	assert_int_equal(helper_beat_ms(999), HELPER_BEAT_MIN_MS);
	assert_int_equal(helper_beat_ms(199999), HELPER_BEAT_MIN_MS);
	assert_int_equal(helper_beat_ms(200000), 50);
	assert_int_equal(helper_beat_ms(1000000), 250);
	assert_int_equal(helper_beat_ms(30000000), 7500); /* the shipped WatchdogSec=30s */
	assert_int_equal(helper_beat_ms(4ull * IPC_HEARTBEAT_MAX_MS * 1000), IPC_HEARTBEAT_MAX_MS);
	assert_int_equal(helper_beat_ms(UINT64_MAX - 1), IPC_HEARTBEAT_MAX_MS);
}

static void put_env(const char *pid, const char *n, const char *names)
{
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", n, 1);
	setenv("LISTEN_FDNAMES", names, 1);
}

static void test_take_unsets_the_variables_even_when_it_refuses(void **state)
{
	struct sdenv_fds f;
	uint64_t u;

	(void)state;
	put_env("garbage", "1", "http");
	assert_int_equal(sdenv_take_fds(&f, why, sizeof(why)), -EINVAL);
	assert_null(getenv("LISTEN_PID"));
	assert_null(getenv("LISTEN_FDS"));
	assert_null(getenv("LISTEN_FDNAMES"));
	setenv("WATCHDOG_USEC", "0", 1);
	setenv("WATCHDOG_PID", "1", 1);
	assert_int_equal(sdenv_take_watchdog(&u, why, sizeof(why)), -ESRCH);
	assert_null(getenv("WATCHDOG_USEC"));
	assert_null(getenv("WATCHDOG_PID"));
}

static void test_take_makes_the_fds_close_on_exec_and_needs_them_open(void **state)
{
	char pid[16];
	struct sdenv_fds f;
	/* fd 3 may be the test runner's: put it back afterwards */
	int saved = fcntl(SDENV_FDS_START, F_DUPFD_CLOEXEC, 10);
	int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	(void)state;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (s != SDENV_FDS_START) {
		assert_int_equal(dup2(s, SDENV_FDS_START), SDENV_FDS_START);
		close(s);
	}
	put_env(pid, "1", "register");
	assert_int_equal(sdenv_take_fds(&f, why, sizeof(why)), 1);
	assert_string_equal(f.names[0], "register");
	assert_int_equal(fcntl(SDENV_FDS_START, F_GETFD), FD_CLOEXEC);
	close(SDENV_FDS_START);
	put_env(pid, "1", "register");
	assert_int_equal(sdenv_take_fds(&f, why, sizeof(why)), -EBADF);
	assert_string_equal(why, "fd 3 of LISTEN_FDS: Bad file descriptor");
	if (saved >= 0) {
		dup2(saved, SDENV_FDS_START);
		close(saved);
	}
}

/* A socket at fd: where systemd would have put one. */
static void socket_at(int fd)
{
	int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	assert_true(s >= 0);
	if (s != fd) {
		assert_int_equal(dup2(s, fd), fd);
		close(s);
	}
}

static void test_activation_closes_our_fds_when_it_refuses_them(void **state)
{
	/* fds 3 and 4 may be the test runner's: put them back afterwards */
	int saved[2] = { fcntl(SDENV_FDS_START, F_DUPFD_CLOEXEC, 10),
			 fcntl(SDENV_FDS_START + 1, F_DUPFD_CLOEXEC, 10) };
	char pid[16];
	int h, r;

	(void)state;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	/* names not one per fd: LISTEN_FDS said which fds are ours */
	socket_at(SDENV_FDS_START);
	put_env(pid, "1", "http:register");
	assert_int_equal(activation_take(&h, &r, why, sizeof(why)), -EINVAL);
	assert_int_equal(fcntl(SDENV_FDS_START, F_GETFD), -1);
	assert_int_equal(h, -1);
	assert_int_equal(r, -1);
	/* one of two not open: the other is still ours */
	socket_at(SDENV_FDS_START);
	close(SDENV_FDS_START + 1);
	put_env(pid, "2", "http:register");
	assert_int_equal(activation_take(&h, &r, why, sizeof(why)), -EBADF);
	assert_int_equal(fcntl(SDENV_FDS_START, F_GETFD), -1);
	/* another process's: left open */
	socket_at(SDENV_FDS_START);
	put_env("1", "1", "register");
	assert_int_equal(activation_take(&h, &r, why, sizeof(why)), 0);
	assert_true(fcntl(SDENV_FDS_START, F_GETFD) >= 0);
	close(SDENV_FDS_START);
	for (int i = 0; i < 2; i++)
		if (saved[i] >= 0) {
			dup2(saved[i], SDENV_FDS_START + i);
			close(saved[i]);
		}
}

static int listening(int domain, int type, const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(domain, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, sa, len), 0);
	if (type != SOCK_DGRAM)
		assert_int_equal(listen(fd, 1), 0);
	return fd;
}

static void test_socket_kinds_come_from_the_kernel(void **state)
{
	struct sockaddr_in in = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	socklen_t unlen = offsetof(struct sockaddr_un, sun_path) + 1 + 10;
	int fd[5], pair[2], pipefd[2];

	(void)state;
	snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "sdenv%05d", (int)getpid() % 100000);
	fd[0] = listening(AF_INET, SOCK_STREAM, (struct sockaddr *)&in, sizeof(in));
	assert_int_equal(activation_kind_of(fd[0]), ACT_KIND_TCP);
	fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* not listening */
	assert_int_equal(activation_kind_of(fd[1]), ACT_KIND_OTHER);
	fd[2] = listening(AF_INET, SOCK_DGRAM, (struct sockaddr *)&in, sizeof(in));
	assert_int_equal(activation_kind_of(fd[2]), ACT_KIND_OTHER);
	fd[3] = listening(AF_UNIX, SOCK_SEQPACKET, (struct sockaddr *)&un, unlen);
	assert_int_equal(activation_kind_of(fd[3]), ACT_KIND_SEQPACKET);
	un.sun_path[1] = 'S';
	fd[4] = listening(AF_UNIX, SOCK_STREAM, (struct sockaddr *)&un, unlen);
	assert_int_equal(activation_kind_of(fd[4]), ACT_KIND_OTHER); /* a stream, not seqpacket */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
	assert_int_equal(activation_kind_of(pair[0]), ACT_KIND_OTHER); /* connected */
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	assert_int_equal(activation_kind_of(pipefd[0]), ACT_KIND_OTHER);
	for (int i = 0; i < 2; i++) {
		close(pair[i]);
		close(pipefd[i]);
	}
	for (int i = 0; i < 5; i++)
		close(fd[i]);
	assert_int_equal(activation_kind_of(fd[0]), ACT_KIND_OTHER); /* closed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_passed_without_listen_pid_or_fds),
		cmocka_unit_test(test_listen_pid_must_be_a_plain_pid),
		cmocka_unit_test(test_sockets_for_another_process_are_not_ours),
		cmocka_unit_test(test_listen_fds_is_a_small_plain_number),
		cmocka_unit_test(test_unset_names_leave_every_socket_unnamed),
		cmocka_unit_test(test_empty_names_name_no_socket_and_are_refused),
		cmocka_unit_test(test_names_are_split_in_order_empty_ones_kept),
		cmocka_unit_test(test_names_must_be_as_many_as_the_fds),
		cmocka_unit_test(test_names_longer_than_the_buffer_are_refused),
		cmocka_unit_test(test_odd_names_pass_through_to_be_refused_by_activation),
		cmocka_unit_test(test_no_watchdog_without_watchdog_usec),
		cmocka_unit_test(test_watchdog_pid_names_who_is_watched),
		cmocka_unit_test(test_watchdog_usec_garbage_is_refused),
		cmocka_unit_test(test_watchdog_period_of_0_or_infinity_is_refused),
		cmocka_unit_test(test_a_period_of_80_ms_is_accepted_and_beats_every_50_ms),
		cmocka_unit_test(test_any_other_period_is_accepted_as_given),
		cmocka_unit_test(test_beats_are_a_quarter_period_from_50_ms_to_an_hour),
		cmocka_unit_test(test_take_unsets_the_variables_even_when_it_refuses),
		cmocka_unit_test(test_take_makes_the_fds_close_on_exec_and_needs_them_open),
		cmocka_unit_test(test_activation_closes_our_fds_when_it_refuses_them),
		cmocka_unit_test(test_socket_kinds_come_from_the_kernel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
