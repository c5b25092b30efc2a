/* SPDX-License-Identifier: MIT */
/*
 * borrow_probe - does this kernel give stats fds to an observer (borrow.h)?
 * Asked once at start-up, as root, on a VM of our own.
 */
#include "borrow.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* exit codes of the probe's child: its errno cannot cross exit() whole */
enum { CHILD_FD = 0, CHILD_EACCES = 1, CHILD_EIO = 2, CHILD_OTHER = 3 };

int borrow_verdict(int err)
{
	switch (err) {
	case 0:
	case EACCES: /* the kernel checked ptrace rights: it knows observers */
		return BORROW_SUPPORTED;
	case EIO: /* kvm->mm != current->mm, the stock answer */
		return BORROW_UNSUPPORTED;
	default:
		return -EPROTO;
	}
}

/* In the forked child: only async-signal-safe calls. */
static void probe_child(int vm_fd)
{
	int fd = ioctl(vm_fd, KVM_GET_STATS_FD, NULL);

	if (fd >= 0)
		_exit(CHILD_FD);
	_exit(errno == EACCES ? CHILD_EACCES : errno == EIO ? CHILD_EIO : CHILD_OTHER);
}

static int wait_child(pid_t pid, char *why, size_t size)
{
	int status, code;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status)) {
		snprintf(why, size, "the probe's child died (status %d)", status);
		return -ECHILD;
	}
	code = WEXITSTATUS(status);
	if (code == CHILD_OTHER) {
		snprintf(why, size, "KVM_GET_STATS_FD from a child gave neither EIO nor EACCES");
		return -EPROTO;
	}
	return borrow_verdict(code == CHILD_FD ? 0 : code == CHILD_EACCES ? EACCES : EIO);
}

int borrow_probe(const char *kvm_path, char *why, size_t size)
{
	int kvm = -1, vm = -1, rc;
	pid_t pid;

	snprintf(why, size, "ok");
	kvm = open(kvm_path, O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		rc = -errno;
		snprintf(why, size, "%s: %s", kvm_path, strerror(errno));
		goto out;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		rc = -errno;
		snprintf(why, size, "KVM_CREATE_VM: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid == 0)
		probe_child(vm);
	if (pid < 0) {
		rc = -errno;
		snprintf(why, size, "fork: %s", strerror(errno));
		goto out;
	}
	rc = wait_child(pid, why, size);
out:
	if (vm >= 0)
		close(vm);
	if (kvm >= 0)
		close(kvm);
	return rc;
}
