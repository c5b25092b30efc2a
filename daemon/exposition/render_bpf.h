/* SPDX-License-Identifier: MIT */
/*
 * render_bpf - the exit telemetry's families on /metrics: exits by reason
 * (hardware and to userspace), exit round-trip histograms, and the vCPU
 * threads' schedstat figures; plus the kvmstatd_bpf_* self-metrics.
 *
 * Kept apart from render.c (which renders the KVM stats fds' families):
 * these series come from the BPF slots (bpfview.h), not from rings, and
 * carry a reason label whose cardinality [metrics] reasons_include,
 * reasons_exclude and reasons_top bound. Every count read from a slot is
 * untrusted: entry counts are clamped to the layout's bounds, and reason
 * numbers only ever become names from our tables or "reason_<n>".
 */
#ifndef KVMSTATD_RENDER_BPF_H
#define KVMSTATD_RENDER_BPF_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "render.h"
#include "snapshot.h"

/* Compile the [metrics] filters (cfg NULL: free them). 0 or -EINVAL + why. */
int render_bpf_configure(const struct config *cfg, char *why, size_t why_size);

/*
 * The KVM-side families, into pg after the KVM stats' families and under
 * the same render_opts: vcpu_sum sums each VM's vCPUs (by reason; the
 * histograms bucket by bucket) into one series without the vcpu label,
 * and every series' lines are counted against max_series (render_admit).
 */
void render_bpf_kvm(const struct snapshot *snap, struct render_page *pg);

/* kvmstatd_bpf_*: created_s is the worker's start (OpenMetrics _created). */
void render_bpf_self(bool om, bool created, double created_s, struct buf *b);

#endif
