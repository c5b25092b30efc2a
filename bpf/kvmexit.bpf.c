// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * kvmexit - per-vCPU counts of KVM exits by reason and histograms of the
 * exit -> re-entry round trip, aggregated in the kernel into an
 * mmapable array the worker reads without a system call.
 *
 * Only tracepoints are used (tp_btf): they are what loads on every kernel
 * we met, and they are stable interfaces. The programs:
 *
 *   kvm_fpu (load=1)    fires inside KVM_RUN once the vCPU is loaded: the
 *                       running struct kvm_vcpu is the current task's
 *                       preempt notifier (checked against the vCPU's pid).
 *                       Claims the thread's slot; closes a pending
 *                       userspace round trip.
 *   kvm_userspace_exit  counts KVM_EXIT_* by reason (no vCPU pointer: the
 *                       thread's slot says whose it is).
 *   kvm_exit/kvm_entry  hardware exits by VMX or SVM reason, and their
 *                       round trip. They do not fire on every backend.
 *
 * A thread keeps its slot (task storage) while it runs the same vCPU; a
 * new vCPU, or the same struct kvm_vcpu address reused by a new vCPU
 * (one that has never entered the guest), resets it under a new seq. A
 * slot whose owning thread is gone is free again.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf_layout.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by the helper before loading: the slots map's size. */
const volatile __u32 n_slots = KX_SLOTS_DEFAULT;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct kx_slot);
	__uint(max_entries, KX_SLOTS_DEFAULT);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct kx_meta);
	__uint(max_entries, 1);
} meta SEC(".maps");

/* Per thread: which vCPU it runs, its slot, the exits awaiting re-entry. */
struct kx_task {
	__u64 vcpu; /* struct kvm_vcpu * */
	__u64 user_exit_ns, hw_exit_ns;
	__u64 retry_ns; /* no free slot: not before then */
	__u32 slot;	/* index + 1; 0: none */
	__u32 user_reason, hw_reason, hw_isa;
	__u32 entered; /* the vCPU has been in the guest since the claim */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kx_task);
} tasks SEC(".maps");

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

/* Vendor structs: only their exit-reason fields, relocated by CO-RE. */
union vmx_exit_reason___kx {
	u32 full;
} __attribute__((preserve_access_index));

struct vcpu_vmx___kx {
	union vmx_exit_reason___kx exit_reason;
} __attribute__((preserve_access_index));

struct vmcb_control_area___kx {
	u32 exit_code;
} __attribute__((preserve_access_index));

struct vmcb___kx {
	struct vmcb_control_area___kx control;
} __attribute__((preserve_access_index));

struct vcpu_svm___kx {
	struct vmcb___kx *vmcb;
} __attribute__((preserve_access_index));

#define RETRY_NS 1000000000ull /* a thread without a slot tries again after 1 s */

static struct kx_meta *meta_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&meta, &zero);
}

static void meta_add(int which)
{
	struct kx_meta *m = meta_get();

	if (!m)
		return;
	if (which == 0)
		__sync_fetch_and_add(&m->claims, 1);
	else if (which == 1)
		__sync_fetch_and_add(&m->slots_full, 1);
	else
		__sync_fetch_and_add(&m->no_vcpu, 1);
}

static struct kx_slot *slot_at(__u32 idx)
{
	return bpf_map_lookup_elem(&slots, &idx);
}

/* The vCPU this thread has loaded: KVM's preempt notifier is the first. */
static struct kvm_vcpu *running_vcpu(struct task_struct *t)
{
	struct hlist_node *n = BPF_CORE_READ(t, preempt_notifiers.first);
	struct kvm_vcpu *v;

	if (!n)
		return NULL;
	v = (void *)n - bpf_core_field_offset(struct kvm_vcpu, preempt_notifier.link);
	if ((void *)BPF_CORE_READ(v, pid) != (void *)BPF_CORE_READ(t, thread_pid))
		return NULL;
	return v;
}

static bool owner_alive(__u32 tid, __u64 start_ns)
{
	struct task_struct *o;
	bool alive;

	if (!tid)
		return false;
	o = bpf_task_from_pid((s32)tid);
	if (!o)
		return false;
	alive = o->start_time == start_ns;
	bpf_task_release(o);
	return alive;
}

