/* SPDX-License-Identifier: MIT */
/* render - see render.h. Hand-rolled appends: snprintf per line costs ~8x. */
#include "render.h"

#include "render_bpf.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

struct samples {
	uint64_t *vals;	     /* all sources' newest values, back to back */
	size_t *offset;	     /* per source: its first value in vals */
	unsigned char *have; /* per source: 1 if it has a sample */
};

/* Everything one page's rendering needs, passed down as one pointer. */
struct ctx {
	const struct snapshot *snap;
	struct samples sm;
	struct render_opts o;
	bool om;      /* OpenMetrics, else Prometheus text 0.0.4 */
	bool created; /* OpenMetrics and not turned off */
	struct buf *b;
	struct render_result res;
};

/* One series' label set and the _created value that goes with it. */
struct labels {
	const char *s;
	size_t len;
	const struct created *created;
};

static int collect(const struct snapshot *snap, struct samples *sm)
{
	size_t words = 0, n = snap->n_sources;

	for (size_t i = 0; i < n; i++)
		words += snap->sources[i]->schema->data_words;
	sm->vals = malloc((words ? words : 1) * sizeof(uint64_t));
	sm->offset = malloc((n ? n : 1) * sizeof(size_t));
	sm->have = malloc(n ? n : 1);
	if (!sm->vals || !sm->offset || !sm->have)
		return -ENOMEM;
	words = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t ts;

		sm->offset[i] = words;
		sm->have[i] = ring_read_latest(snap->sources[i]->ring, sm->vals + words, &ts) == 0;
		words += snap->sources[i]->schema->data_words;
	}
	return 0;
}

static void free_samples(struct samples *sm)
{
	free(sm->vals);
	free(sm->offset);
	free(sm->have);
}

static const struct text_piece plain_close = { "} ", 2 };

/* One sample line: open + labels + close + value + newline, one reserve. */
static void put_line(struct buf *b, const struct text_piece *open, const struct labels *l,
		     const struct text_piece *close, uint64_t raw, struct metric_scale scale)
{
	char *p;

	if (!buf_reserve(b, open->len + l->len + close->len + METRIC_NUM_MAX + 1))
		return;
	p = b->data + b->len;
	memcpy(p, open->s, open->len);
	p += open->len;
	memcpy(p, l->s, l->len);
	p += l->len;
	memcpy(p, close->s, close->len);
	p += close->len;
	p += metric_format_scaled(raw, scale, p);
	*p++ = '\n';
	b->len = (size_t)(p - b->data);
}

/* "<family>_created{labels} <seconds>\n" */
static void put_created(struct buf *b, const struct schema_stat *st, const struct labels *l)
{
	char *p;

	if (!buf_reserve(b, st->created_open.len + l->len + 1 + l->created->len))
		return;
	p = b->data + b->len;
	memcpy(p, st->created_open.s, st->created_open.len);
	p += st->created_open.len;
	memcpy(p, l->s, l->len);
	p += l->len;
	*p++ = '}';
	memcpy(p, l->created->text, l->created->len);
	b->len = (size_t)(p - b->data) + l->created->len;
}

/* Count the lines of one stat against max_series; false: leave it out. */
static bool admit(struct ctx *x, const struct schema_stat *st)
{
	size_t n = st->type == MT_HISTOGRAM ? st->size + 1u + (st->sum_index >= 0) : 1u;

	n += x->created && st->type != MT_GAUGE;
	if (x->o.max_series && x->res.series + n > x->o.max_series) {
		x->res.dropped += n;
		return false;
	}
	x->res.series += n;
	return true;
}

/* A stat's lines for one label set: vals holds its st->size items. */
static void put_values(struct ctx *x, const struct schema_stat *st, const struct labels *l,
		       const uint64_t *vals, uint64_t sum)
{
	const struct metric_scale unit = { 0, 0 };
	uint64_t cum = 0;

	if (!admit(x, st))
		return;
	if (st->type != MT_HISTOGRAM) {
		put_line(x->b, &st->open[0], l, &plain_close, vals[0], st->scale);
	} else {
		for (uint32_t i = 0; i < st->size; i++) {
			cum += vals[i];
			put_line(x->b, &st->open[0], l, &st->le_close[i], cum, unit);
		}
		put_line(x->b, &st->open[1], l, &plain_close, cum, unit);
		if (st->sum_index >= 0)
			put_line(x->b, &st->open[2], l, &plain_close, sum, st->sum_scale);
	}
	if (x->created && st->type != MT_GAUGE)
		put_created(x->b, st, l);
}

