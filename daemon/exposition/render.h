/* SPDX-License-Identifier: MIT */
/*
 * render - a snapshot in, a /metrics page out. Pure: no sockets, no locks,
 * no state of its own; everything it reads is passed in (the snapshot,
 * the self-metrics, the render_config), and the only shared state it
 * touches is each source's ring and the exit telemetry's slots, both read
 * lock-free.
 *
 * The page is its parts in order: the KVM stats fds' families
 * (render_stats), the vCPU threads' schedstat families (render_schedstat),
 * the exit telemetry's (render_bpf), then the kvmstatd_* self-metrics.
 * Each part writes into one render_page (render_page.h) under the same
 * options and max_series cap; no part calls another.
 */
#ifndef KVMSTATD_RENDER_H
#define KVMSTATD_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "render_page.h"
#include "selfstats.h"
#include "snapshot.h"
#include "statfilter.h"

struct bpfview;	   /* bpfview.h */
struct render_bpf; /* render_bpf.h */

/*
 * What shapes every page, decided once from the configuration by its
 * owner (the worker) and read-only while pages render. Everything it
 * points to is borrowed and must outlive every render.
 */
struct render_config {
	struct render_opts opts; /* [metrics] vcpu_series, created, max_series */
	/*
	 * [metrics] include/exclude/histograms, as compiled once by the
	 * worker for its snapshots: the families that have no schema
	 * (schedstat, exit telemetry) are filtered by the same one. NULL:
	 * keep every family.
	 */
	const struct stat_filter *filter;
	bool schedstat;		      /* the vCPU threads' schedstat families */
	const struct render_bpf *bpf; /* exit telemetry's reasons settings; NULL: none */
	const struct bpfview *view;   /* the exit telemetry's slots; NULL: none */
};

/*
 * snap may be NULL (nothing registered yet); stats may be NULL (no
 * self-metrics); rc may be NULL (per vCPU, _created, no cap, no filter,
 * the KVM stats fds' families only); res may be NULL.
 */
int render_metrics(const struct snapshot *snap, const struct selfstats *stats,
		   enum render_format fmt, const struct render_config *rc, struct buf *out,
		   struct render_result *res);

#endif
