/* SPDX-License-Identifier: MIT */
/*
 * fdcheck - is this untrusted fd really a KVM stats fd of the expected kind?
 *
 * A hostile VMM may send a pipe, a FUSE file that stalls every read, a
 * socket, or the kvm-vm fd itself (read-write: it controls the VM). The
 * checks run cheapest and safest first; nothing touches the fd's own
 * filesystem until the kernel's link name says it is a KVM anon inode:
 *   1. /proc/self/fd/N reads "anon_inode:kvm-vm-stats" or
 *      "anon_inode:kvm-vcpu-stats:<n>";
 *   2. fstatfs says anon_inodefs;
 *   3. fstat gives the anon inode shared by every anon fd (our eventfd);
 *   4. opened read-only;
 *   5. the header is sane and the id string reads "kvm-<pid>" (VM) or
 *      "kvm-<tid>/vcpu-<n>" with the same n as the link.
 */
#ifndef KVMSTATD_FDCHECK_H
#define KVMSTATD_FDCHECK_H

#include <stddef.h>
#include <sys/types.h>

enum fd_kind { FD_VM_STATS, FD_VCPU_STATS };

struct fdcheck_result {
	pid_t id_pid; /* the number in the id: VM creator's tid, or vCPU creator's tid */
	int vcpu;     /* vCPU index, -1 for a VM */
	char why[128];
};

/* The identity of the kernel's anonymous inode, learned from an eventfd. */
struct fdcheck {
	dev_t anon_dev;
	ino_t anon_ino;
};

/* Learn it (an eventfd of our own): 0 or -errno. */
int fdcheck_init(struct fdcheck *fc);

/* 0 if fd is a genuine stats fd of kind; -EBADF with res->why otherwise. */
int fdcheck_stats_fd(const struct fdcheck *fc, int fd, enum fd_kind kind,
		     struct fdcheck_result *res);

/* True if tid is a thread of process pid (owner check). */
int fdcheck_is_thread_of(pid_t tid, pid_t pid);

#endif