/* Take s (seq was `seq`, even) for thread t and vCPU v: false if raced. */
static bool take(struct kx_slot *s, __u32 seq, struct kvm_vcpu *v, struct task_struct *t)
{
	volatile __u64 *w = (volatile __u64 *)&s->c; /* volatile: no memset call */
	struct kvm *kvm;

	if (__sync_val_compare_and_swap(&s->seq, seq, seq + 1) != seq)
		return false;
	for (int i = 0; i < (int)(sizeof(s->c) / sizeof(__u64)); i++)
		w[i] = 0;
	s->owner_tid = (__u32)t->pid;
	s->owner_start_ns = t->start_time;
	BPF_CORE_READ_STR_INTO(&s->vcpu_id, v, stats_id);
	kvm = BPF_CORE_READ(v, kvm);
	BPF_CORE_READ_STR_INTO(&s->vm_id, kvm, stats_id);
	__sync_fetch_and_add(&s->seq, 1);
	meta_add(0);
	return true;
}

/* A slot for st's thread, now running v: its own again, or a free one. */
static struct kx_slot *claim(struct kx_task *st, struct kvm_vcpu *v, struct task_struct *t,
			     __u64 now)
{
	__u32 n = n_slots, tid = (__u32)t->pid, start;
	struct kx_slot *s;

	st->vcpu = (__u64)v;
	st->entered = 0;
	st->user_exit_ns = st->hw_exit_ns = 0;
	if (st->slot && (s = slot_at(st->slot - 1)) && s->owner_tid == tid &&
	    s->owner_start_ns == t->start_time) {
		__u32 seq = s->seq;

		if (!(seq & 1) && take(s, seq, v, t))
			return s;
	}
	st->slot = 0;
	if (!n || now < st->retry_ns)
		return NULL;
	start = tid * 2654435761u;
	for (__u32 i = 0; i < KX_PROBES; i++) {
		__u32 idx = (start + i) % n, seq;

		s = slot_at(idx);
		if (!s)
			break;
		seq = s->seq;
		if ((seq & 1) || owner_alive(s->owner_tid, s->owner_start_ns))
			continue;
		if (take(s, seq, v, t)) {
			st->slot = idx + 1;
			return s;
		}
	}
	st->retry_ns = now + RETRY_NS;
	meta_add(1);
	return NULL;
}

/* The slot of this thread for v, claiming one when v is new to it. */
static struct kx_slot *slot_for(struct kx_task *st, struct kvm_vcpu *v, struct task_struct *t,
				__u64 now)
{
	struct kx_slot *s = NULL;
	int last = 0;

	/* a vCPU that never entered the guest is new, even at a reused address */
	if (bpf_core_field_exists(v->arch.last_vmentry_cpu))
		last = BPF_CORE_READ(v, arch.last_vmentry_cpu);
	if (st->vcpu == (__u64)v && st->slot && !(last < 0 && st->entered))
		s = slot_at(st->slot - 1);
	if (!s || s->owner_tid != (__u32)t->pid)
		s = claim(st, v, t, now);
	if (s && last >= 0)
		st->entered = 1;
	return s;
}

/* The thread's slot when it has one (no claim: no vCPU pointer here). */
static struct kx_slot *own_slot(struct kx_task **stp)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct kx_task *st = bpf_task_storage_get(&tasks, t, 0, 0);
	struct kx_slot *s;

	*stp = st;
	if (!st || !st->slot)
		return NULL;
	s = slot_at(st->slot - 1);
	return s && s->owner_tid == (__u32)t->pid ? s : NULL;
}

static __u32 bucket_of(__u64 ns)
{
	__u32 bits = 0;

	if (ns >> 32) {
		bits += 32;
		ns >>= 32;
	}
	if (ns >> 16) {
		bits += 16;
		ns >>= 16;
	}
	if (ns >> 8) {
		bits += 8;
		ns >>= 8;
	}
	if (ns >> 4) {
		bits += 4;
		ns >>= 4;
	}
	if (ns >> 2) {
		bits += 2;
		ns >>= 2;
	}
	if (ns >> 1) {
		bits += 1;
		ns >>= 1;
	}
	bits += (__u32)ns; /* bit length */
	if (bits <= KX_HIST_MIN_BITS)
		return 0;
	bits -= KX_HIST_MIN_BITS;
	return bits < KX_HIST_BUCKETS - 1 ? bits : KX_HIST_BUCKETS - 1;
}

static void observe(struct kx_slot *s, __u32 kind, __u32 reason, __u64 ns)
{
	__u32 n = s->c.n_hist, b = bucket_of(ns);

	for (__u32 i = 0; i < KX_HIST_ENTRIES; i++) {
		struct kx_hist *h = &s->c.hist[i];

		if (i == n) { /* first free entry: this (kind, reason) starts here */
			h->kind = kind;
			h->reason = reason;
			s->c.n_hist = n + 1;
		} else if (i > n || h->kind != kind || h->reason != reason) {
			continue;
		}
		h->sum_ns += ns;
		if (b < KX_HIST_BUCKETS)
			h->bucket[b]++;
		s->c.events++;
		return;
	}
	s->c.hist_overflow++;
}

