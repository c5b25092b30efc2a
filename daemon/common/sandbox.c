/* SPDX-License-Identifier: MIT */
/* sandbox - see sandbox.h. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* Calls the worker makes, found by tracing it through every code path the
 * tests drive (poll, scrape, gzip, errors, shutdown) and then reading
 * glibc's and libmicrohttpd's sources for the rarer ones. */
static const int allowed[] = {
	/* I/O on fds it already has: stats fds, helper channel, HTTP sockets */
	SCMP_SYS(read),
	SCMP_SYS(pread64),
	SCMP_SYS(readv),
	SCMP_SYS(write),
	SCMP_SYS(writev),
	SCMP_SYS(lseek),
	SCMP_SYS(close),
	SCMP_SYS(fstat),
	SCMP_SYS(recvmsg),
	SCMP_SYS(sendmsg),
	SCMP_SYS(recvfrom),
	SCMP_SYS(sendto),
	SCMP_SYS(accept4),
	SCMP_SYS(accept),
	SCMP_SYS(shutdown),
	SCMP_SYS(setsockopt),
	SCMP_SYS(getsockopt),
	SCMP_SYS(getsockname),
	SCMP_SYS(getpeername),
	/* event loops and their fds */
	SCMP_SYS(epoll_create1),
	SCMP_SYS(epoll_ctl),
	SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait),
	SCMP_SYS(poll),
	SCMP_SYS(ppoll),
	SCMP_SYS(select),
	SCMP_SYS(pselect6),
	SCMP_SYS(eventfd2),
	SCMP_SYS(pipe2),
	SCMP_SYS(timerfd_create),
	SCMP_SYS(timerfd_settime),
	SCMP_SYS(timerfd_gettime),
	SCMP_SYS(signalfd4),
	/* memory (PROT_EXEC is refused below) */
	SCMP_SYS(brk),
	SCMP_SYS(munmap),
	SCMP_SYS(mremap),
	SCMP_SYS(madvise),
	/* threads, time, signals to itself */
	SCMP_SYS(futex),
	SCMP_SYS(set_robust_list),
	SCMP_SYS(rseq),
	SCMP_SYS(sched_yield),
	SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep),
	SCMP_SYS(clock_gettime),
	SCMP_SYS(clock_getres),
	SCMP_SYS(gettimeofday),
	SCMP_SYS(getpid),
	SCMP_SYS(gettid),
	SCMP_SYS(getuid),
	SCMP_SYS(geteuid),
	SCMP_SYS(getgid),
	SCMP_SYS(getegid),
	SCMP_SYS(getresuid),
	SCMP_SYS(getresgid),
	SCMP_SYS(getrusage),
	SCMP_SYS(sysinfo),
	SCMP_SYS(getrandom),
	SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigaction),
	SCMP_SYS(rt_sigreturn),
	SCMP_SYS(sigaltstack),
	SCMP_SYS(restart_syscall),
	SCMP_SYS(exit),
	SCMP_SYS(exit_group),
};

/* Refused with EACCES: "you may not open files" reads better in a log. */
static const int file_opens[] = {
	SCMP_SYS(open),	  SCMP_SYS(openat),   SCMP_SYS(openat2),	   SCMP_SYS(creat),
	SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(open_by_handle_at),
};

static const int fcntl_ok[] = { F_GETFL, F_GETFD, F_SETFD, F_DUPFD_CLOEXEC };

static int add_conditional(scmp_filter_ctx ctx)
{
	int rc;

	/* threads only: a new process (or namespace) is no business of ours */
	rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	/* clone3 passes its flags in memory a filter cannot read: glibc falls back */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* no new executable memory */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* fcntl: flags and close-on-exec only. F_SETOWN/F_SETSIG + O_ASYNC would
	 * let it signal any process of its uid (the helper) */
	for (size_t i = 0; rc == 0 && i < sizeof(fcntl_ok) / sizeof(fcntl_ok[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
				      SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)fcntl_ok[i]));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 2,
				      SCMP_A1(SCMP_CMP_EQ, F_SETFL),
				      SCMP_A2(SCMP_CMP_MASKED_EQ, O_ASYNC, 0));
	/* (no newfstatat: glibc's fstat uses it, but its path may be absolute) */
	/* signals to its own threads only (abort, pthread_kill) */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	/* read limits, never set them; name threads */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
				      SCMP_A2(SCMP_CMP_EQ, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				      SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	/* the nice of the calling thread only (the slow lane's bcrypt yields
	 * to HTTP); another pid of the uid, the helper's, is out of reach */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setpriority), 2,
				      SCMP_A0(SCMP_CMP_EQ, PRIO_PROCESS), SCMP_A1(SCMP_CMP_EQ, 0));
	return rc;
}

