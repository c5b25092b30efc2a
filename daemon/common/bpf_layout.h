/* SPDX-License-Identifier: MIT */
/*
 * bpf_layout - the memory layout shared by the BPF exit counter
 * (bpf/kvmexit.bpf.c), which writes it, and the worker, which reads it
 * through a read-only mmap of a frozen map.
 *
 * One slot per vCPU thread: the BPF side claims a slot the first time a
 * thread runs a vCPU, stamps it with the vCPU's and its VM's stats ids
 * (the same "kvm-<tid>/vcpu-<n>" and "kvm-<tid>" the stats fds carry) and
 * bumps seq around every reset, so a reader can tell a reused slot from
 * the one it joined. Sizes are fixed and small: reasons past the bounds
 * are counted as overflow, never written out of place. The worker trusts
 * none of it: every index and string is checked before use.
 */
#ifndef KVMSTATD_BPF_LAYOUT_H
#define KVMSTATD_BPF_LAYOUT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define KX_SLOTS_DEFAULT 4096
#define KX_UEXIT_REASONS 64 /* KVM_EXIT_* 0..62 by value; 63 gets every larger one */
#define KX_UEXIT_OTHER (KX_UEXIT_REASONS - 1)
/* KVM_RUN returned an error (the tracepoint's errno): no KVM_EXIT_* applies */
#define KX_UEXIT_RESTART (KX_UEXIT_REASONS - 3) /* -EINTR: a signal, the VMM retries */
#define KX_UEXIT_ERROR (KX_UEXIT_REASONS - 2)	/* any other errno */
#define KX_HW_ENTRIES 16			/* distinct hardware exit reasons per vCPU */
#define KX_HIST_ENTRIES 8  /* distinct (kind, reason) round-trip histograms per vCPU */
#define KX_HIST_BUCKETS 20 /* b < 19: ns of bit length <= KX_HIST_MIN_BITS + b; 19: more */
#define KX_HIST_MIN_BITS 8 /* the first bucket ends at 2^8 - 1 = 255 ns */
#define KX_ID_LEN 48	   /* struct kvm / kvm_vcpu stats_id */
#define KX_PROBES 64	   /* slots the BPF side looks at to claim one */

enum kx_kind { KX_KIND_HW = 1, KX_KIND_USER = 2 };
/* KVM's own KVM_ISA_VMX / KVM_ISA_SVM values (arch/x86/kvm/trace.h) */
enum kx_isa { KX_ISA_VMX = 1, KX_ISA_SVM = 2 };

struct kx_hw {
	__u32 reason; /* VMX basic exit reason or SVM exit code (low 32 bits) */
	__u32 isa;    /* enum kx_isa */
	__u64 count;
};

struct kx_hist {
	__u32 kind; /* enum kx_kind; for KX_KIND_HW, the isa in bits 8..15 */
	__u32 reason;
	__u64 sum_ns;
	__u64 bucket[KX_HIST_BUCKETS]; /* not cumulative */
};

/* Everything a claim resets. */
struct kx_counts {
	__u64 events;	  /* bumped on every count: unchanged means nothing to read */
	__u64 uexit_mask; /* bit r: uexit[r] is in use */
	__u32 n_hw, n_hist;
	__u64 hw_overflow;   /* hardware exits whose reason found no free entry */
	__u64 hist_overflow; /* round trips whose (kind, reason) found no free entry */
	__u64 uexit[KX_UEXIT_REASONS];
	struct kx_hw hw[KX_HW_ENTRIES];
	struct kx_hist hist[KX_HIST_ENTRIES];
};

struct kx_slot {
	__u32 seq;	 /* odd while being reset for a new owner */
	__u32 owner_tid; /* 0: never used */
	__u64 owner_start_ns;
	char vm_id[KX_ID_LEN];	 /* "kvm-<tid>" of the VM */
	char vcpu_id[KX_ID_LEN]; /* "kvm-<tid>/vcpu-<n>" */
	struct kx_counts c;
};

/* Global counters (one array element), written with atomic adds. */
struct kx_meta {
	__u64 claims;	  /* slots (re)claimed: the worker rescans when this moves */
	__u64 slots_full; /* vCPU threads that found no free slot */
	__u64 no_vcpu;	  /* KVM_RUN entries where the running vCPU was not found */
};

#endif
