/* SPDX-License-Identifier: MIT */
/*
 * bpfview - the worker's read-only view of the exit telemetry maps.
 *
 * The helper hands over the two frozen maps (bpf_layout.h); the worker
 * mmaps them PROT_READ, so it can read every count without a system call
 * and change none. Each tick the poller joins vCPU sources to slots by the
 * ids both carry (the VM's "kvm-<tid>" and the vCPU's "kvm-<tid>/vcpu-<n>")
 * and drops joins whose slot was reset since (its seq moved). Scrapes read
 * a joined slot directly, checking its seq before and after the copy.
 *
 * Everything in the mapping is written by BPF code and read as untrusted:
 * slot indices are bounded, strings must end inside their arrays, entry
 * counts are clamped by the readers (render_bpf.c). One view per process.
 */
#ifndef KVMSTATD_BPFVIEW_H
#define KVMSTATD_BPFVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"

/* Map both maps; the fds stay the caller's. 0 or -errno. */
int bpfview_map(int slots_fd, int meta_fd, uint32_t n_slots, uint32_t slot_size);
bool bpfview_enabled(void);
void bpfview_unmap(void);

/*
 * Poller: check the joins of live vCPU sources, and look for slots of the
 * unjoined ones when slots were claimed since the last look or added is
 * set (sources came).
 */
void bpfview_join(struct source *const *src, size_t n, bool added);

/* Poller, when s's VM is gone: keep a copy of its slot for the grace. */
void bpfview_retire(struct source *s);

/*
 * Copy len bytes at offset off of s's struct kx_counts into out: 0, or
 * -ENOENT (no slot, or it was reset meanwhile).
 */
int bpfview_read(const struct source *s, size_t off, size_t len, void *out);

struct bpfview_meta {
	uint64_t claims, slots_full, no_vcpu;
};
int bpfview_meta(struct bpfview_meta *m); /* -ENOENT when not mapped */

/* Pure: whether slot (a struct kx_slot) carries these ids, both NUL-terminated inside it. */
bool bpfview_slot_matches(const void *slot, const char *vm_id, const char *vcpu_id);

#endif
