/* SPDX-License-Identifier: MIT */
/*
 * render_page - what every part of a /metrics page shares: the page being
 * written, its options, the max_series cap, and label sets. The parts
 * (render_stats, render_schedstat, render_bpf) sit on top of it, and
 * render.c, the page, calls them in page order; no part calls another.
 */
#ifndef KVMSTATD_RENDER_PAGE_H
#define KVMSTATD_RENDER_PAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "snapshot.h"

enum render_format { FMT_TEXT_004, FMT_OPENMETRICS_100 };

#define CONTENT_TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_OM "application/openmetrics-text; version=1.0.0; charset=utf-8"

struct render_opts {
	/*
	 * vCPU stats summed per VM (one series per VM, no vcpu label):
	 * counters, gauges and histograms (bucket by bucket) add up; peak
	 * values take the maximum.
	 */
	bool vcpu_sum;
	bool no_created; /* leave out OpenMetrics _created lines */
	/*
	 * Most KVM sample lines per page (0: no cap), exit telemetry's
	 * included. A series whose lines would pass it is left out whole
	 * (never half a histogram), in page order, so the same series are
	 * left out while the VMs stay the same.
	 */
	size_t max_series;
};

struct render_result {
	size_t series;	/* KVM sample lines written (kvm_vm_info and kvmstatd_* not counted) */
	size_t dropped; /* sample lines left out by max_series */
};

/* A page being rendered: every part writes into it under the same options and cap. */
struct render_page {
	struct render_opts o;
	bool om;      /* OpenMetrics, else Prometheus text 0.0.4 */
	bool created; /* OpenMetrics and not turned off */
	struct buf *b;
	struct render_result res;
};

/*
 * Count one series' sample lines (its _created line included) against
 * max_series: true to write them, false to leave the series out (its
 * lines then count as dropped). Inline: the stats' families call it once
 * a series, on the renderer's hottest path.
 */
static inline bool render_admit(struct render_page *pg, size_t lines)
{
	if (pg->o.max_series && pg->res.series + lines > pg->o.max_series) {
		pg->res.dropped += lines;
		return false;
	}
	pg->res.series += lines;
	return true;
}

/* One series' label set and the _created value that goes with it. */
struct render_labels {
	const char *s;
	size_t len;
	const struct created *created;
};

/* A source's own labels (vm, and vcpu for a vCPU). */
struct render_labels render_source_labels(const struct source *s);

/* The labels of vCPU series summed per VM (vcpu_series = per_vm): vm only. */
struct render_labels render_vm_labels(const struct vm_meta *vm);

/*
 * The next run of one VM's vCPU sources at or after *start: true with
 * [*start, *end), false when there is none.
 */
bool render_next_vcpu_run(const struct snapshot *snap, size_t *start, size_t *end);

#endif
