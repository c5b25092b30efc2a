/* SPDX-License-Identifier: MIT */
/* sysops - see sysops.h: the real system behind the helper's seam. */
#include "sysops.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "borrow.h"
#include "clock.h"
#include "procfs.h"
#include "reason.h"

static int check_fd(void *ctx, int fd, enum fd_kind kind, struct fdcheck_result *res)
{
	return fdcheck_stats_fd(ctx, fd, kind, res);
}

static bool is_thread_of(void *ctx, pid_t tid, pid_t pid)
{
	(void)ctx;
	return fdcheck_is_thread_of(tid, pid);
}

static ssize_t proc_read(void *ctx, pid_t pid, const char *file, char *buf, size_t size)
{
	(void)ctx;
	return procfs_read(pid, file, buf, size);
}

static int start_time_ns(void *ctx, pid_t pid, uint64_t *out)
{
	(void)ctx;
	return procfs_start_time_ns(pid, out);
}

static bool same_file(void *ctx, pid_t pid, int their_fd, int our_fd)
{
	(void)ctx;
	return syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, our_fd, their_fd) == 0;
}

/* Link names only: a foreign fd's own file is never touched. */
static int list_fds(void *ctx, pid_t pid, sysops_fd_fn *each, void *arg)
{
	char path[64], link[64];
	struct dirent *de;
	int dfd;
	DIR *d;

	(void)ctx;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -ENOMEM;
	}
	while ((de = readdir(d))) {
		ssize_t n = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);

		if (n <= 0 || !isdigit((unsigned char)de->d_name[0]))
			continue;
		link[n] = '\0';
		each(arg, atoi(de->d_name), link);
	}
	closedir(d);
	return 0;
}

static int pidfd_open(void *ctx, pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	(void)ctx;
	return fd < 0 ? -errno : fd;
}

static int take_fd(void *ctx, int pidfd, int their_fd)
{
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, their_fd, 0);

	(void)ctx;
	return fd < 0 ? -errno : fd;
}

static int borrow_fd(void *ctx, int pidfd, int their_fd)
{
	(void)ctx;
	return borrow_stats_fd(pidfd, their_fd);
}

static int copy_fd(void *ctx, int fd)
{
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	(void)ctx;
	return copy < 0 ? -errno : copy;
}

static uint64_t mono_ns(void *ctx)
{
	(void)ctx;
	return clock_mono_ns();
}

static uint64_t real_ns(void *ctx)
{
	(void)ctx;
	return clock_ns(CLOCK_REALTIME);
}

int sysops_check_owned(const struct sysops *ops, int fd, enum fd_kind kind, pid_t pid,
		       struct fdcheck_result *res)
{
	int rc = ops->check_fd(ops->ctx, fd, kind, res);

	if (rc == 0 && !ops->is_thread_of(ops->ctx, res->id_pid, pid))
		rc = reason_set(res->why, sizeof(res->why), -EPERM,
				"created by tid %d, not by pid %d", (int)res->id_pid, (int)pid);
	return rc;
}

void sysops_init(struct sysops *ops, struct fdcheck *fc)
{
	*ops = (struct sysops){ .ctx = fc,
				.check_fd = check_fd,
				.is_thread_of = is_thread_of,
				.proc_read = proc_read,
				.start_time_ns = start_time_ns,
				.same_file = same_file,
				.list_fds = list_fds,
				.pidfd_open = pidfd_open,
				.take_fd = take_fd,
				.borrow_fd = borrow_fd,
				.copy_fd = copy_fd,
				.mono_ns = mono_ns,
				.real_ns = real_ns };
}
