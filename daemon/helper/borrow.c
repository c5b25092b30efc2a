/* SPDX-License-Identifier: MIT */
/*
 * borrow - stats fds made from a VMM's own VM and vCPU fds (see borrow.h).
 */
#include "borrow.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
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

/*
 * Is our copy a KVM VM or vCPU fd? Their fd number may have been closed and
 * reused since /proc listed it, and this ioctl number means something else
 * to other drivers: nothing but a KVM fd gets it.
 */
static bool is_kvm_fd(int fd)
{
	char path[64], link[64];
	struct statfs sfs;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = '\0';
	return (borrow_link_is_vm(link) || borrow_link_is_vcpu(link)) && fstatfs(fd, &sfs) == 0 &&
	       sfs.f_type == ANON_INODE_FS_MAGIC;
}

int borrow_stats_fd(int pidfd, int their_fd)
{
	int borrowed = (int)syscall(SYS_pidfd_getfd, pidfd, their_fd, 0);
	int fd;

	if (borrowed < 0)
		return -errno;
	if (!is_kvm_fd(borrowed))
		fd = -EBADF;
	else if ((fd = ioctl(borrowed, KVM_GET_STATS_FD, NULL)) < 0)
		fd = -errno;
	close(borrowed); /* at once: it would pin the whole VM */
	return fd;
}

bool borrow_link_is_vm(const char *link)
{
	return strcmp(link, "anon_inode:kvm-vm") == 0;
}

bool borrow_link_is_vcpu(const char *link)
{
	static const char prefix[] = "anon_inode:kvm-vcpu:";
	const char *p = link + sizeof(prefix) - 1;

	if (strncmp(link, prefix, sizeof(prefix) - 1) != 0 || !*p)
		return false;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}