static void render_part_each(struct ctx *x, const struct plan_part *part,
			     const struct schema_stat *st)
{
	for (size_t i = part->first; i < part->first + part->count; i++) {
		const struct source *src = x->snap->sources[i];
		const uint64_t *v = x->sm.vals + x->sm.offset[i];
		struct labels l = { src->labels, src->labels_len, &src->created };

		if (x->sm.have[i])
			put_values(x, st, &l, v + st->index,
				   st->sum_index >= 0 ? v[st->sum_index] : 0);
	}
}

/* Add (or, for a peak value, take the maximum of) one vCPU's items. */
static void fold(const struct schema_stat *st, const uint64_t *v, uint64_t *acc, uint64_t *sum)
{
	bool peak = st->flags.type == KVM_STATS_TYPE_PEAK >> KVM_STATS_TYPE_SHIFT;

	for (uint32_t i = 0; i < st->size; i++)
		acc[i] = peak ? (v[st->index + i] > acc[i] ? v[st->index + i] : acc[i])
			      : acc[i] + v[st->index + i];
	if (st->sum_index >= 0)
		*sum += v[st->sum_index];
}

/*
 * Sources are sorted by VM within a part, so one VM's vCPUs are adjacent.
 * (vCPUs of one VM share one kernel and so one schema: one part each.)
 */
static void render_part_summed(struct ctx *x, const struct plan_part *part,
			       const struct schema_stat *st)
{
	uint64_t acc[SCHEMA_MAX_STAT_SIZE], sum;
	size_t i = part->first, end = part->first + part->count;

	while (i < end) {
		const struct vm_meta *vm = x->snap->sources[i]->vm;
		struct labels l = { vm->label, strlen(vm->label), &vm->created };
		bool any = false;

		memset(acc, 0, st->size * sizeof(acc[0]));
		sum = 0;
		for (; i < end && x->snap->sources[i]->vm == vm; i++) {
			if (x->sm.have[i]) {
				fold(st, x->sm.vals + x->sm.offset[i], acc, &sum);
				any = true;
			}
		}
		if (any)
			put_values(x, st, &l, acc, sum);
	}
}

static void render_family(struct ctx *x, const struct plan_family *f)
{
	buf_puts(x->b, x->om ? f->head->head_om : f->head->head_text);
	for (size_t p = 0; p < f->n_parts; p++) {
		const struct plan_part *part = &f->parts[p];
		const struct schema_stat *st = &part->schema->stats[part->stat];

		if (x->o.vcpu_sum && part->schema->scope == SCOPE_VCPU)
			render_part_summed(x, part, st);
		else
			render_part_each(x, part, st);
	}
}

static void render_info(const struct snapshot *snap, bool om, struct buf *b)
{
	static const char help[] =
	    "Identity of a VM: its kernel id, VMM process and how it was found.";

	if (om)
		buf_printf(b, "# TYPE kvm_vm info\n# HELP kvm_vm %s\n", help);
	else
		buf_printf(b, "# HELP kvm_vm_info %s\n# TYPE kvm_vm_info gauge\n", help);
	for (size_t i = 0; i < snap->n_vms; i++)
		buf_puts(b, snap->vms[i]->info_text);
}

static int render_kvm(struct ctx *x)
{
	int rc = collect(x->snap, &x->sm);

	if (rc < 0)
		return rc;
	render_info(x->snap, x->om, x->b);
	for (size_t f = 0; f < x->snap->n_families; f++)
		render_family(x, &x->snap->families[f]);
	x->res.series += render_bpf_kvm(x->snap, x->om, x->created, x->b); /* render_bpf.c */
	return 0;
}

int render_metrics(const struct snapshot *snap, const struct selfstats *stats,
		   enum render_format fmt, const struct render_opts *opts, struct buf *out,
		   struct render_result *res)
{
	struct ctx x = { .snap = snap, .om = fmt == FMT_OPENMETRICS_100, .b = out };
	int rc = 0;

	if (opts)
		x.o = *opts;
	x.created = x.om && !x.o.no_created;
	if (snap && snap->n_vms)
		rc = render_kvm(&x);
	if (rc == 0 && stats) {
		struct page_counts page = { x.res.series, x.res.dropped, x.created };

		selfstats_render(stats, snap ? (unsigned)(snap->n_sources - snap->n_vcpus) : 0,
				 snap ? (unsigned)snap->n_vcpus : 0, &page, x.om, out);
		render_bpf_self(x.om, x.created, stats->start_time, out);
	}
	if (rc == 0 && x.om)
		buf_put(out, "# EOF\n", 6);
	if (rc == 0 && out->failed)
		rc = -ENOMEM;
	free_samples(&x.sm);
	if (res)
		*res = x.res;
	return rc;
}
