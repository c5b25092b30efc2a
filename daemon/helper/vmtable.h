/* SPDX-License-Identifier: MIT */
/*
 * vmtable - the helper's one table of VMM processes, their VMs and vCPUs.
 *
 * Registration (helper_request.c) and discovery (discover.c) both ask it;
 * it owns what they share:
 *   - processes: one entry per VMM, with a copy of its pidfd and its uid;
 *   - VMs and vCPUs: our own copy of every accepted stats fd (to recognise
 *     a VM sent again, and to hand everything to a new worker);
 *   - names: one rule for a VM without a name of its own (vmtable_name);
 *   - limits and charges: max_vms_per_peer, max_vcpus_per_vm, max_sources,
 *     the fd limit, and each uid's max_sources_per_uid budget (policy.h);
 *   - the exit grace: a dropped VM's fds stay counted and charged for
 *     exit_grace_ms (and the worker's next tick), since the worker keeps
 *     them that long.
 * A VM or vCPUs join the table through vmtable_add_vm/vmtable_add_vcpus
 * only: all of them, counted, charged and marked for the worker, or none.
 *
 * It does no I/O of its own but through struct sysops (fd copies aside),
 * and never talks to the worker or to epoll: what the worker has not been
 * told yet (a VM, new vCPUs, a removal) and the processes nobody watches
 * yet stay marked here, and the helper's loop does them
 * (helper_worker_update).
 */
#ifndef KVMSTATD_VMTABLE_H
#define KVMSTATD_VMTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "ipc.h"
#include "kvmstat_proto.h"
#include "policy.h"
#include "sysops.h"

/* The helper loop's epoll tags: a process's entry is one (its pidfd). */
enum helper_tag { TAG_CONN = 1, TAG_PROC };

/* A VMM process with VMs; its pidfd tells when it is gone. */
struct hproc {
	enum helper_tag tag; /* first: epoll data points here */
	pid_t pid;
	uid_t uid; /* the uid it was first known by: charges go to it */
	int pidfd; /* our copy */
	unsigned n_vms;
	char comm[32];
	bool registers; /* it registered a VM once: discovery leaves it alone */
	bool watched;	/* the loop polls its pidfd */
};

/* A VM in the table. */
struct hvm {
	uint32_t id; /* never reused: the worker's name for it */
	struct hproc *proc;
	uint64_t handle; /* the VMM's handle; 0 and unused for discovered VMs */
	bool has_handle; /* registered (or adopted by a registration) */
	enum ipc_origin origin;
	char name[KVMSTAT_NAME_MAX + 16];
	unsigned n_vcpus;
	int *vcpus;	     /* vCPU indices */
	int *vcpu_fds;	     /* our copies, parallel to vcpus */
	int stats_fd;	     /* our copy of its VM stats fd */
	int borrowed_fd;     /* ORIGIN_BORROWED: the VMM's VM fd number it came from */
	uint64_t created_ns; /* unix ns: registration, or the VMM's start if discovered */
	/* what the worker has been told */
	bool told;		  /* IPC_ADD_VM with vCPUs [0, n_told) */
	unsigned n_told;	  /* vCPUs [n_told, n_vcpus) are news */
	uint64_t news_created_ns; /* when those started (a lower bound) */
};

/* Fds of a dropped VM that the worker keeps until its grace ends. */
struct vt_retiring {
	uint64_t until_ns; /* CLOCK_MONOTONIC */
	unsigned n_fds;
	uid_t uid;	  /* whose budget they are charged to */
	uint32_t tell_id; /* != 0: tell the worker to drop VM tell_id */
};

struct vmtable {
	const struct config *cfg; /* replaced in place by a reload */
	struct policy *policy;	  /* per-uid budgets; NULL: none */
	const struct sysops *ops;
	struct hproc **procs;
	size_t n_procs;
	struct hvm **vms;
	size_t n_vms;
	unsigned n_sources; /* fds the worker holds: live VMs + those in grace */
	uint32_t next_vm_id;
	struct vt_retiring *retiring;
	size_t n_retiring;
};

