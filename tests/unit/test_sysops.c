/* SPDX-License-Identifier: MIT */
/*
 * test_sysops - the real system behind the helper's seam (sysops.c,
 * fdcheck.c, procfs.c) on fds any user has: no KVM, so every stats fd
 * check here is a refusal, each at the step that should refuse it; the
 * rest (kcmp, /proc listings, pidfd_getfd of our own fds) works on
 * ordinary files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fdcheck.h"
#include "procfs.h"
#include "sysops.h"

struct world {
	struct fdcheck fc;
	struct sysops ops;
};

static int setup(void **state)
{
	static struct world w;

	assert_int_equal(fdcheck_init(&w.fc), 0);
	sysops_init(&w.ops, &w.fc);
	*state = &w;
	return 0;
}

static void refused(struct world *w, int fd, enum fd_kind kind, const char *why)
{
	struct fdcheck_result res;

	assert_int_equal(w->ops.check_fd(w->ops.ctx, fd, kind, &res), -EBADF);
	if (!strstr(res.why, why))
		fail_msg("\"%s\" lacks \"%s\"", res.why, why);
}

static void test_a_pipe_is_refused_by_its_link_name(void **state)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	refused(*state, p[0], FD_VM_STATS, "is not a KVM VM stats fd");
	refused(*state, p[0], FD_VCPU_STATS, "is not a KVM vCPU stats fd");
	close(p[0]);
	close(p[1]);
}

static void test_an_eventfd_on_the_anon_inode_is_still_no_stats_fd(void **state)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	refused(*state, fd, FD_VM_STATS, "anon_inode:[eventfd]");
	close(fd);
}

static void test_a_closed_fd_is_refused_not_crashed_on(void **state)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	close(fd);
	refused(*state, fd, FD_VM_STATS, "cannot read its link");
}

static void test_the_owner_rule_knows_our_own_threads(void **state)
{
	struct world *w = *state;

	assert_true(w->ops.is_thread_of(w->ops.ctx, getpid(), getpid()));
	assert_false(w->ops.is_thread_of(w->ops.ctx, 0, getpid()));
	assert_false(w->ops.is_thread_of(w->ops.ctx, getpid(), 0));
}

static void test_proc_files_of_our_own_process_read(void **state)
{
	struct world *w = *state;
	uint64_t start = 0, now = w->ops.real_ns(w->ops.ctx);
	char comm[32];

	assert_true(w->ops.proc_read(w->ops.ctx, getpid(), "comm", comm, sizeof(comm)) > 1);
	assert_non_null(strchr(comm, '\n')); /* (test_sysops, or a valgrind's name) */
	assert_int_equal(w->ops.start_time_ns(w->ops.ctx, getpid(), &start), 0);
	assert_true(start > 0 && start <= now);
	assert_true(w->ops.proc_read(w->ops.ctx, -1, "comm", comm, sizeof(comm)) < 0);
	assert_int_equal(procfs_read(getpid(), "comm", comm, 0), -EINVAL);
}

static void test_a_copy_is_the_same_open_file_and_another_is_not(void **state)
{
	struct world *w = *state;
	int a = memfd_create("a", MFD_CLOEXEC), b = memfd_create("b", MFD_CLOEXEC);
	int copy = w->ops.copy_fd(w->ops.ctx, a);

	assert_true(copy > 2);
	assert_true(w->ops.same_file(w->ops.ctx, getpid(), copy, a));
	assert_false(w->ops.same_file(w->ops.ctx, getpid(), b, a));
	assert_true(fcntl(copy, F_GETFD) & FD_CLOEXEC);
	close(a);
	close(b);
	close(copy);
}

struct seen {
	int fd;
	bool found;
};

static void look(void *arg, int fd, const char *link)
{
	struct seen *s = arg;

	if (fd == s->fd && strstr(link, "memfd:listed"))
		s->found = true;
}

static void test_a_process_listing_names_each_fd_by_its_link(void **state)
{
	struct world *w = *state;
	struct seen s = { .fd = memfd_create("listed", MFD_CLOEXEC) };

	assert_int_equal(w->ops.list_fds(w->ops.ctx, getpid(), look, &s), 0);
	assert_true(s.found);
	assert_true(w->ops.list_fds(w->ops.ctx, -1, look, &s) < 0);
	close(s.fd);
}

static void test_pidfd_getfd_takes_a_copy_of_their_fd(void **state)
{
	struct world *w = *state;
	int theirs = memfd_create("theirs", MFD_CLOEXEC);
	int pidfd = w->ops.pidfd_open(w->ops.ctx, getpid()), copy;

	if (pidfd == -ENOSYS) { /* under valgrind */
		close(theirs);
		skip();
	}
	assert_true(pidfd >= 0);
	copy = w->ops.take_fd(w->ops.ctx, pidfd, theirs);
	assert_true(copy >= 0);
	assert_true(w->ops.same_file(w->ops.ctx, getpid(), theirs, copy));
	assert_true(w->ops.take_fd(w->ops.ctx, pidfd, 100000) < 0);
	/* no VM fd behind it: nothing to borrow */
	assert_true(w->ops.borrow_fd(w->ops.ctx, pidfd, theirs) < 0);
	close(copy);
	close(pidfd);
	close(theirs);
}

static void test_clocks_move_forward(void **state)
{
	struct world *w = *state;
	uint64_t a = w->ops.mono_ns(w->ops.ctx);

	assert_true(w->ops.mono_ns(w->ops.ctx) >= a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_pipe_is_refused_by_its_link_name),
		cmocka_unit_test(test_an_eventfd_on_the_anon_inode_is_still_no_stats_fd),
		cmocka_unit_test(test_a_closed_fd_is_refused_not_crashed_on),
		cmocka_unit_test(test_the_owner_rule_knows_our_own_threads),
		cmocka_unit_test(test_proc_files_of_our_own_process_read),
		cmocka_unit_test(test_a_copy_is_the_same_open_file_and_another_is_not),
		cmocka_unit_test(test_a_process_listing_names_each_fd_by_its_link),
		cmocka_unit_test(test_pidfd_getfd_takes_a_copy_of_their_fd),
		cmocka_unit_test(test_clocks_move_forward),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
