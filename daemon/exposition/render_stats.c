/* SPDX-License-Identifier: MIT */
/* render_stats - see render_stats.h. Hand-rolled appends: snprintf per line costs ~8x. */
#include "render_stats.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

/*
 * One source as a family's pass over all sources reads it: its values and
 * its labels. A pass per family touches every source, so at thousands of
 * vCPUs pointers into each source's own allocations miss the caches once
 * per line; these rows and the labels arena are contiguous, in source
 * order, and small enough (64 bytes a source) to stay in the L2 cache.
 */
struct row {
	const uint64_t *v;	/* its newest values; NULL: no sample yet */
	struct render_labels l; /* the text in the arena */
};

struct samples {
	uint64_t *vals;	  /* all sources' newest values, back to back */
	struct row *rows; /* per source */
	char *arena;	  /* every source's labels, back to back, BUF_PAD at the end */
};

/* Everything this part of a page needs, passed down as one pointer. */
struct ctx {
	const struct snapshot *snap;
	struct samples sm;
	struct render_page pg; /* the caller's, copied in and back: one load less a line */
	size_t room;	       /* line_room() of the stat being rendered */
};

static int collect(const struct snapshot *snap, struct samples *sm)
{
	size_t words = 0, chars = BUF_PAD, n = snap->n_sources;

	for (size_t i = 0; i < n; i++) {
		words += snap->sources[i]->schema->data_words;
		chars += snap->sources[i]->labels_len;
	}
	sm->vals = malloc((words ? words : 1) * sizeof(uint64_t));
	sm->rows = malloc((n ? n : 1) * sizeof(*sm->rows));
	sm->arena = calloc(1, chars);
	if (!sm->vals || !sm->rows || !sm->arena)
		return -ENOMEM;
	words = chars = 0;
	for (size_t i = 0; i < n; i++) {
		const struct source *src = snap->sources[i];
		uint64_t ts, *v = sm->vals + words;

		memcpy(sm->arena + chars, src->labels, src->labels_len);
		sm->rows[i] = (struct row){ ring_read_latest(src->ring, v, &ts) == 0 ? v : NULL,
					    { sm->arena + chars, src->labels_len, &src->created } };
		words += src->schema->data_words;
		chars += src->labels_len;
	}
	return 0;
}

static void free_samples(struct samples *sm)
{
	free(sm->vals);
	free(sm->rows);
	free(sm->arena);
}

/* padded like every piece put_piece() copies; text_piece.s is not const, this is never written */
static const char plain_close_s[BUF_PAD + 3] = "} ";
static const struct text_piece plain_close = { (char *)(uintptr_t)plain_close_s, 2 };

/*
 * Copy a piece 16 bytes at a time: its source has BUF_PAD readable bytes
 * past the end (pieces and labels are allocated padded, _created text sits
 * in a 32-byte array) and the output has room reserved to spare, so a few
 * whole chunks beat a call to memcpy for these 2..60 byte pieces.
 */
static char *put_piece(char *p, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i += 16)
		memcpy(p + i, s + i, 16);
	return p + len;
}

/* A value in base units: plain integers (most stats) skip the scaling. */
static char *put_number(char *p, uint64_t raw, struct metric_scale scale)
{
	if (scale.exponent == 0 && !scale.base2)
		return p + metric_u64_text(raw, p);
	return p + metric_format_scaled(raw, scale, p);
}

/*
 * One sample line: open + labels + close + value + newline, into room
 * reserved by the caller (put_values reserves once for all of a stat's
 * lines: a check per line cost more than the copies).
 */
static char *put_line(char *p, const struct text_piece *open, const struct render_labels *l,
		      const struct text_piece *close, uint64_t raw, struct metric_scale scale)
{
	p = put_piece(p, open->s, open->len);
	p = put_piece(p, l->s, l->len);
	p = put_piece(p, close->s, close->len);
	p = put_number(p, raw, scale);
	*p++ = '\n';
	return p;
}

/* "<family>_created{labels} <seconds>\n" */
static char *put_created(char *p, const struct schema_stat *st, const struct render_labels *l)
{
	p = put_piece(p, st->created_open.s, st->created_open.len);
	p = put_piece(p, l->s, l->len);
	*p++ = '}';
	return put_piece(p, l->created->text, l->created->len);
}

/* Count the lines of one stat against max_series; 0: leave it out. */
static size_t admit(struct ctx *x, const struct schema_stat *st)
{
	size_t n = st->type == MT_HISTOGRAM ? st->size + 1u + (st->sum_index >= 0) : 1u;

	n += x->pg.created && st->type != MT_GAUGE;
	return render_admit(&x->pg, n) ? n : 0;
}

/*
 * The longest line of a stat but for its labels: longest open and close
 * piece (or the _created line's), a number, the newline.
 */
