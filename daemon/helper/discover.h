/* SPDX-License-Identifier: MIT */
/*
 * discover - find VMs whose VMM holds stats fds but never registered.
 *
 * A scan reads /proc/<pid>/fd of every process (the link names only: it
 * never touches a foreign fd's file) and, for a process holding
 * kvm-vm-stats or kvm-vcpu-stats fds we do not have yet, takes copies
 * with pidfd_getfd. Each copy passes the same checks as a registered fd
 * (fdcheck, and the owner rule: the id's tid is a thread of the holder,
 * so a tool that merely borrowed fds is not mistaken for the VMM), the
 * same limits and the same per-uid policy (the VM table's). A VM already
 * known (the same open file, by kcmp) is skipped: one VM is one source
 * however it came.
 *
 * The kernel does not link a vCPU stats fd to its VM. vCPU fds are given
 * to the process's VM when it has exactly one and discovery found it;
 * with several, they are left out (the log says so).
 *
 * A process connected to the registration socket (the caller's skip
 * list), or with a VM it registered, is left to register its own VMs.
 *
 * On a kernel that lets an observer ask for stats fds (borrow.h), a
 * process holding no VM stats fd but a VM fd (an unmodified VMM) has its
 * VM and vCPU fds borrowed and turned into stats fds: the same checks
 * follow, and the borrowed fds are closed at once. Such a VM is
 * remembered by the VMM's fd number, since we keep no file to compare.
 *
 * It only changes the VM table; the helper's loop tells the worker,
 * watches the new processes and schedules the scans (every [discovery]
 * interval_s, shortly after a VMM registers or exits). Scans need
 * CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH for other users' processes.
 */
#ifndef KVMSTATD_DISCOVER_H
#define KVMSTATD_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vmtable.h"

struct candidates;

struct discovery {
	struct vmtable *vt;
	bool borrow;	      /* the kernel gives stats fds to observers (borrow.h) */
	char *cmdline;	      /* a VMM's command line, for its -name */
	size_t cmdline_size;  /* 256 KiB: libvirt's command lines run long */
	struct candidates *c; /* the fds of the process being looked at */
};

int discovery_init(struct discovery *d, struct vmtable *vt, bool borrow);
void discovery_fini(struct discovery *d);

/* What a scan found. */
struct scan_counts {
	unsigned procs, vms, vcpus; /* processes looked at, new VMs, new vCPUs */
};

/* One process: its new VMs and vCPUs into the table, counted in *n. */
void discover_pid(struct discovery *d, pid_t pid, struct scan_counts *n);

/* Every process in /proc but skip[0..n_skip), counted in *n. */
void discover_scan(struct discovery *d, const pid_t *skip, size_t n_skip, struct scan_counts *n);

#endif
