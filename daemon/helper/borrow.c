/* SPDX-License-Identifier: MIT */
/*
 * borrow - stats fds made from a VMM's own VM and vCPU fds (see borrow.h);
 * the start-up probe of the kernel is borrow_probe.c.
 */
#include "borrow.h"

#include <errno.h>
#include <linux/kvm.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

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
