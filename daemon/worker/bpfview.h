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
 * counts are clamped by the readers (render_bpf.c).
 *
 * The worker owns its view and lends it to the renderer (render_config):
 * the poller maps, joins and retires; scrapes only read. Mapping is
 * published last, so a reader that sees a view enabled sees it whole.
 */
#ifndef KVMSTATD_BPFVIEW_H
#define KVMSTATD_BPFVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"

struct bpfview;

/* An unmapped view. 0 or -ENOMEM. */
int bpfview_new(struct bpfview **out);
/* Unmap and free (NULL-safe); no scrape may be reading it any more. */
void bpfview_free(struct bpfview *v);

/* Map both maps; the fds stay the caller's. 0 or -errno. */
int bpfview_map(struct bpfview *v, int slots_fd, int meta_fd, uint32_t n_slots, uint32_t slot_size);
bool bpfview_enabled(const struct bpfview *v); /* v may be NULL: false */
void bpfview_unmap(struct bpfview *v);

/*
 * Poller: check the joins of live vCPU sources, and look for slots of the
 * unjoined ones when slots were claimed since the last look or added is
 * set (sources came).
 */
void bpfview_join(struct bpfview *v, struct source *const *src, size_t n, bool added);

/* Poller, when s's VM is gone: keep a copy of its slot for the grace. */
void bpfview_retire(const struct bpfview *v, struct source *s);

/*
 * Copy len bytes at offset off of s's struct kx_counts into out: 0, or
 * -ENOENT (no slot, or it was reset meanwhile). v may be NULL: only a
 * retired source's copy is read then.
 */
int bpfview_read(const struct bpfview *v, const struct source *s, size_t off, size_t len,
		 void *out);

struct bpfview_meta {
	uint64_t claims, slots_full, no_vcpu;
};
int bpfview_meta(const struct bpfview *v, struct bpfview_meta *m); /* -ENOENT when not mapped */

/* Pure: whether slot (a struct kx_slot) carries these ids, both NUL-terminated inside it. */
bool bpfview_slot_matches(const void *slot, const char *vm_id, const char *vcpu_id);

#endif