/* A new VM: who holds it, its fds, and how it came. */
struct vt_new_vm {
	pid_t pid; /* the VMM; a new one's pidfd is copied and its comm read */
	uid_t uid;
	int pidfd;
	int stats_fd; /* copied */
	enum ipc_origin origin;
	const char *name; /* from vmtable_name */
	bool has_handle;
	uint64_t handle;
	int borrowed_fd;     /* ORIGIN_BORROWED, else -1 */
	uint64_t created_ns; /* unix ns, a lower bound */
	const int *vcpus;    /* n_vcpus indices and fds (copied) */
	const int *vcpu_fds;
	size_t n_vcpus;
};

void vmtable_init(struct vmtable *t, const struct config *cfg, struct policy *policy,
		  const struct sysops *ops);
/* Close every fd and free everything (the charges go with the policy). */
void vmtable_fini(struct vmtable *t);

struct hproc *vmtable_proc(const struct vmtable *t, pid_t pid);
struct hvm *vmtable_by_handle(const struct vmtable *t, pid_t pid, uint64_t handle);
/* A VM whose stats fd is the same open file as fd of process holder (0: an
 * fd of ours), among the VMs of process owner (0: of every process). */
struct hvm *vmtable_by_file(const struct vmtable *t, pid_t holder, int fd, pid_t owner);
/* Does vm hold the same open file as fd of process holder (0: ours) as a vCPU? */
bool vmtable_has_vcpu_file(const struct vmtable *t, const struct hvm *vm, pid_t holder, int fd);
/* The VM that discovery made from fd number their_fd of pid's VM fds. */
struct hvm *vmtable_borrowed(const struct vmtable *t, pid_t pid, int their_fd);
/* Where vm keeps vCPU index vcpu (its vcpus[] slot), or -1. */
int vmtable_vcpu_slot(const struct hvm *vm, int vcpu);
bool vmtable_has_discovered(const struct vmtable *t, pid_t pid);
bool vmtable_name_taken(const struct vmtable *t, const char *name);

/*
 * The name of a new VM of pid. wanted (may be "") wins if it is free;
 * strict: a taken wanted name is a refusal, not a reason to fall back.
 * Without one: "kvm-<pid>" (the kernel's id of the VM), and for the
 * second and further VMs of a process "kvm-<pid>-<handle>", where handle
 * is the VMM's own name for the VM: its vm_handle when it registers, the
 * fd number it holds the VM by when discovery found it. 0, or -EEXIST with
 * why.
 */
int vmtable_name(const struct vmtable *t, const char *wanted, bool strict, pid_t pid,
		 uint64_t handle, char *out, size_t size, char *why, size_t why_size);

/*
 * Room for n_fds more stats fds, n_vcpus of them vCPUs of vm (NULL: a new
 * VM of p, or of a process not known yet when p is NULL): the limits,
 * not the uid's budget. 0, or -ENOSPC with why. Releases what has left
 * its grace first.
 */
int vmtable_room(struct vmtable *t, const struct hproc *p, const struct hvm *vm, size_t n_vcpus,
		 size_t n_fds, char *why, size_t why_size);

/*
 * Add a VM with its vCPUs: room, the uid's budget, the copies of every fd;
 * all of it, or nothing. 0 with *out, or -ENOSPC (a limit) or -ENOMEM
 * (out of memory or fds) with why.
 */
int vmtable_add_vm(struct vmtable *t, const struct vt_new_vm *n, struct hvm **out, char *why,
		   size_t why_size);

/*
 * Add n vCPUs (indices vcpus, fds copied) to vm, which the worker learns
 * as started at created_ns: all or none, as vmtable_add_vm.
 */
int vmtable_add_vcpus(struct vmtable *t, struct hvm *vm, const int *vcpus, const int *fds, size_t n,
		      uint64_t created_ns, char *why, size_t why_size);

/*
 * vm leaves the table; its fds stay counted and charged for the grace.
 * tell: the worker must hear of it (an unregistration; a VMM's exit it
 * sees itself).
 */
void vmtable_drop_vm(struct vmtable *t, struct hvm *vm, bool tell);
/* The process exited: every VM of it leaves, and the process. */
void vmtable_forget_proc(struct vmtable *t, struct hproc *p);
/* A new worker knows nothing: every VM is news again, no removal is. */
void vmtable_untell_all(struct vmtable *t);

#endif
