/* SPDX-License-Identifier: MIT */
/*
 * ipc - the closed list of messages between helper and worker.
 *
 * The helper->worker direction carries descriptors the helper has already
 * checked; the worker still checks every message exactly (type, length,
 * descriptor count, string termination): a compromised helper is not the
 * threat, but a bug must not become an out-of-bounds read. An unknown or
 * malformed message ends the conversation (the worker exits). A message
 * naming a VM the worker has already retired is normal (the VMM exited
 * meanwhile): its fds are closed and the worker goes on. A message lost
 * because its fds did not fit (out of fds) is logged and counted.
 */
#ifndef KVMSTATD_IPC_H
#define KVMSTATD_IPC_H

#include <stdint.h>

#include <stddef.h>

#include "kvmstat_proto.h"
#include "reject.h"

enum ipc_type {
	IPC_ADD_VM = 1, /* fds: pidfd, VM stats fd, vCPU stats fds */
	IPC_ADD_VCPUS,	/* fds: vCPU stats fds */
	IPC_REMOVE_VM,	/* no fds */
	IPC_REJECTED,	/* no fds: a registration the helper refused */
	IPC_HELLO,	/* no fds: first message to every worker (restarts, totals) */
	IPC_SYNC,	/* no fds: answer with IPC_STATUS once everything before is done */
	IPC_BPF_MAPS,	/* fds: the frozen slot map and meta map of the exit telemetry */
	IPC_SCHEDSTAT,	/* fds: /proc/<pid>/task/<tid>/schedstat of vCPU threads */
	IPC__END
};

/* The one message the other way, worker -> helper (ipc_check_status). */
#define IPC_STATUS 0x100

/* How the helper came by a VM's fds (label source="..." of kvm_vm_info). */
enum ipc_origin {
	ORIGIN_REGISTERED = 0, /* the VMM sent its stats fds */
	ORIGIN_DISCOVERED,     /* copies of stats fds the VMM held */
	ORIGIN_BORROWED,       /* made from the VMM's VM and vCPU fds (borrow.h) */
	ORIGIN__COUNT
};

#define IPC_MAX_VCPU_FDS KVMSTAT_MAX_FDS_PER_MSG
#define IPC_HEARTBEAT_MAX_MS 3600000u /* an hour: no watchdog is slower */
#define IPC_MAX_BPF_SLOTS 65536	      /* [daemon] bpf_slots at most */

struct ipc_hdr {
	uint32_t type;
	uint32_t len; /* whole message */
};

struct ipc_add_vm {
	struct ipc_hdr hdr;
	uint32_t vm_id;
	int32_t pid;
	uint32_t uid;
	uint32_t n_vcpus;		  /* vCPU fds following the pidfd and the VM fd */
	uint32_t origin;		  /* enum ipc_origin */
	uint64_t created_ns;		  /* unix ns: when its counters started, at the latest */
	char name[KVMSTAT_NAME_MAX + 16]; /* NUL-terminated, checked by the helper */
	char comm[32];
};

struct ipc_add_vcpus {
	struct ipc_hdr hdr;
	uint32_t vm_id;
	uint32_t n_vcpus;
	uint64_t created_ns; /* unix ns, as in ipc_add_vm */
};

struct ipc_remove_vm {
	struct ipc_hdr hdr;
	uint32_t vm_id;
};

struct ipc_rejected {
	struct ipc_hdr hdr;
	uint32_t reason; /* enum reject_reason */
};

/*
 * The helper outlives workers: a replacement learns how many workers came
 * before it and the helper's running totals, so counters stay continuous.
 */
struct ipc_hello {
	struct ipc_hdr hdr;
	uint32_t worker_starts;	       /* 1 for the first worker */
	uint32_t heartbeat_ms;	       /* IPC_STATUS at least this often (0: only when asked) */
	uint64_t rejected[REJ__COUNT]; /* registrations refused so far, by reason */
	uint64_t discovered;	       /* VMs found by discovery so far */
	uint64_t helper_start_ns;      /* unix ns: when these totals started */
};

/*
 * Everything the helper sent before has been handled (VMs loaded, HTTP
 * served): the worker answers with an IPC_STATUS carrying seq.
 */
struct ipc_sync {
	struct ipc_hdr hdr;
	uint32_t seq;
};

/*
 * Worker -> helper, never with fds: the answer to IPC_SYNC, a heartbeat
 * from the poll loop every heartbeat_ms (the helper turns it into the
 * systemd watchdog ping), and news when the number of sources changed.
 * Sent with MSG_DONTWAIT: a helper that does not read must not stall the
 * poller (its missing pings then tell systemd).
 */
struct ipc_status {
	struct ipc_hdr hdr;
	uint32_t sync_seq; /* the last IPC_SYNC handled (0: none yet) */
	uint32_t n_vms;	   /* live VMs polled (not those in their exit grace) */
	uint32_t n_vcpus;  /* their vCPU sources */
	uint32_t reserved;
};

/* Exit telemetry is on: map both read-only (layout: bpf_layout.h). */
struct ipc_bpf_maps {
	struct ipc_hdr hdr;
	uint32_t n_slots;   /* entries of the slot map */
	uint32_t slot_size; /* sizeof(struct kx_slot) as the helper was built */
};

/*
 * The schedstat files of some vCPU threads of a VM, opened by the helper
 * (the sandboxed worker opens no files): fd i belongs to vcpu[i].
 */
struct ipc_schedstat {
	struct ipc_hdr hdr;
	uint32_t vm_id;
	uint32_t n;
	int32_t vcpu[IPC_MAX_VCPU_FDS];
};

union ipc_msg {
	struct ipc_hdr hdr;
	struct ipc_add_vm add_vm;
	struct ipc_add_vcpus add_vcpus;
	struct ipc_remove_vm remove_vm;
	struct ipc_rejected rejected;
	struct ipc_hello hello;
	struct ipc_sync sync;
	struct ipc_bpf_maps bpf_maps;
	struct ipc_schedstat schedstat;
};

/*
 * Check one received message exactly: type, length, descriptor count,
 * termination of strings, ranges of enums. Pure (no I/O): the worker calls
 * it before acting, the fuzzer calls it on random bytes. Returns 0 or
 * -EBADMSG with a sentence in why.
 */
int ipc_check(const void *msg, size_t len, size_t n_fds, char *why, size_t why_size);

/* The same for the helper's side: one IPC_STATUS, exactly. */
int ipc_check_status(const void *msg, size_t len, size_t n_fds, char *why, size_t why_size);

#endif
