/* SPDX-License-Identifier: MIT */
/* workerexec - see workerexec.h. */
#include "workerexec.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "privdrop.h"

#define WORKER_NAME "kvmstatd-worker"
#define CHECK_TIMEOUT_MS 10000 /* GnuTLS parses 3 MiB of PEM in far less */

/* An O_PATH fd of path, moved to 4 or above (fd 3 is the child's channel). */
static int open_exe(const char *path)
{
	int fd = open(path, O_PATH | O_CLOEXEC), high;

	if (fd < 0)
		return -errno;
	high = fcntl(fd, F_DUPFD_CLOEXEC, BOOT_CHANNEL_FD + 1);
	close(fd);
	return high < 0 ? -errno : high;
}

/* A regular file we may execute, or -errno. */
static int try_path(struct workerexec *s, const char *path)
{
	int rc = faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0 ? -errno : 0;

	snprintf(s->path, sizeof(s->path), "%s", path);
	if (rc == 0)
		rc = open_exe(path);
	if (rc >= 0)
		s->exe_fd = rc;
	return rc < 0 ? rc : 0;
}

/* From the helper's directory to the worker's in an installed tree. */
#define INSTALLED_REL "../libexec/kvmstatd"

int workerexec_open(struct workerexec *s)
{
	char self[PATH_MAX], sibling[PATH_MAX + sizeof(INSTALLED_REL) + sizeof(WORKER_NAME) + 1];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *dir;
	int rc = -ENOENT;

	s->exe_fd = -1;
	if (n > 0) {
		self[n] = '\0';
		dir = dirname(self);
		/* the build tree: both programs in build/ */
		snprintf(sibling, sizeof(sibling), "%s/%s", dir, WORKER_NAME);
		rc = try_path(s, sibling);
		/* make install's layout, whatever its PREFIX: sbin/ and libexec/ */
		if (rc < 0) {
			snprintf(sibling, sizeof(sibling), "%s/%s/%s", dir, INSTALLED_REL,
				 WORKER_NAME);
			rc = try_path(s, sibling);
		}
	}
	if (rc < 0)
		rc = try_path(s, KVMSTATD_WORKER_PATH);
	return rc;
}

int workerexec_run(const struct workerexec *s, int chan_fd, const char *mode)
{
	char *argv[] = { WORKER_NAME, (char *)mode, NULL };
	char *env[] = { NULL }; /* nothing of the helper's environment */
	unsigned exe = (unsigned)s->exe_fd;
	sigset_t none;
	int rc = 0;

	if (chan_fd != BOOT_CHANNEL_FD && dup3(chan_fd, BOOT_CHANNEL_FD, 0) < 0)
		rc = -errno;
	else if (chan_fd == BOOT_CHANNEL_FD && fcntl(chan_fd, F_SETFD, 0) < 0)
		rc = -errno;
	if (rc == 0) {
		/* exe_fd is above the channel (open_exe): keep both, close the rest */
		if (exe > BOOT_CHANNEL_FD + 1)
			syscall(SYS_close_range, BOOT_CHANNEL_FD + 1, exe - 1, 0u);
		syscall(SYS_close_range, exe + 1, ~0u, 0u);
		/* the helper blocks the signals its signalfd reads: start clean */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		syscall(SYS_execveat, s->exe_fd, "", argv, env, AT_EMPTY_PATH);
		rc = -errno;
	}
	return rc;
}

static void __attribute__((noreturn))
become_checker(const struct workerexec *s, int chan_fd, const struct workerexec_user *user)
{
	int rc = user ? privdrop_to(user->uid, user->gid) : 0;

	if (rc < 0)
		log_err("configuration check: cannot drop privileges: %s", strerror(-rc));
	else if ((rc = workerexec_run(s, chan_fd, "--check-config")) < 0)
		log_err("configuration check: cannot run %s: %s", s->path, strerror(-rc));
	_exit(127);
}

/* The checker's exit status as workerexec_check's result; logs what it did not. */
static int check_result(const struct workerexec *s, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		return -EINVAL;
	if (WIFSIGNALED(status))
		log_err("configuration check: %s was killed by signal %d", s->path,
			WTERMSIG(status));
	else if (WEXITSTATUS(status) != 127) /* 127: the child said why */
		log_err("configuration check: %s exited with status %d", s->path,
			WEXITSTATUS(status));
	return -EIO;
}

/*
 * Wait for the checker, CHECK_TIMEOUT_MS at most: the helper's loop waits
 * with it (a reload), and a checker that hangs must not hang the helper.
 * 0 with its status, or -errno.
 */
static int wait_checker(const struct workerexec *s, pid_t pid, int *status)
{
	struct timespec tick = { 0, 10 * 1000000L };
	int waited = 0, rc = 0;
	pid_t got;

	while ((got = waitpid(pid, status, WNOHANG)) == 0 && waited < CHECK_TIMEOUT_MS) {
		nanosleep(&tick, NULL);
		waited += 10;
	}
	if (got == 0) {
		log_err("configuration check: %s did not answer in %d ms; killed", s->path,
			CHECK_TIMEOUT_MS);
		kill(pid, SIGKILL);
		got = waitpid(pid, status, 0);
		rc = -ETIMEDOUT;
	}
	return got < 0 ? -errno : rc;
}

int workerexec_check(const struct workerexec *s, const struct config *cfg,
		     const struct workerexec_user *user)
{
	int sp[2] = { -1, -1 }, status = 0, rc = 0;
	pid_t pid = -1;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0 || (pid = fork()) < 0) {
		rc = -errno;
		log_err("configuration check: cannot start %s: %s", s->path, strerror(-rc));
	}
	if (pid == 0)
		become_checker(s, sp[1], user);
	if (sp[1] >= 0)
		close(sp[1]);
	/* a checker that died before reading shows in its exit status */
	if (rc == 0)
		boot_send(sp[0], cfg, &s->pem, -1, journal_fd(), 0, (uint32_t)log_get_level());
	if (sp[0] >= 0)
		close(sp[0]);
	if (rc == 0)
		rc = wait_checker(s, pid, &status);
	return rc < 0 ? -EIO : check_result(s, status);
}
