/* SPDX-License-Identifier: MIT */
/*
 * api_exits - /api/v1/exits: the exit telemetry (bpf_layout.h) by reason,
 * with round-trip quantiles, and the vCPU threads' run delay and CPU time
 * (schedstat), per vCPU, per VM or for the host.
 *
 * Counts are totals since the vCPU started: the BPF slots keep no history,
 * so a client that wants rates asks twice (kvmstat does). Every count in a
 * slot is untrusted: entry counts are clamped to the layout's bounds and
 * reason numbers only become names from exit_reasons.c or "reason_<n>".
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "bpf_layout.h"
#include "bpfview.h"
#include "exit_reasons.h"
#include "json.h"

enum { KIND_HW, KIND_USER };
#define OTHER_KEY (~0ull)

struct xrow {
	const struct source *src;
	int kind;
	uint64_t key; /* reason, with the isa in bits 32..39 for hardware */
	char reason[EXIT_REASON_NAME_MAX];
	uint64_t count, roundtrips, sum_ns;
	uint64_t bucket[KX_HIST_BUCKETS];
	unsigned vcpus;
};

struct xrows {
	struct xrow *v;
	size_t n, cap;
	bool failed;
};

static struct xrow *find_or_add(struct xrows *x, const struct source *s, int kind, uint64_t key,
				const char *known, uint32_t reason)
{
	struct xrow *r = NULL, *p;

	/* a vCPU's rows are the last ones: look there only */
	for (size_t i = x->n; !r && i-- > 0 && x->v[i].src == s;)
		if (x->v[i].kind == kind && x->v[i].key == key)
			r = &x->v[i];
	if (!r && x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;

		p = realloc(x->v, cap * sizeof(*p));
		x->failed |= !p;
		if (p) {
			x->v = p;
			x->cap = cap;
		}
	}
	if (!r && x->n < x->cap) {
		r = &x->v[x->n++];
		memset(r, 0, sizeof(*r));
		r->src = s;
		r->kind = kind;
		r->key = key;
		r->vcpus = 1;
		if (key == OTHER_KEY)
			snprintf(r->reason, sizeof(r->reason), "other");
		else
			exit_reason_label(known, reason, r->reason, sizeof(r->reason));
	}
	return r;
}

static void add_count(struct xrows *x, const struct source *s, int kind, uint64_t key,
		      const char *known, uint32_t reason, uint64_t n)
{
	struct xrow *r = n ? find_or_add(x, s, kind, key, known, reason) : NULL;

	if (r)
		r->count += n;
}

static void read_hists(struct xrows *x, const struct source *s, const struct kx_counts *c)
{
	for (uint32_t i = 0; i < c->n_hist && i < KX_HIST_ENTRIES; i++) {
		const struct kx_hist *e = &c->hist[i];
		uint32_t kind = e->kind & 0xff, isa = e->kind >> 8 & 0xff;
		struct xrow *r;

		if (kind == KX_KIND_USER)
			r = find_or_add(x, s, KIND_USER, e->reason, exit_reason_user(e->reason),
					e->reason);
		else if (kind == KX_KIND_HW)
			r = find_or_add(x, s, KIND_HW, (uint64_t)isa << 32 | e->reason,
					exit_reason_hw(isa, e->reason), e->reason);
		else
			continue;
		if (!r)
			break; /* out of memory: the answer is a 500 (x->failed) */
		r->sum_ns += e->sum_ns;
		for (unsigned b = 0; b < KX_HIST_BUCKETS; b++) {
			r->bucket[b] += e->bucket[b];
			r->roundtrips += e->bucket[b];
		}
	}
}

/* Every reason of one vCPU, as rows of x. */
static void read_vcpu(struct xrows *x, const struct bpfview *view, const struct source *s)
{
	struct kx_counts c;

	if (bpfview_read(view, s, 0, sizeof(c), &c) < 0)
		return;
	for (unsigned r = 0; r < KX_UEXIT_REASONS; r++)
		if (c.uexit_mask >> r & 1)
			add_count(x, s, KIND_USER, r == KX_UEXIT_OTHER ? OTHER_KEY : r,
				  exit_reason_user(r), r, c.uexit[r]);
	for (uint32_t i = 0; i < c.n_hw && i < KX_HW_ENTRIES; i++)
		add_count(x, s, KIND_HW, (uint64_t)(c.hw[i].isa & 0xff) << 32 | c.hw[i].reason,
			  exit_reason_hw(c.hw[i].isa, c.hw[i].reason), c.hw[i].reason,
			  c.hw[i].count);
	add_count(x, s, KIND_HW, OTHER_KEY, NULL, 0, c.hw_overflow);
	read_hists(x, s, &c);
}

