/* SPDX-License-Identifier: MIT */
/* ipc - see ipc.h: the exact check of one helper -> worker message. */
#include "ipc.h"

#include "reason.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const type_name[IPC__END] = {
	[IPC_ADD_VM] = "ADD_VM",     [IPC_ADD_VCPUS] = "ADD_VCPUS", [IPC_REMOVE_VM] = "REMOVE_VM",
	[IPC_REJECTED] = "REJECTED", [IPC_HELLO] = "HELLO",	    [IPC_SYNC] = "SYNC",
	[IPC_BPF_MAPS] = "BPF_MAPS", [IPC_SCHEDSTAT] = "SCHEDSTAT",
};

static const size_t type_size[IPC__END] = {
	[IPC_ADD_VM] = sizeof(struct ipc_add_vm),
	[IPC_ADD_VCPUS] = sizeof(struct ipc_add_vcpus),
	[IPC_REMOVE_VM] = sizeof(struct ipc_remove_vm),
	[IPC_REJECTED] = sizeof(struct ipc_rejected),
	[IPC_HELLO] = sizeof(struct ipc_hello),
	[IPC_SYNC] = sizeof(struct ipc_sync),
	[IPC_BPF_MAPS] = sizeof(struct ipc_bpf_maps),
	[IPC_SCHEDSTAT] = sizeof(struct ipc_schedstat),
};

static int check_add_vm(const struct ipc_add_vm *m, size_t n_fds, char *why, size_t why_size)
{
	if (m->n_vcpus > IPC_MAX_VCPU_FDS)
		return reason_set(why, why_size, -EBADMSG, "ADD_VM: n_vcpus %u is more than %d",
				  m->n_vcpus, IPC_MAX_VCPU_FDS);
	if (n_fds != 2 + (size_t)m->n_vcpus)
		return reason_set(why, why_size, -EBADMSG,
				  "ADD_VM: %zu fds, expected 2 + n_vcpus %u", n_fds, m->n_vcpus);
	if (!memchr(m->name, '\0', sizeof(m->name)))
		return reason_set(why, why_size, -EBADMSG, "ADD_VM: name is not NUL-terminated");
	if (!memchr(m->comm, '\0', sizeof(m->comm)))
		return reason_set(why, why_size, -EBADMSG, "ADD_VM: comm is not NUL-terminated");
	if (m->origin >= ORIGIN__COUNT)
		return reason_set(why, why_size, -EBADMSG, "ADD_VM: origin %u out of range",
				  m->origin);
	return 0;
}

int ipc_check(const void *msg, size_t len, size_t n_fds, char *why, size_t why_size)
{
	union ipc_msg m;
	uint32_t type;

	if (why && why_size)
		why[0] = '\0';
	if (len < sizeof(m.hdr))
		return reason_set(why, why_size, -EBADMSG,
				  "message of %zu bytes is shorter than a header", len);
	memset(&m, 0, sizeof(m));
	memcpy(&m, msg, len < sizeof(m) ? len : sizeof(m)); /* any alignment */
	type = m.hdr.type;
	if (m.hdr.len != len)
		return reason_set(why, why_size, -EBADMSG, "header says %u bytes, received %zu",
				  m.hdr.len, len);
	if (type < IPC_ADD_VM || type >= IPC__END)
		return reason_set(why, why_size, -EBADMSG, "unknown message type %u", type);
	if (len != type_size[type])
		return reason_set(why, why_size, -EBADMSG, "%s: %zu bytes, expected %zu",
				  type_name[type], len, type_size[type]);
	switch (type) {
	case IPC_ADD_VM:
		return check_add_vm(&m.add_vm, n_fds, why, why_size);
	case IPC_ADD_VCPUS:
		if (m.add_vcpus.n_vcpus < 1 || m.add_vcpus.n_vcpus > IPC_MAX_VCPU_FDS)
			return reason_set(why, why_size, -EBADMSG,
					  "ADD_VCPUS: n_vcpus %u is not 1..%d", m.add_vcpus.n_vcpus,
					  IPC_MAX_VCPU_FDS);
		if (n_fds != m.add_vcpus.n_vcpus)
			return reason_set(why, why_size, -EBADMSG,
					  "ADD_VCPUS: %zu fds, expected n_vcpus %u", n_fds,
					  m.add_vcpus.n_vcpus);
		return 0;
	case IPC_REJECTED:
		if (m.rejected.reason >= REJ__COUNT)
			return reason_set(why, why_size, -EBADMSG,
					  "REJECTED: reason %u out of range", m.rejected.reason);
		break;
	case IPC_BPF_MAPS:
		if (m.bpf_maps.n_slots < 1 || m.bpf_maps.n_slots > IPC_MAX_BPF_SLOTS)
			return reason_set(why, why_size, -EBADMSG,
					  "BPF_MAPS: n_slots %u is not 1..%d", m.bpf_maps.n_slots,
					  IPC_MAX_BPF_SLOTS);
		if (n_fds != 2)
			return reason_set(why, why_size, -EBADMSG, "BPF_MAPS: %zu fds, expected 2",
					  n_fds);
		return 0;
	case IPC_SCHEDSTAT:
		if (m.schedstat.n < 1 || m.schedstat.n > IPC_MAX_VCPU_FDS)
			return reason_set(why, why_size, -EBADMSG, "SCHEDSTAT: n %u is not 1..%d",
					  m.schedstat.n, IPC_MAX_VCPU_FDS);
		if (n_fds != m.schedstat.n)
			return reason_set(why, why_size, -EBADMSG,
					  "SCHEDSTAT: %zu fds, expected n %u", n_fds,
					  m.schedstat.n);
		for (uint32_t i = 0; i < m.schedstat.n; i++)
			if (m.schedstat.vcpu[i] < 0)
				return reason_set(why, why_size, -EBADMSG,
						  "SCHEDSTAT: vcpu %d is negative",
						  m.schedstat.vcpu[i]);
		return 0;
	case IPC_HELLO:
		if (m.hello.heartbeat_ms > IPC_HEARTBEAT_MAX_MS)
			return reason_set(why, why_size, -EBADMSG,
					  "HELLO: heartbeat_ms %u is more than %u",
					  m.hello.heartbeat_ms, IPC_HEARTBEAT_MAX_MS);
		break;
	default: /* IPC_REMOVE_VM, IPC_SYNC: nothing but the size and the fd count */
		break;
	}
	if (n_fds)
		return reason_set(why, why_size, -EBADMSG, "%s: %zu fds, expected none",
				  type_name[type], n_fds);
	return 0;
}

int ipc_check_status(const void *msg, size_t len, size_t n_fds, char *why, size_t why_size)
{
	struct ipc_status m;

	if (why && why_size)
		why[0] = '\0';
	if (len != sizeof(m))
		return reason_set(why, why_size, -EBADMSG, "status of %zu bytes, expected %zu", len,
				  sizeof(m));
	memcpy(&m, msg, sizeof(m));
	if (m.hdr.type != IPC_STATUS || m.hdr.len != len)
		return reason_set(why, why_size, -EBADMSG, "type %u, length %u: not a status",
				  m.hdr.type, m.hdr.len);
	if (m.reserved)
		return reason_set(why, why_size, -EBADMSG, "status: reserved is %u, must be 0",
				  m.reserved);
	if (n_fds)
		return reason_set(why, why_size, -EBADMSG, "status: %zu fds, expected none", n_fds);
	return 0;
}