static int add_all(scmp_filter_ctx ctx, uint32_t action, const int *calls, size_t n)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = seccomp_rule_add(ctx, action, calls[i], 0);
	return rc;
}

/* Load ctx unless building it failed (rc); release it either way. */
static int load(scmp_filter_ctx ctx, int rc)
{
	/* no_new_privs is set already (privdrop); keep it that way */
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}

static int load_filter(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	int rc;

	if (!ctx)
		return -ENOMEM;
	rc = add_all(ctx, SCMP_ACT_ALLOW, allowed, sizeof(allowed) / sizeof(allowed[0]));
	if (rc == 0)
		rc = add_all(ctx, SCMP_ACT_ERRNO(EACCES), file_opens,
			     sizeof(file_opens) / sizeof(file_opens[0]));
	if (rc == 0)
		rc = add_conditional(ctx);
	return load(ctx, rc);
}

/* What the helper never does once it serves. */
static const int helper_denied[] = {
	SCMP_SYS(ptrace),
	SCMP_SYS(process_vm_readv),
	SCMP_SYS(process_vm_writev),
	SCMP_SYS(execve), /* execveat: one form, below */
	SCMP_SYS(creat),
	SCMP_SYS(truncate),
	SCMP_SYS(ftruncate),
	SCMP_SYS(rename),
	SCMP_SYS(renameat),
	SCMP_SYS(renameat2),
	SCMP_SYS(link),
	SCMP_SYS(linkat),
	SCMP_SYS(symlink),
	SCMP_SYS(symlinkat),
	SCMP_SYS(mkdir),
	SCMP_SYS(mkdirat),
	SCMP_SYS(rmdir),
	SCMP_SYS(unlink),
	SCMP_SYS(chmod),
	SCMP_SYS(fchmod),
	SCMP_SYS(fchmodat),
	SCMP_SYS(chown),
	SCMP_SYS(fchown),
	SCMP_SYS(lchown),
	SCMP_SYS(fchownat),
	SCMP_SYS(mount),
	SCMP_SYS(umount2),
	SCMP_SYS(pivot_root),
	SCMP_SYS(chroot),
	SCMP_SYS(setns),
	SCMP_SYS(unshare),
	SCMP_SYS(bpf),
	SCMP_SYS(perf_event_open),
	SCMP_SYS(kexec_load),
	SCMP_SYS(kexec_file_load),
	SCMP_SYS(init_module),
	SCMP_SYS(finit_module),
	SCMP_SYS(delete_module),
	SCMP_SYS(open_by_handle_at),
	SCMP_SYS(name_to_handle_at),
	SCMP_SYS(openat2),
	SCMP_SYS(io_uring_setup),
	SCMP_SYS(userfaultfd),
	SCMP_SYS(keyctl),
	SCMP_SYS(add_key),
	SCMP_SYS(request_key),
	SCMP_SYS(mknod),
	SCMP_SYS(mknodat),
	SCMP_SYS(utimensat),
	SCMP_SYS(utimes),
	SCMP_SYS(futimesat),
	SCMP_SYS(utime),
	SCMP_SYS(bind),
	SCMP_SYS(setxattr),
	SCMP_SYS(lsetxattr),
	SCMP_SYS(fsetxattr),
	SCMP_SYS(removexattr),
	SCMP_SYS(lremovexattr),
	SCMP_SYS(fremovexattr),
};

static int deny_writable_opens(scmp_filter_ctx ctx)
{
	/* read-only opens only: /proc files and directories are all it opens */
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 1,
				  SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY));

	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDWR));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 1,
				      SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 1,
				      SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDWR));
	/* O_CREAT or O_TRUNC with O_RDONLY still create or empty a file */
	for (int f = 0; rc == 0 && f < 2; f++) {
		scmp_datum_t bit = f ? O_TRUNC : O_CREAT;

		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, bit, bit));
		if (rc == 0)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 1,
					      SCMP_A1(SCMP_CMP_MASKED_EQ, bit, bit));
	}
	return rc;
}

