/* SPDX-License-Identifier: MIT */
/*
 * helper_sched - open the schedstat file of each vCPU thread for the
 * worker, which opens no files once sandboxed (its seccomp filter refuses
 * open and openat: a filter cannot tell one path from another).
 *
 * /proc/<pid>/task/<tid>/schedstat is world-readable (CONFIG_SCHED_INFO)
 * and needs no privilege; the tid is the one in the vCPU stats fd's own
 * id "kvm-<tid>/vcpu-<n>", the thread that created the vCPU, which runs
 * it in QEMU and in our demo VMM. The path resolves only while tid is a
 * thread of pid, so the file opened is that thread's; it keeps answering
 * for that thread alone (ESRCH once it exits), whoever reuses the tid.
 * A VMM whose vCPUs run on other threads than those that created them
 * would get the creators' figures: documented, not detectable here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "fdcheck.h"
#include "fdpass.h"
#include "helper_state.h"
#include "log.h"

static int open_schedstat(const struct sysops *ops, pid_t pid, int stats_fd)
{
	struct fdcheck_result res;
	char path[64];
	int fd;

	if (ops->check_fd(ops->ctx, stats_fd, FD_VCPU_STATS, &res) < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)res.id_pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

void helper_send_schedstat(struct helper *h, const struct hvm *vm, unsigned first, unsigned end)
{
	struct ipc_schedstat m = { .hdr = { IPC_SCHEDSTAT, sizeof(m) } };
	int fds[IPC_MAX_VCPU_FDS];

	if (!config_schedstat(h->cfg))
		return;
	m.vm_id = vm->id;
	for (unsigned i = first; i < end && h->ipc_fd >= 0; i++) {
		int fd = open_schedstat(&h->ops, vm->proc->pid, vm->vcpu_fds[i]);

		if (fd >= 0) {
			m.vcpu[m.n] = vm->vcpus[i];
			fds[m.n++] = fd;
		}
		if (m.n == IPC_MAX_VCPU_FDS || (i + 1 == end && m.n)) {
			if (fdpass_send(h->ipc_fd, &m, sizeof(m), fds, m.n) < 0)
				log_debug("VM \"%s\": schedstat fds not handed over", vm->name);
			fdpass_close_all(fds, m.n);
			m.n = 0;
		}
	}
	fdpass_close_all(fds, m.n);
}