SEC("tp_btf/kvm_fpu")
int BPF_PROG(kx_fpu, int load)
{
	struct task_struct *t;
	struct kvm_vcpu *v;
	struct kx_task *st;
	struct kx_slot *s;
	__u64 now;

	if (!load)
		return 0;
	t = bpf_get_current_task_btf();
	v = running_vcpu(t);
	if (!v) {
		meta_add(2);
		return 0;
	}
	st = bpf_task_storage_get(&tasks, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st)
		return 0;
	now = bpf_ktime_get_ns();
	s = slot_for(st, v, t, now);
	if (s && st->user_exit_ns && now >= st->user_exit_ns)
		observe(s, KX_KIND_USER, st->user_reason, now - st->user_exit_ns);
	st->user_exit_ns = 0;
	return 0;
}

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(kx_userspace_exit, __u32 reason, int err)
{
	struct kx_task *st;
	struct kx_slot *s = own_slot(&st);
	__u32 r = reason < KX_UEXIT_OTHER ? reason : KX_UEXIT_OTHER;

	if (!s)
		return 0;
	/* KVM_RUN failed: run->exit_reason is stale, the errno says what happened */
	if (err < 0)
		reason = r = err == -4 /* EINTR */ ? KX_UEXIT_RESTART : KX_UEXIT_ERROR;
	barrier_var(r); /* or the compiler drops the mask the verifier needs */
	r &= KX_UEXIT_REASONS - 1;
	s->c.uexit[r]++;
	s->c.uexit_mask |= 1ull << r;
	s->c.events++;
	st->user_reason = reason;
	st->user_exit_ns = bpf_ktime_get_ns();
	return 0;
}

static __u32 hw_reason(struct kvm_vcpu *v, __u32 isa)
{
	if (isa == KX_ISA_VMX && bpf_core_type_exists(struct vcpu_vmx___kx))
		return BPF_CORE_READ((struct vcpu_vmx___kx *)v, exit_reason.full) & 0xffff;
	if (isa == KX_ISA_SVM && bpf_core_type_exists(struct vcpu_svm___kx))
		return BPF_CORE_READ((struct vcpu_svm___kx *)v, vmcb, control.exit_code);
	return 0xffffffffu; /* unknown vendor: counted, named reason_4294967295 */
}

/*
 * Some kernels (Debian's 6.12; not 6.18) type a tp_btf pointer argument
 * "trusted or NULL": the verifier refuses any arithmetic on vcpu (the
 * field reads of hw_reason) until it has been compared with NULL. KVM
 * never passes NULL; the check costs a compare and lets those kernels load
 * the object.
 */
SEC("tp_btf/kvm_exit")
int BPF_PROG(kx_exit, struct kvm_vcpu *vcpu, __u32 isa)
{
	struct task_struct *t;
	struct kx_task *st;
	struct kx_slot *s;
	__u32 reason, n;
	__u64 now;

	if (!vcpu) {
		meta_add(2);
		return 0;
	}
	t = bpf_get_current_task_btf();
	st = bpf_task_storage_get(&tasks, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	now = bpf_ktime_get_ns();
	reason = hw_reason(vcpu, isa);
	if (!st)
		return 0;
	s = slot_for(st, vcpu, t, now);
	st->hw_exit_ns = now;
	st->hw_reason = reason;
	st->hw_isa = isa;
	if (!s)
		return 0;
	n = s->c.n_hw;
	for (__u32 i = 0; i < KX_HW_ENTRIES; i++) {
		struct kx_hw *h = &s->c.hw[i];

		if (i == n) {
			h->reason = reason;
			h->isa = isa;
			s->c.n_hw = n + 1;
		} else if (i > n || h->reason != reason || h->isa != isa) {
			continue;
		}
		h->count++;
		s->c.events++;
		return 0;
	}
	s->c.hw_overflow++;
	s->c.events++;
	return 0;
}

SEC("tp_btf/kvm_entry")
int BPF_PROG(kx_entry, struct kvm_vcpu *vcpu)
{
	struct kx_task *st;
	struct kx_slot *s = own_slot(&st);
	__u64 now;

	if (!st || !st->hw_exit_ns)
		return 0;
	now = bpf_ktime_get_ns();
	if (s && st->vcpu == (__u64)vcpu && now >= st->hw_exit_ns)
		observe(s, KX_KIND_HW | st->hw_isa << 8, st->hw_reason, now - st->hw_exit_ns);
	st->hw_exit_ns = 0;
	return 0;
}
