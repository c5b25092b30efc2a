/* SPDX-License-Identifier: MIT */
/*
 * render - a snapshot in, exposition text out. Pure: no sockets, no locks;
 * the only shared state it touches is each source's ring, read lock-free.
 *
 * Every source's newest sample is copied once, then lines are written
 * family by family (both formats want a family's samples together).
 * Which families exist is the snapshot's business (its plan already left
 * out what the config excludes); how their samples are shaped is decided
 * here by render_opts.
 */
#ifndef KVMSTATD_RENDER_H
#define KVMSTATD_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "selfstats.h"
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

/*
 * A page being rendered. render_bpf.c writes the exit telemetry's
 * families into the same page, under the same options and cap.
 */
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
 * lines then count as dropped).
 */
bool render_admit(struct render_page *pg, size_t lines);

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
 * snap may be NULL (nothing registered yet); stats may be NULL (no
 * self-metrics); opts may be NULL (defaults: per vCPU, _created, no cap);
 * res may be NULL.
 */
int render_metrics(const struct snapshot *snap, const struct selfstats *stats,
		   enum render_format fmt, const struct render_opts *opts, struct buf *out,
		   struct render_result *res);

#endif