static int cmp_key(const struct xrow *a, const struct xrow *b, enum api_group g)
{
	int c = 0;

	if (g != API_GROUP_HOST)
		c = strcmp(a->src->vm->name, b->src->vm->name);
	if (!c && g != API_GROUP_HOST)
		c = (a->src->vm->id > b->src->vm->id) - (a->src->vm->id < b->src->vm->id);
	if (!c && g == API_GROUP_VCPU)
		c = a->src->vcpu - b->src->vcpu;
	if (!c)
		c = a->kind - b->kind;
	if (!c)
		c = (a->key > b->key) - (a->key < b->key);
	return c;
}

static int cmp_group(const void *a, const void *b, void *g)
{
	return cmp_key(a, b, *(const enum api_group *)g);
}

/* Largest count first, across VMs; ties (and sort=name) in key order. */
static int cmp_rank(const void *pa, const void *pb, void *g)
{
	const struct xrow *a = pa, *b = pb;
	int c = (a->count < b->count) - (a->count > b->count);

	return c ? c : cmp_key(a, b, *(const enum api_group *)g);
}

/* Merge rows of equal key (x sorted by cmp_key) into one; returns the count. */
static size_t merge(struct xrows *x, enum api_group g)
{
	size_t n = 0;

	for (size_t i = 0; i < x->n; i++) {
		struct xrow *w = &x->v[n ? n - 1 : 0], *r = &x->v[i];

		if (!n || cmp_key(w, r, g)) {
			x->v[n++] = *r;
			continue;
		}
		w->count += r->count;
		w->roundtrips += r->roundtrips;
		w->sum_ns += r->sum_ns;
		w->vcpus += r->vcpus;
		for (unsigned b = 0; b < KX_HIST_BUCKETS; b++)
			w->bucket[b] += r->bucket[b];
	}
	return n;
}

static void put_quantiles(const struct xrow *r, struct buf *b)
{
	static const double qs[] = { 0.5, 0.9, 0.99 };
	static const char *const names[] = { "p50_s", "p90_s", "p99_s" };
	double bound[KX_HIST_BUCKETS];

	for (unsigned i = 0; i < KX_HIST_BUCKETS; i++)
		bound[i] = ldexp(1.0, (int)(KX_HIST_MIN_BITS + i)) - 1;
	buf_printf(b, ",\"roundtrips\":%llu", (unsigned long long)r->roundtrips);
	buf_puts(b, ",\"mean_s\":");
	json_num(b, r->roundtrips ? (double)r->sum_ns / (double)r->roundtrips / 1e9 : NAN);
	for (unsigned i = 0; i < 3; i++) {
		buf_printf(b, ",\"%s\":", names[i]);
		json_num(b, api_quantile(r->bucket, bound, KX_HIST_BUCKETS, qs[i]) / 1e9);
	}
}

static void put_xrow(const struct xrow *r, enum api_group g, struct buf *b)
{
	buf_puts(b, "{\"kind\":");
	json_str(b, r->kind == KIND_USER ? "userspace" : "hardware");
	json_key_str(b, "reason", r->reason);
	if (g != API_GROUP_HOST)
		json_key_str(b, "vm", r->src->vm->name);
	if (g == API_GROUP_VCPU)
		buf_printf(b, ",\"vcpu\":%d", r->src->vcpu);
	else
		buf_printf(b, ",\"vcpus\":%u", r->vcpus);
	buf_printf(b, ",\"count\":%llu", (unsigned long long)r->count);
	put_quantiles(r, b);
	buf_putc(b, '}');
}

static void put_reasons(const struct snapshot *snap, const struct api_query *q,
			const struct api_filter *f, const struct bpfview *view, struct buf *b)
{
	struct xrows x = { 0 };
	enum api_group g = q->group;
	size_t n = 0, shown = 0, k = 0;

	for (size_t i = 0; !x.failed && i < snap->n_sources; i++)
		if (snap->sources[i]->vcpu >= 0 && api_filter_source(f, snap->sources[i]))
			read_vcpu(&x, view, snap->sources[i]);
	for (size_t i = 0; i < x.n; i++) /* match= and nonzero= on each vCPU's rows */
		if (api_filter_name(f, x.v[i].reason) && (!q->nonzero || x.v[i].count))
			x.v[k++] = x.v[i];
	x.n = k;
	if (x.n) {
		qsort_r(x.v, x.n, sizeof(*x.v), cmp_group, &g);
		n = merge(&x, g);
		if (q->sort != API_SORT_NAME)
			qsort_r(x.v, n, sizeof(*x.v), cmp_rank, &g);
	}
	buf_puts(b, "\"rows\":[");
	for (shown = 0; shown < n && shown < q->limit; shown++) {
		if (shown)
			buf_putc(b, ',');
		put_xrow(&x.v[shown], g, b);
	}
	buf_printf(b, "],\"total\":%zu,\"truncated\":%s", n, n > shown ? "true" : "false");
	b->failed |= x.failed;
	free(x.v);
}

