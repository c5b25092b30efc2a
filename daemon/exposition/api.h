/* SPDX-License-Identifier: MIT */
/*
 * api - the read-only JSON query interface (/api/v1/...), docs/api.md.
 *
 * Three questions, each a GET with query parameters: which VMs are there
 * (vms), what do their KVM stats say now and how fast do they move over a
 * window of the history (stats), and why do their vCPUs exit, how long the
 * round trips take and how long the vCPU threads wait to run (exits).
 *
 * Pure: a query and a snapshot in, a status and JSON bytes out. The query
 * is parsed one parameter at a time by api_query_set(), which bounds every
 * value and refuses what it does not know (the fuzzer's entry point); the
 * HTTP glue is api_http.c. Every answer is bounded: at most limit rows
 * (API_LIMIT_MAX), spark points (API_SPARK_MAX) and history reads per
 * request (API_SPARK_READS_MAX); what was cut is flagged "truncated".
 */
#ifndef KVMSTATD_API_H
#define KVMSTATD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "snapshot.h"

#define API_PATTERN_MAX 256 /* bytes of a vm or match regex */
#define API_LIMIT_DEFAULT 100
#define API_LIMIT_MAX 1000
#define API_SPARK_MAX 120
#define API_WINDOW_MAX 3600
#define API_SPARK_READS_MAX 2000000u /* history reads for sparklines, per request */

enum api_endpoint { API_VMS, API_STATS, API_EXITS };
enum api_group { API_GROUP_VCPU, API_GROUP_VM, API_GROUP_HOST };
enum api_sort { API_SORT_RATE, API_SORT_VALUE, API_SORT_NAME };

struct api_query {
	enum api_endpoint ep;
	char vm[API_PATTERN_MAX + 1];	 /* ERE on the VM name, anchored; "": every VM */
	char match[API_PATTERN_MAX + 1]; /* ERE on the stat (or exit reason) name */
	int vcpu;			 /* -1: every vCPU (and the VM's own stats) */
	unsigned window_s;		 /* rates over this; 0: the last poll interval */
	unsigned limit, spark;
	enum api_group group;
	enum api_sort sort;
	bool nonzero; /* leave out rows whose value is 0 */
};

/* What the answer needs beyond the snapshot. */
struct bpfview;

struct api_env {
	double now_unix; /* "time" */
	unsigned interval_ms;
	double history_s;	    /* the window histories hold */
	bool bpf;		    /* exit telemetry mapped */
	const struct bpfview *view; /* its slots (NULL: none) */
};

/* "/api/v1/<name>" -> its endpoint; -ENOENT for anything else. */
int api_endpoint_of(const char *path, enum api_endpoint *ep);

void api_query_init(struct api_query *q, enum api_endpoint ep);

/*
 * One query parameter (value NULL: given without '='). 0, or -EINVAL with
 * a sentence in why naming the parameter and what it accepts.
 */
int api_query_set(struct api_query *q, const char *key, const char *value, char *why,
		  size_t why_size);

/* Answer q from snap into out. Returns the HTTP status (200 or 400). */
unsigned api_render(const struct snapshot *snap, const struct api_query *q,
		    const struct api_env *env, struct buf *out);

/* {"status":"error","errorType":type,"error":why}, as Prometheus' API. */
void api_error(struct buf *out, const char *type, const char *why);

/*
 * Per-second rate of a counter between two samples, scaled by factor
 * (units per raw step); NaN when it cannot be told (no time passed, the
 * counter went down: a reset).
 */
double api_rate(uint64_t v_new, uint64_t t_new_ns, uint64_t v_old, uint64_t t_old_ns,
		double factor);

/*
 * Quantile q (0..1) of a histogram of n non-cumulative buckets whose
 * bucket b ends at bound[b] (the last is open: its lower bound is the
 * answer), interpolated linearly inside a bucket as Prometheus'
 * histogram_quantile does. NaN when the histogram is empty.
 */
double api_quantile(const uint64_t *bucket, const double *bound, size_t n, double q);

#endif