static size_t line_room(const struct schema_stat *st)
{
	size_t open = st->open[0].len, close = plain_close.len;

	if (st->type == MT_HISTOGRAM) {
		for (int i = 1; i < 3; i++)
			open = st->open[i].len > open ? st->open[i].len : open;
		for (uint32_t i = 0; i < st->size; i++)
			close = st->le_close[i].len > close ? st->le_close[i].len : close;
	}
	if (st->created_open.len > open)
		open = st->created_open.len;
	return open + close + METRIC_NUM_MAX + 1 + sizeof(((struct created *)0)->text);
}

/*
 * A histogram's buckets and _count. An empty bucket repeats the cumulative
 * count before it (most of them are empty): its digits are copied from the
 * line before instead of formatted again.
 */
static char *put_buckets(char *p, const struct schema_stat *st, const struct render_labels *l,
			 const uint64_t *vals)
{
	const struct metric_scale unit = { 0, 0 };
	const char *prev = NULL;
	size_t prev_len = 0;
	uint64_t cum = 0;

	for (uint32_t i = 0; i < st->size; i++) {
		cum += vals[i];
		p = put_piece(p, st->open[0].s, st->open[0].len);
		p = put_piece(p, l->s, l->len);
		p = put_piece(p, st->le_close[i].s, st->le_close[i].len);
		/* prev is a line back: more than 32 bytes, so no overlap */
		if (prev && vals[i] == 0)
			put_piece(p, prev, prev_len);
		else
			prev_len = (size_t)metric_u64_text(cum, p);
		prev = p;
		p += prev_len;
		*p++ = '\n';
	}
	return put_line(p, &st->open[1], l, &plain_close, cum, unit);
}

/* A stat's lines for one label set: vals holds its st->size items. */
static void put_values(struct ctx *x, const struct schema_stat *st, const struct render_labels *l,
		       const uint64_t *vals, uint64_t sum)
{
	size_t n = admit(x, st);
	char *p;

	if (!n || !buf_reserve(x->pg.b, n * (x->room + l->len)))
		return;
	p = x->pg.b->data + x->pg.b->len;
	if (st->type != MT_HISTOGRAM) {
		p = put_line(p, &st->open[0], l, &plain_close, vals[0], st->scale);
	} else {
		p = put_buckets(p, st, l, vals);
		if (st->sum_index >= 0)
			p = put_line(p, &st->open[2], l, &plain_close, sum, st->sum_scale);
	}
	if (x->pg.created && st->type != MT_GAUGE)
		p = put_created(p, st, l);
	x->pg.b->len = (size_t)(p - x->pg.b->data);
}

/* How many sources ahead a pass prefetches the values it will read. */
#define PREFETCH_AHEAD 8

static void render_part_each(struct ctx *x, const struct plan_part *part,
			     const struct schema_stat *st)
{
	const struct row *rows = x->sm.rows;
	size_t end = part->first + part->count;

	for (size_t i = part->first; i < end; i++) {
		/* one word a source, a source's data apart: no stride a prefetcher sees */
		if (i + PREFETCH_AHEAD < end && rows[i + PREFETCH_AHEAD].v)
			__builtin_prefetch(rows[i + PREFETCH_AHEAD].v + st->index);
		if (rows[i].v)
			put_values(x, st, &rows[i].l, rows[i].v + st->index,
				   st->sum_index >= 0 ? rows[i].v[st->sum_index] : 0);
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
		struct render_labels l = render_vm_labels(vm);
		bool any = false;

		memset(acc, 0, st->size * sizeof(acc[0]));
		sum = 0;
		for (; i < end && x->snap->sources[i]->vm == vm; i++) {
			if (x->sm.rows[i].v) {
				fold(st, x->sm.rows[i].v, acc, &sum);
				any = true;
			}
		}
		if (any)
			put_values(x, st, &l, acc, sum);
	}
}

static void render_family(struct ctx *x, const struct plan_family *f)
{
	buf_puts(x->pg.b, x->pg.om ? f->head->head_om : f->head->head_text);
	for (size_t p = 0; p < f->n_parts; p++) {
		const struct plan_part *part = &f->parts[p];
		const struct schema_stat *st = &part->schema->stats[part->stat];

		x->room = line_room(st);
		if (x->pg.o.vcpu_sum && part->schema->scope == SCOPE_VCPU)
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

int render_stats(const struct snapshot *snap, struct render_page *pg)
{
	struct ctx x = { .snap = snap, .pg = *pg };
	int rc = collect(snap, &x.sm);

	if (rc == 0) {
		render_info(snap, x.pg.om, x.pg.b);
		for (size_t f = 0; f < snap->n_families; f++)
			render_family(&x, &snap->families[f]);
	}
	*pg = x.pg;
	free_samples(&x.sm);
	return rc;
}
