/* SPDX-License-Identifier: MIT */
/*
 * render_schedstat - the vCPU threads' schedstat families on /metrics:
 * kvm_vcpu_run_delay_seconds (time waiting on a run queue) and
 * kvm_vcpu_thread_cpu_seconds (CPU time), as counters.
 *
 * The figures are the poller's (schedstat.h, from the files the helper
 * opened for each vCPU thread); a vCPU without them has no series. Whether
 * the families are on the page at all is the page's switch
 * (render_config.schedstat), decided once from the configuration.
 */
#ifndef KVMSTATD_RENDER_SCHEDSTAT_H
#define KVMSTATD_RENDER_SCHEDSTAT_H

#include "render_page.h"
#include "snapshot.h"
#include "statfilter.h"

/*
 * Both families into pg, each unless filter ([metrics] include/exclude;
 * NULL: keep all) leaves it out, under the page's render_opts: vcpu_sum
 * sums a VM's vCPUs into one series, every series is counted against
 * max_series.
 */
void render_schedstat(const struct snapshot *snap, const struct stat_filter *filter,
		      struct render_page *pg);

#endif
