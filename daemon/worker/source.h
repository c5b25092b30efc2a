/* SPDX-License-Identifier: MIT */
/*
 * source - one VM (vm_meta) and one stats fd (source) as the worker sees it.
 *
 * Both are reference counted because the HTTP thread keeps using them through a
 * published snapshot while the poller has already dropped them. Everything
 * a scrape reads is immutable after creation except the ring, which has its
 * own lock-free protocol, and the fd, which only the poller touches.
 */
#ifndef KVMSTATD_SOURCE_H
#define KVMSTATD_SOURCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring.h"
#include "schema.h"

/*
 * OpenMetrics _created: " <unix seconds>.<ms>\n", ready to follow a label
 * set. A lower bound of when the kernel's counters started: the moment the
 * VMM registered them (right after it created them), or for a discovered
 * VM the VMM process' start. Never later than the true start, so a
 * reader that injects a zero at _created never invents an increase.
 */
struct created {
	char text[32];
	unsigned char len;
};

void created_set(struct created *c, uint64_t unix_ns);

struct vm_meta {
	atomic_int refs;
	uint32_t id; /* the helper's number for this VM */
	pid_t pid;   /* VMM process */
	uid_t uid;
	char name[128];		       /* label value, unescaped */
	char kernel_id[SCHEMA_ID_MAX]; /* "kvm-<pid>" from the VM stats fd */
	char comm[32];
	const char *how;	/* "registered", "discovered" or "borrowed" */
	char *label;		/* vm="..." escaped, shared by every series of the VM */
	char *info_text;	/* the kvm_vm_info sample line */
	struct created created; /* when its counters started (a lower bound) */
};

struct source {
	atomic_int refs;
	struct vm_meta *vm;
	struct schema *schema;
	struct ring *ring;
	/*
	 * The history: the single-value stats of every sample of the last
	 * [poll] history_s (schema->scalar_index says which words), for rates
	 * over a window and sparklines. NULL when history_s is 0. Apart from
	 * ring so that the poll's ring stays small and histograms, most of a
	 * vCPU's words, are not kept history_s long.
	 */
	struct ring *hist;
	int fd;	      /* poller thread only; -1 once closed */
	int vcpu;     /* -1: the VM's own stats */
	char *labels; /* vm="..." or vm="...",vcpu="N" */
	size_t labels_len;
	struct created created; /* the VM's unless told otherwise */
	char id[SCHEMA_ID_MAX]; /* the kernel's id: "kvm-<tid>" or "kvm-<tid>/vcpu-<n>" */
	/*
	 * Exit telemetry (bpfview.c), vCPU sources only. The poller joins the
	 * source to the BPF slot stamped with its id: bpf_join is 0, or
	 * (slot seq << 32) | (slot index + 1), and readers trust a slot only
	 * while its seq still equals the one joined. When the VM goes, the
	 * poller keeps a copy of the slot in bpf_last for the exit grace.
	 */
	atomic_uint_fast64_t bpf_join;
	_Atomic(void *) bpf_last; /* struct kx_slot *, owned */
	/* schedstat of the vCPU thread (poller thread only: sched_fd) */
	int sched_fd;
	atomic_bool sched_ok;
	atomic_uint_fast64_t sched_run_ns, sched_delay_ns;
};

int vm_meta_new(struct vm_meta **out, uint32_t id, pid_t pid, uid_t uid, const char *name,
		const char *kernel_id, const char *comm, const char *how);
/* Set once the VM stats fd's id is read, before the VM is published;
 * an empty id falls back to "kvm-<pid>". */
int vm_meta_set_kernel_id(struct vm_meta *vm, const char *kernel_id);
/* Defaults to the time of vm_meta_new. */
void vm_meta_set_created(struct vm_meta *vm, uint64_t unix_ns);
struct vm_meta *vm_meta_ref(struct vm_meta *vm);
void vm_meta_unref(struct vm_meta *vm);

/* Takes ownership of fd and of the schema reference. */
int source_new(struct source **out, struct vm_meta *vm, struct schema *schema, int fd, int vcpu,
	       uint32_t ring_slots);
/* Give s a history of slots samples (before it is published). 0 or -errno. */
int source_set_history(struct source *s, uint32_t slots);
struct source *source_ref(struct source *s);
void source_unref(struct source *s);
void source_close_fd(struct source *s);

#endif
