/* SPDX-License-Identifier: MIT */
/*
 * borrow - stats fds made from a VMM's own VM and vCPU fds.
 *
 * A stock kernel answers KVM_GET_STATS_FD only to the process that created
 * the VM; a borrowed VM fd gets EIO. With the kvm-stats-observer series
 * (kernel-patches/), a process that may ptrace-read the VM's creator gets
 * the stats fd. Discovery then reads VMMs that never made a stats fd
 * (QEMU before a query-stats, say) without their cooperation.
 *
 * Whether the running kernel has the series is learned by behaviour, not
 * by version: a forked child asks for the stats fd of its parent's VM.
 * EIO is a stock kernel; a stats fd or EACCES means the kernel checks
 * ptrace rights, so the series (or an upstream equivalent) is there.
 *
 * A borrowed VM or vCPU fd is closed as soon as its stats fd exists:
 * holding one would keep the whole VM (its memory maps, its vCPUs) alive
 * after the VMM has gone, and would let a bug here reach KVM_RUN.
 */
#ifndef KVMSTATD_BORROW_H
#define KVMSTATD_BORROW_H

#include <stdbool.h>
#include <stddef.h>

enum borrow_support {
	BORROW_UNSUPPORTED = 0, /* stock kernel: a borrowed fd answers EIO */
	BORROW_SUPPORTED = 1,	/* an observer with ptrace rights may ask */
};

/*
 * What a non-owner's KVM_GET_STATS_FD result says about the kernel: err is
 * 0 when the call gave an fd, else its errno. BORROW_SUPPORTED,
 * BORROW_UNSUPPORTED, or -EPROTO for an answer neither kind gives.
 */
int borrow_verdict(int err);

/*
 * Ask the kernel, through kvm_path (normally "/dev/kvm"): creates a VM,
 * forks a child that asks for its stats fd, destroys the VM. Returns an
 * enum borrow_support, or -errno when it cannot tell (no /dev/kvm, no
 * access, fork failed); why then says what failed.
 */
int borrow_probe(const char *kvm_path, char *why, size_t size);

/*
 * A stats fd for the VM or vCPU behind fd number their_fd of the process
 * of pidfd (pidfd_getfd, then KVM_GET_STATS_FD, then the borrowed fd is
 * closed). Returns the new fd (O_CLOEXEC) or -errno: -EIO on a stock
 * kernel, -EACCES without the right to read the VMM, -EBADF when their_fd
 * is gone or no longer a KVM VM or vCPU fd (checked before the ioctl).
 */
int borrow_stats_fd(int pidfd, int their_fd);

/* Is this /proc/<pid>/fd link a VM fd ("anon_inode:kvm-vm")? */
bool borrow_link_is_vm(const char *link);

/* Is this link a vCPU fd ("anon_inode:kvm-vcpu:<n>")? */
bool borrow_link_is_vcpu(const char *link);

#endif
