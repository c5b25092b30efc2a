/* SPDX-License-Identifier: MIT */
/*
 * fakesys - a fake system behind the helper's seam (struct sysops), so the
 * helper's decisions run as an ordinary user without KVM (static only).
 *
 * A "stats fd" is a memfd the test registers with the verdict fdcheck
 * should give (kind, the id's tid, the vCPU index). Verdicts follow the
 * inode, so the helper's own copies of an fd get the same one, and kcmp is
 * an inode comparison: a copy is "the same open file". Thread ids of
 * process pid are pid .. pid + 99. /proc files are strings the test sets.
 * The discovery side: a process's fd listing is a list of (their fd, link)
 * where "their fd" is one of ours, and pidfd_getfd is a copy of it.
 *
 * Include after <cmocka.h>'s prerequisites.
 */
#ifndef KVMSTATD_FAKESYS_H
#define KVMSTATD_FAKESYS_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysops.h"

#define FAKE_MAX 128

struct fake_file {
	ino_t ino;
	enum fd_kind kind;
	pid_t tid;
	int vcpu;
};

struct fake_link {
	pid_t pid;
	int fd;
	char link[64];
};

struct fake_proc_file {
	pid_t pid;
	char file[16];
	char text[256]; /* may hold NULs (cmdline) */
	size_t len;
};

struct fakesys {
	struct fake_file files[FAKE_MAX];
	size_t n_files;
	int fds[FAKE_MAX]; /* every fd the test made, closed at the end */
	size_t n_fds;
	struct fake_link links[FAKE_MAX];
	size_t n_links;
	struct fake_proc_file proc[16];
	size_t n_proc;
	int copies_left; /* < 0: any number; else the copy after these fails (EMFILE) */
	uint64_t mono_ns, real_ns;
	struct sysops ops;
};

static inline struct fakesys *fake_of(void *ctx)
{
	return ctx;
}

static inline bool fake_ino(int fd, ino_t *ino)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return false;
	*ino = st.st_ino;
	return true;
}

static inline int fake_check_fd(void *ctx, int fd, enum fd_kind kind, struct fdcheck_result *res)
{
	struct fakesys *f = fake_of(ctx);
	ino_t ino;

	res->why[0] = '\0';
	if (!fake_ino(fd, &ino))
		return -EBADF;
	for (size_t i = 0; i < f->n_files; i++)
		if (f->files[i].ino == ino && f->files[i].kind == kind) {
			res->id_pid = f->files[i].tid;
			res->vcpu = f->files[i].vcpu;
			return 0;
		}
	snprintf(res->why, sizeof(res->why), "not a KVM %s stats fd",
		 kind == FD_VM_STATS ? "VM" : "vCPU");
	return -EBADF;
}

static inline bool fake_is_thread_of(void *ctx, pid_t tid, pid_t pid)
{
	(void)ctx;
	return pid > 0 && tid >= pid && tid < pid + 100;
}

static inline ssize_t fake_proc_read(void *ctx, pid_t pid, const char *file, char *buf, size_t size)
{
	struct fakesys *f = fake_of(ctx);

	for (size_t i = 0; i < f->n_proc; i++)
		if (f->proc[i].pid == pid && !strcmp(f->proc[i].file, file)) {
			size_t n = f->proc[i].len < size - 1 ? f->proc[i].len : size - 1;

			memcpy(buf, f->proc[i].text, n);
			buf[n] = '\0';
			return (ssize_t)n;
		}
	if (!strcmp(file, "comm"))
		return snprintf(buf, size, "fake-vmm\n");
	return -ENOENT;
}

static inline int fake_start_time_ns(void *ctx, pid_t pid, uint64_t *out)
{
	(void)ctx;
	(void)pid;
	(void)out;
	return -ENOENT;
}

static inline bool fake_same_file(void *ctx, pid_t pid, int their_fd, int our_fd)
{
	ino_t a, b;

	(void)ctx;
	(void)pid;
	return fake_ino(their_fd, &a) && fake_ino(our_fd, &b) && a == b;
}

static inline int fake_list_fds(void *ctx, pid_t pid, sysops_fd_fn *each, void *arg)
{
	struct fakesys *f = fake_of(ctx);

	for (size_t i = 0; i < f->n_links; i++)
		if (f->links[i].pid == pid)
			each(arg, f->links[i].fd, f->links[i].link);
	return 0;
}

static inline int fake_copy_fd(void *ctx, int fd)
{
	struct fakesys *f = fake_of(ctx);
	int copy;

	if (f->copies_left == 0)
		return -EMFILE;
	copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (copy < 0)
		return -errno;
	if (f->copies_left > 0)
		f->copies_left--;
	return copy;
}

