// SPDX-License-Identifier: MIT
/*
 * kvmstatd-borrow: kvmstatd's own use of the kvm-stats-observer series,
 * run inside the kernel-check guest after kvm-stats-observer.
 *
 * It links daemon/helper/borrow.c, the code the helper runs, and checks it
 * against the kernel under test: borrow_probe()'s verdict, and
 * borrow_stats_fd() on the VM and vCPU fds of a separate VMM process,
 * which must give stats fds with the VMM's ids and leave no borrowed fd
 * behind. Prints "KCHECK <key>=<value>" lines for scripts/kernel-check.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "borrow.h"
#include "kcheck.h"

static const char *errname(int err)
{
	return err == EIO ? "EIO" : err == EACCES ? "EACCES" : strerror(err);
}

/* The VMM: a VM and vCPU 0; tells its fd numbers, then waits to be killed. */
static void vmm(int out)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
	int vcpu = vm < 0 ? -1 : ioctl(vm, KVM_CREATE_VCPU, 0);
	int fds[2] = { vm, vcpu };

	if (write(out, fds, sizeof(fds)) != (ssize_t)sizeof(fds))
		_exit(1);
	pause();
	_exit(0);
}

/* The id string a stats fd carries ("kvm-<pid>", "kvm-<tid>/vcpu-<n>"). */
static int stats_id(int fd, char *id, size_t size)
{
	struct kvm_stats_header h;

	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.name_size > size ||
	    pread(fd, id, h.name_size, h.id_offset) != (ssize_t)h.name_size)
		return -1;
	id[size - 1] = '\0';
	return 0;
}

/* Does this process still hold a kvm-vm or kvm-vcpu fd? */
static int holds_kvm_fds(void)
{
	char path[64], link[128];

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (borrow_link_is_vm(link) || borrow_link_is_vcpu(link))
			return 1;
	}
	return 0;
}

static void check_borrow(const char *key, int pidfd, int their_fd, const char *want_id)
{
	char id[128], k[64];
	int fd = borrow_stats_fd(pidfd, their_fd);

	if (fd < 0) {
		kcheck(key, "%s", errname(-fd));
		return;
	}
	kcheck(key, "%s", "ok");
	snprintf(k, sizeof(k), "%s_id", key);
	kcheck(k, "%s", stats_id(fd, id, sizeof(id)) == 0 && !strcmp(id, want_id) ? "vmm" : id);
	close(fd);
}

int main(void)
{
	char why[128], want[64];
	int p[2], fds[2], pidfd, rc;
	pid_t pid;

	rc = borrow_probe("/dev/kvm", why, sizeof(why));
	kcheck("kvmstatd_probe", "%s",
	       rc == BORROW_SUPPORTED ? "supported" : rc == BORROW_UNSUPPORTED ? "unsupported" : why);
	if (pipe(p) < 0 || (pid = fork()) < 0)
		return 1;
	if (pid == 0)
		vmm(p[1]);
	if (read(p[0], fds, sizeof(fds)) != (ssize_t)sizeof(fds) || fds[0] < 0 || fds[1] < 0) {
		printf("KCHECK-FATAL the VMM could not make its VM\n");
		return 1;
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	snprintf(want, sizeof(want), "kvm-%d", (int)pid);
	check_borrow("kvmstatd_borrow_vm", pidfd, fds[0], want);
	snprintf(want, sizeof(want), "kvm-%d/vcpu-0", (int)pid);
	check_borrow("kvmstatd_borrow_vcpu", pidfd, fds[1], want);
	kcheck("kvmstatd_borrowed_fds_kept", "%s", holds_kvm_fds() ? "yes" : "no");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}