/*
 * The one exec left: execveat(exe_fd, "", ..., AT_EMPTY_PATH), the worker
 * program the helper opened at start-up, run by a child that has dropped
 * every capability. A filter cannot read the path string: with an
 * absolute path the kernel ignores the fd, so a subverted helper could
 * still name another program. What it would gain is little: the program
 * runs as the service user, with no capability (no_new_privs, no ambient
 * set, file capabilities and set-id bits ignored) and under this filter.
 */
static int allow_worker_exec(scmp_filter_ctx ctx, int exe_fd)
{
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execveat), 1,
				  SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)exe_fd));

	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execveat), 1,
				      SCMP_A4(SCMP_CMP_NE, AT_EMPTY_PATH));
	return rc;
}

int sandbox_enter_helper(int exe_fd)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc;

	if (!ctx)
		return -ENOMEM;
	rc = add_all(ctx, SCMP_ACT_ERRNO(EPERM), helper_denied,
		     sizeof(helper_denied) / sizeof(helper_denied[0]));
	if (rc == 0)
		rc = allow_worker_exec(ctx, exe_fd);
	if (rc == 0)
		rc = deny_writable_opens(ctx);
	/* no filesystem change but removing its own socket: only unlinkat(dirfd, name, 0) */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unlinkat), 1,
				      SCMP_A2(SCMP_CMP_NE, 0));
	return load(ctx, rc);
}

static int set_limits(void)
{
	static const struct {
		int res;
		rlim_t max;
	} lim[] = {
		{ RLIMIT_CORE, 0 },	/* a core would hold scraped data and fds' contents */
		{ RLIMIT_MEMLOCK, 0 },	/* locks no memory */
		{ RLIMIT_MSGQUEUE, 0 }, /* no POSIX message queues */
	};

	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		struct rlimit rl = { lim[i].max, lim[i].max };

		if (setrlimit(lim[i].res, &rl) < 0)
			return -errno;
	}
	return 0;
}

int sandbox_enter(void)
{
	int rc = set_limits();

	return rc < 0 ? rc : load_filter();
}

/*
 * Every probe is harmless when it is NOT denied (read-only open, a socket
 * closed at once, exec of a path that does not exist, ptrace of no
 * process, signal 0): only the filter's own errno counts as denied, so
 * the self-test can run, and fail cleanly, without a sandbox.
 */
static int expect_denied(const char *what, long rc, int filter_errno)
{
	int err = errno;

	if (rc < 0 && err == filter_errno) {
		log_info("sandbox self-test: %s denied (%s)", what, strerror(err));
		return 0;
	}
	log_err("sandbox self-test: %s was allowed (%s)", what, rc < 0 ? strerror(err) : "ok");
	return 1;
}

int sandbox_selftest(void)
{
	char *const argv[] = { "kvmstatd-selftest", NULL };
	int failed = 0;
	void *map;
	long rc;

	rc = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	failed += expect_denied("open(/etc/passwd)", rc, EACCES);
	if (rc >= 0)
		close((int)rc);
	rc = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	failed += expect_denied("socket(AF_INET)", rc, EPERM);
	if (rc >= 0)
		close((int)rc);
	rc = execve("/nonexistent/kvmstatd-selftest", argv, argv + 1);
	failed += expect_denied("execve", rc, EACCES);
	rc = ptrace(PTRACE_ATTACH, 0x7ffffff0, 0, 0);
	failed += expect_denied("ptrace(PTRACE_ATTACH)", rc, EPERM);
	rc = kill(getppid(), 0);
	failed += expect_denied("kill(parent, 0)", rc, EPERM);
	rc = fcntl(STDERR_FILENO, F_SETOWN, getpid()); /* the first step to signal others */
	failed += expect_denied("fcntl(F_SETOWN)", rc, EPERM);
	map = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	failed += expect_denied("mmap(PROT_EXEC)", map == MAP_FAILED ? -1 : 0, EPERM);
	if (map != MAP_FAILED)
		munmap(map, 4096);
	log_info("sandbox self-test: %s", failed ? "FAILED" : "every attempt was denied");
	return failed;
}
