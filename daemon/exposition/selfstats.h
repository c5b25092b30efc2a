/* SPDX-License-Identifier: MIT */
/*
 * selfstats - the daemon's own health, exported as kvmstatd_* metrics.
 *
 * Written by the poller thread (and, for scrapes, the HTTP thread) with
 * relaxed atomics; read by the renderer. One instance per worker.
 */
#ifndef KVMSTATD_SELFSTATS_H
#define KVMSTATD_SELFSTATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "reject.h"

/* Why the HTTP server turned a connection or request away (label reason). */
enum http_refusal {
	HREF_PER_CLIENT,    /* the client held max_connections_per_ip */
	HREF_FULL,	    /* max_connections, none could be cut */
	HREF_ROOM,	    /* cut to make room for a newcomer */
	HREF_DEADLINE,	    /* cut at request_timeout_s */
	HREF_QUERY_ARGS,    /* 414: more than max_query_args */
	HREF_FAILED_CHECKS, /* 429: the client's budget of failed checks spent */
	HREF_BUSY,	    /* 503: the slow lane's queue full */
	HREF__COUNT
};

/* What became of a password check (label result). */
enum http_check { HCHK_REMEMBERED, HCHK_PASSED, HCHK_FAILED, HCHK__COUNT };

struct selfstats {
	atomic_uint_fast64_t polls;
	atomic_uint_fast64_t poll_wall_ns_last, poll_cpu_ns_last;
	atomic_uint_fast64_t poll_wall_ns_sum, poll_cpu_ns_sum;
	atomic_uint_fast64_t missed_ticks;
	atomic_uint_fast64_t read_errors;
	atomic_uint_fast64_t scrapes, scrape_ns_sum; /* requests for /metrics, time to a body */
	atomic_uint_fast64_t renders, render_ns_sum; /* pages rendered (once per tick) */
	atomic_uint_fast64_t compressions, compress_ns_sum; /* gzip of a rendered page */
	atomic_uint_fast64_t series_dropped;		    /* left out by [metrics] max_series */
	uint64_t max_series;				    /* the cap (0: none), for the page */
	atomic_uint_fast64_t rejected[REJ__COUNT];
	atomic_uint_fast64_t sources_refused; /* stats fds whose schema was refused */
	atomic_uint_fast64_t stats_skipped_unknown, stats_skipped_invalid, stats_skipped_collision;
	atomic_uint_fast64_t vms_exited;
	atomic_uint_fast64_t vms_discovered;  /* the helper's total */
	atomic_uint_fast64_t worker_starts;   /* the helper's count; 1 = never restarted */
	atomic_uint_fast64_t bpf_enabled;     /* 1 once the exit telemetry maps are mapped */
	atomic_uint_fast64_t history_bytes;   /* memory of every source's history ring */
	atomic_uint_fast64_t history_refused; /* sources left without one: history_max_mib */
	uint64_t history_limit_bytes;	      /* [poll] history_max_mib, in bytes */
	double history_s;		      /* the window one history holds, in seconds */
	atomic_uint_fast64_t http_refused[HREF__COUNT];
	atomic_uint_fast64_t http_checks[HCHK__COUNT];
	double start_time;	  /* unix seconds: this worker's start */
	double helper_start_time; /* unix seconds: the helper's, for its totals */
};

static inline void stat_add(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline void stat_set(atomic_uint_fast64_t *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t stat_get(const atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* What the page being rendered holds so far (render.c's result). */
struct page_counts {
	size_t series, dropped;
	bool created; /* OpenMetrics _created samples wanted ([metrics] created) */
};

/* Append the kvmstatd_* families. om: OpenMetrics spelling. */
void selfstats_render(const struct selfstats *st, unsigned n_vms, unsigned n_vcpus,
		      const struct page_counts *page, int om, struct buf *out);

#endif
