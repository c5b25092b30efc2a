/* SPDX-License-Identifier: MIT */
/*
 * render_bpf - the exit telemetry's families on /metrics: exits by reason
 * (hardware and to userspace) and exit round-trip histograms; plus the
 * kvmstatd_bpf_* self-metrics.
 *
 * Kept apart from render_stats (the KVM stats fds' families): these series
 * come from the BPF slots (bpfview.h), not from rings, and carry a reason
 * label whose cardinality [metrics] reasons_include, reasons_exclude and
 * reasons_top bound. Every count read from a slot is untrusted: entry
 * counts are clamped to the layout's bounds, and reason numbers only ever
 * become names from our tables or "reason_<n>".
 */
#ifndef KVMSTATD_RENDER_BPF_H
#define KVMSTATD_RENDER_BPF_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "bpf_layout.h"
#include "bpfview.h"
#include "buf.h"
#include "config.h"
#include "metric.h"
#include "render_page.h"
#include "snapshot.h"
#include "statfilter.h"

/* The reasons filters and bucket bounds, compiled once; read-only while pages render. */
struct render_bpf {
	regex_t inc, exc;
	bool has_inc, has_exc;
	unsigned top; /* reasons_top: 0 keeps every reason */
	char le[KX_HIST_BUCKETS][METRIC_NUM_MAX];
};

/* Compile cfg's [metrics] reasons_* into rb. 0 or -EINVAL with why. */
int render_bpf_init(struct render_bpf *rb, const struct config *cfg, char *why, size_t why_size);
void render_bpf_fini(struct render_bpf *rb);

/*
 * The exit telemetry's families of snap's vCPUs, read through view (none
 * while it is not mapped), into pg after the KVM stats' families and
 * under the same render_opts: vcpu_sum sums each VM's vCPUs (by reason;
 * the histograms bucket by bucket) into one series without the vcpu
 * label, and every series' lines are counted against max_series. filter
 * ([metrics] include/exclude/histograms; NULL: keep all) names families
 * by their exported names.
 */
void render_bpf_kvm(const struct render_bpf *rb, const struct bpfview *view,
		    const struct stat_filter *filter, const struct snapshot *snap,
		    struct render_page *pg);

/* kvmstatd_bpf_*: created_s is the worker's start (OpenMetrics _created). view may be NULL. */
void render_bpf_self(const struct bpfview *view, bool om, bool created, double created_s,
		     struct buf *b);

#endif
