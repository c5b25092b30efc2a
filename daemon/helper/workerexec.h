/* SPDX-License-Identifier: MIT */
/*
 * workerexec - the worker program (kvmstatd-worker): where it is, and how a
 * child of the helper becomes it.
 *
 * The helper opens the program once at start-up (O_PATH) and keeps that
 * fd for its life. Every worker, and every check of a configuration, is
 * exec'd from it with execveat(fd, "", AT_EMPTY_PATH): the one exec the
 * helper's seccomp filter lets through (sandbox_enter_helper), and the
 * same build as the helper even after a package upgrade replaced the file
 * on disk (the boot message refuses another build anyway).
 *
 * Where: a kvmstatd-worker next to the helper's own executable
 * (/proc/self/exe) is used first: that is a build tree (make run, the
 * tests), and whoever may write there may replace the helper itself.
 * Else KVMSTATD_WORKER_PATH, fixed at build time (make install puts it in
 * $(LIBEXECDIR)/kvmstatd/).
 *
 * The program starts with fds 0-2, its channel as fd 3 (boot.h) and an
 * empty environment; everything else arrives in the boot message.
 */
#ifndef KVMSTATD_WORKEREXEC_H
#define KVMSTATD_WORKEREXEC_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "boot.h"
#include "config.h"

#ifndef KVMSTATD_WORKER_PATH
#define KVMSTATD_WORKER_PATH "/usr/local/libexec/kvmstatd/kvmstatd-worker"
#endif

struct workerexec {
	int exe_fd;	     /* O_PATH of the worker program; never below 4, never closed */
	char path[PATH_MAX]; /* where it was found, for messages */
	struct boot_pem pem; /* [web] files, read as root at start-up (webfiles.h) */
	bool selftest;	     /* --sandbox-selftest: each worker tests its sandbox */
};

/* Who a check runs as: the service user once the helper knows it. */
struct workerexec_user {
	uid_t uid;
	gid_t gid;
};

/* Find and open the worker program into s (exe_fd, path). 0 or -errno. */
int workerexec_open(struct workerexec *s);

/*
 * In a child about to become the worker: chan_fd as fd 3, every other fd
 * closed, the signal mask emptied, then the exec (argv[0]
 * "kvmstatd-worker", and mode as argv[1] when not NULL). Returns -errno
 * only when the exec failed.
 */
int workerexec_run(const struct workerexec *s, int chan_fd, const char *mode);

/*
 * Run the worker program in its check mode (--check-config) on cfg and
 * s->pem, as user when not NULL, and wait for it (10 s at most): it
 * parses the TLS files and checks the [basic_auth_users] hashes, which
 * the helper (linking neither GnuTLS nor libcrypt) cannot. 0 valid;
 * -EINVAL refused (the check logged why); -EIO when it could not run or
 * answer (logged).
 */
int workerexec_check(const struct workerexec *s, const struct config *cfg,
		     const struct workerexec_user *user);

#endif