static inline int fake_pidfd_open(void *ctx, pid_t pid)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	(void)ctx;
	(void)pid;
	return fd < 0 ? -errno : fd;
}

static inline int fake_take_fd(void *ctx, int pidfd, int their_fd)
{
	(void)pidfd;
	return fake_copy_fd(ctx, their_fd);
}

static inline int fake_borrow_fd(void *ctx, int pidfd, int their_fd)
{
	(void)ctx;
	(void)pidfd;
	(void)their_fd;
	return -EIO;
}

static inline uint64_t fake_mono_ns(void *ctx)
{
	return fake_of(ctx)->mono_ns;
}

static inline uint64_t fake_real_ns(void *ctx)
{
	return fake_of(ctx)->real_ns;
}

static inline void fake_init(struct fakesys *f)
{
	memset(f, 0, sizeof(*f));
	f->copies_left = -1;
	f->mono_ns = 1000000000000ull;
	f->real_ns = 1700000000000000000ull;
	f->ops = (struct sysops){ .ctx = f,
				  .check_fd = fake_check_fd,
				  .is_thread_of = fake_is_thread_of,
				  .proc_read = fake_proc_read,
				  .start_time_ns = fake_start_time_ns,
				  .same_file = fake_same_file,
				  .list_fds = fake_list_fds,
				  .pidfd_open = fake_pidfd_open,
				  .take_fd = fake_take_fd,
				  .borrow_fd = fake_borrow_fd,
				  .copy_fd = fake_copy_fd,
				  .mono_ns = fake_mono_ns,
				  .real_ns = fake_real_ns };
}

static inline int fake_keep(struct fakesys *f, int fd)
{
	if (fd >= 0 && f->n_fds < FAKE_MAX)
		f->fds[f->n_fds++] = fd;
	return fd;
}

/* A new "stats fd" that fdcheck takes for kind, made by thread tid (vCPU vcpu). */
static inline int fake_stats_fd(struct fakesys *f, enum fd_kind kind, pid_t tid, int vcpu)
{
	int fd = fake_keep(f, memfd_create("fake-stats", MFD_CLOEXEC));
	ino_t ino;

	if (fd >= 0 && fake_ino(fd, &ino) && f->n_files < FAKE_MAX)
		f->files[f->n_files++] =
		    (struct fake_file){ ino, kind, tid, kind == FD_VM_STATS ? -1 : vcpu };
	return fd;
}

/* An fd fdcheck refuses (a plain file). */
static inline int fake_other_fd(struct fakesys *f)
{
	return fake_keep(f, memfd_create("fake-other", MFD_CLOEXEC));
}

/* Process pid holds fd (one of ours) under that link name. */
static inline void fake_holds(struct fakesys *f, pid_t pid, int fd, const char *link)
{
	if (f->n_links < FAKE_MAX) {
		f->links[f->n_links] = (struct fake_link){ .pid = pid, .fd = fd };
		snprintf(f->links[f->n_links++].link, sizeof(f->links[0].link), "%s", link);
	}
}

/* /proc/<pid>/<file> holds len bytes of text (NULs included). */
static inline void fake_proc_bytes(struct fakesys *f, pid_t pid, const char *file, const char *text,
				   size_t len)
{
	struct fake_proc_file *p = &f->proc[f->n_proc];

	if (f->n_proc < sizeof(f->proc) / sizeof(f->proc[0]) && len <= sizeof(p->text)) {
		*p = (struct fake_proc_file){ .pid = pid, .len = len };
		snprintf(p->file, sizeof(p->file), "%s", file);
		memcpy(p->text, text, len);
		f->n_proc++;
	}
}

static inline void fake_proc(struct fakesys *f, pid_t pid, const char *file, const char *text)
{
	fake_proc_bytes(f, pid, file, text, strlen(text));
}

/* /proc/<pid>/status of a process running as uid/gid. */
static inline void fake_creds(struct fakesys *f, pid_t pid, uid_t uid, gid_t gid)
{
	char text[160];

	snprintf(text, sizeof(text),
		 "Name:\tvmm\nUid:\t%u\t%u\t%u\t%u\nGid:\t%u\t%u\t%u\t%u\nGroups:\n", uid, uid, uid,
		 uid, gid, gid, gid, gid);
	fake_proc(f, pid, "status", text);
}

static inline void fake_fini(struct fakesys *f)
{
	for (size_t i = 0; i < f->n_fds; i++)
		close(f->fds[i]);
	f->n_fds = 0;
}

#endif