/* One vCPU thread's schedstat, or a group's sum. */
struct sched_row {
	const struct source *src; /* the first member */
	uint64_t delay_ns, cpu_ns;
	unsigned vcpus;
};

static int cmp_sched(const void *pa, const void *pb, void *g)
{
	const struct sched_row *a = pa, *b = pb;
	int c = 0;

	if (*(const enum api_group *)g != API_GROUP_HOST)
		c = strcmp(a->src->vm->name, b->src->vm->name);
	if (!c)
		c = (a->src->vm->id > b->src->vm->id) - (a->src->vm->id < b->src->vm->id);
	return c ? c : a->src->vcpu - b->src->vcpu;
}

static bool same_group(const struct sched_row *a, const struct sched_row *b, enum api_group g)
{
	return g == API_GROUP_HOST || (g == API_GROUP_VM && a->src->vm == b->src->vm);
}

static void put_sched_row(const struct sched_row *r, enum api_group g, bool first, struct buf *b)
{
	buf_puts(b, first ? "{\"vm\":" : ",{\"vm\":");
	json_str(b, g == API_GROUP_HOST ? "" : r->src->vm->name);
	if (g == API_GROUP_VCPU)
		buf_printf(b, ",\"vcpu\":%d", r->src->vcpu);
	else
		buf_printf(b, ",\"vcpus\":%u", r->vcpus);
	buf_printf(b, ",\"run_delay_s\":%.9f,\"cpu_s\":%.9f}", (double)r->delay_ns / 1e9,
		   (double)r->cpu_ns / 1e9);
}

/* Run delay and CPU time of the vCPU threads, grouped like the reasons. */
static void put_sched(const struct snapshot *snap, const struct api_query *q,
		      const struct api_filter *f, struct buf *b)
{
	struct sched_row *v = calloc(snap->n_sources + 1, sizeof(*v));
	enum api_group g = q->group;
	size_t n = 0, groups = 0, shown;

	for (size_t i = 0; v && i < snap->n_sources; i++) {
		const struct source *s = snap->sources[i];

		if (s->vcpu < 0 || !api_filter_source(f, s) ||
		    !atomic_load_explicit(&s->sched_ok, memory_order_acquire))
			continue;
		v[n++] = (struct sched_row){
			s, atomic_load_explicit(&s->sched_delay_ns, memory_order_relaxed),
			atomic_load_explicit(&s->sched_run_ns, memory_order_relaxed), 1
		};
	}
	if (n)
		qsort_r(v, n, sizeof(*v), cmp_sched, &g);
	for (size_t i = 0; i < n; i++) { /* merge each group into its first row */
		struct sched_row *w = &v[groups ? groups - 1 : 0];

		if (groups && same_group(w, &v[i], g)) {
			w->delay_ns += v[i].delay_ns;
			w->cpu_ns += v[i].cpu_ns;
			w->vcpus++;
		} else {
			v[groups++] = v[i];
		}
	}
	shown = groups < q->limit ? groups : q->limit;
	buf_puts(b, ",\"sched\":[");
	for (size_t i = 0; i < shown; i++)
		put_sched_row(&v[i], g, i == 0, b);
	buf_printf(b, "],\"sched_total\":%zu,\"sched_truncated\":%s", groups,
		   groups > shown ? "true" : "false");
	b->failed |= !v;
	free(v);
}

void api_render_exits(const struct snapshot *snap, const struct api_query *q,
		      const struct api_filter *f, const struct api_env *env, struct buf *b)
{
	static const char *const groups[] = { "vcpu", "vm", "host" };

	buf_printf(b, "\"bpf\":%s,\"group\":\"%s\",", env->bpf ? "true" : "false",
		   groups[q->group]);
	put_reasons(snap, q, f, env->bpf ? env->view : NULL, b);
	put_sched(snap, q, f, b);
}
