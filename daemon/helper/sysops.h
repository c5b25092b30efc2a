/* SPDX-License-Identifier: MIT */
/*
 * sysops - everything the helper's decisions ask the system: is this fd a
 * stats fd (fdcheck), is this tid a thread of that pid, what /proc says
 * about a process, is their fd the same open file as ours (kcmp), a copy
 * of a VMM's fd (pidfd_getfd, borrow) or of our own, the clock.
 *
 * The VM table, registration and discovery reach the system only through
 * this struct: sysops_init() fills it with the real calls, and unit tests
 * fill it with fakes that give the verdicts they need (tests/unit/
 * test_vmtable.c), so the helper's decisions run without root or KVM.
 */
#ifndef KVMSTATD_SYSOPS_H
#define KVMSTATD_SYSOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fdcheck.h"

/* One fd of a process's /proc/<pid>/fd: its number and its link name. */
typedef void sysops_fd_fn(void *arg, int fd, const char *link);

struct sysops {
	void *ctx; /* first argument of every call */
	/* fdcheck_stats_fd: 0, or -EBADF with res->why */
	int (*check_fd)(void *ctx, int fd, enum fd_kind kind, struct fdcheck_result *res);
	/* is tid a thread of pid (the owner rule) */
	bool (*is_thread_of)(void *ctx, pid_t tid, pid_t pid);
	/* procfs_read: /proc/<pid>/<file> */
	ssize_t (*proc_read)(void *ctx, pid_t pid, const char *file, char *buf, size_t size);
	/* procfs_start_time_ns: 0, or -errno leaving *out alone */
	int (*start_time_ns)(void *ctx, pid_t pid, uint64_t *out);
	/* kcmp(KCMP_FILE): is fd their_fd of process pid the same open file as our fd? */
	bool (*same_file)(void *ctx, pid_t pid, int their_fd, int our_fd);
	/* each fd of process pid with its link name: 0 or -errno */
	int (*list_fds)(void *ctx, pid_t pid, sysops_fd_fn *each, void *arg);
	/* pidfd_open(pid): a new fd or -errno */
	int (*pidfd_open)(void *ctx, pid_t pid);
	/* pidfd_getfd: our copy of their fd, or -errno */
	int (*take_fd)(void *ctx, int pidfd, int their_fd);
	/* borrow_stats_fd: a stats fd made from their VM or vCPU fd, or -errno */
	int (*borrow_fd)(void *ctx, int pidfd, int their_fd);
	/* our own copy of an fd we hold (F_DUPFD_CLOEXEC): a new fd or -errno */
	int (*copy_fd)(void *ctx, int fd);
	/* CLOCK_MONOTONIC and CLOCK_REALTIME, ns */
	uint64_t (*mono_ns)(void *ctx);
	uint64_t (*real_ns)(void *ctx);
};

/*
 * The check registration and discovery both make of an untrusted fd: a
 * stats fd of kind (else -EBADF) whose id names a thread of process pid,
 * its creator (else -EPERM); why in res->why, the id's tid and the vCPU
 * index in res.
 */
int sysops_check_owned(const struct sysops *ops, int fd, enum fd_kind kind, pid_t pid,
		       struct fdcheck_result *res);

/* The real calls; fc (fdcheck_init'd) must outlive ops. */
void sysops_init(struct sysops *ops, struct fdcheck *fc);

#endif
