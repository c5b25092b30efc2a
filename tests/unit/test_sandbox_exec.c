/* SPDX-License-Identifier: MIT */
/*
 * test_sandbox_exec - the helper's seccomp filter lets exactly one exec
 * through: execveat(exe_fd, "", AT_EMPTY_PATH) of the fd it was given
 * (the worker program); execve, another fd, or other flags get EPERM.
 * Each case runs in a child, which the filter then confines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

#define PROGRAM "/bin/true"

static long exec_at(int fd, const char *path, int flags)
{
	char *argv[] = { "true", NULL }, *env[] = { NULL };

	return syscall(SYS_execveat, fd, path, argv, env, flags);
}

/* Exit status of a child that installs the filter for exe and runs try(). */
static int in_child(int (*try)(int exe, int other))
{
	int status = -1;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int exe = fcntl(open(PROGRAM, O_PATH | O_CLOEXEC), F_DUPFD_CLOEXEC, 10);
		int other = open(PROGRAM, O_PATH | O_CLOEXEC);

		if (exe < 0 || other < 0 || sandbox_enter_helper(exe) < 0)
			_exit(99);
		_exit(try(exe, other));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int try_execve(int exe, int other)
{
	char *argv[] = { "true", NULL }, *env[] = { NULL };

	(void)exe;
	(void)other;
	return execve(PROGRAM, argv, env) < 0 && errno == EPERM ? 0 : 1;
}

static int try_other_fd(int exe, int other)
{
	(void)exe;
	return exec_at(other, "", AT_EMPTY_PATH) < 0 && errno == EPERM ? 0 : 1;
}

static int try_other_flags(int exe, int other)
{
	(void)other;
	/* a path relative to the fd, or AT_SYMLINK_NOFOLLOW: not the one form */
	if (exec_at(exe, "", 0) == 0 || errno != EPERM)
		return 1;
	return exec_at(exe, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 && errno == EPERM ? 0 : 2;
}

static int try_the_worker_exec(int exe, int other)
{
	(void)other;
	exec_at(exe, "", AT_EMPTY_PATH); /* /bin/true exits 0 */
	return 3;
}

static void test_execve_is_refused(void **state)
{
	(void)state;
	assert_int_equal(in_child(try_execve), 0);
}

static void test_execveat_of_another_fd_is_refused(void **state)
{
	(void)state;
	assert_int_equal(in_child(try_other_fd), 0);
}

static void test_execveat_with_other_flags_is_refused(void **state)
{
	(void)state;
	assert_int_equal(in_child(try_other_flags), 0);
}

static void test_execveat_of_the_worker_fd_runs(void **state)
{
	(void)state;
	assert_int_equal(in_child(try_the_worker_exec), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_execve_is_refused),
		cmocka_unit_test(test_execveat_of_another_fd_is_refused),
		cmocka_unit_test(test_execveat_with_other_flags_is_refused),
		cmocka_unit_test(test_execveat_of_the_worker_fd_runs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
