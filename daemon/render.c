/* SPDX-License-Identifier: MIT */
/* render - see render.h. Hand-rolled appends: snprintf per line costs ~8x. */
#include "render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct samples {
	uint64_t *vals;	     /* all sources' newest values, back to back */
	size_t *offset;	     /* per source: its first value in vals */
	unsigned char *have; /* per source: 1 if it has a sample */
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
static void put_line(struct buf *b, const struct text_piece *open, const struct source *src,
		     const struct text_piece *close, uint64_t raw, struct metric_scale scale)
{
	char *p;

	if (!buf_reserve(b, open->len + src->labels_len + close->len + METRIC_NUM_MAX + 1))
		return;
	p = b->data + b->len;
	memcpy(p, open->s, open->len);
	p += open->len;
	memcpy(p, src->labels, src->labels_len);
	p += src->labels_len;
	memcpy(p, close->s, close->len);
	p += close->len;
	p += metric_format_scaled(raw, scale, p);
	*p++ = '\n';
	b->len = (size_t)(p - b->data);
}

static void put_histogram(struct buf *b, const struct schema_stat *st, const struct source *src,
			  const uint64_t *v)
{
	const struct metric_scale unit = { 0, 0 };
	uint64_t cum = 0;

	for (uint32_t i = 0; i < st->size; i++) {
		cum += v[st->index + i];
		put_line(b, &st->open[0], src, &st->le_close[i], cum, unit);
	}
	put_line(b, &st->open[1], src, &plain_close, cum, unit);
	if (st->sum_index >= 0)
		put_line(b, &st->open[2], src, &plain_close, v[st->sum_index], st->sum_scale);
}

static void put_stat(struct buf *b, const struct schema_stat *st, const struct source *src,
		     const uint64_t *v)
{
	if (st->type == MT_HISTOGRAM)
		put_histogram(b, st, src, v);
	else
		put_line(b, &st->open[0], src, &plain_close, v[st->index], st->scale);
}

static void render_family(const struct snapshot *snap, const struct samples *sm,
			  const struct plan_family *f, enum render_format fmt, struct buf *b)
{
	buf_puts(b, fmt == FMT_OPENMETRICS_100 ? f->head->head_om : f->head->head_text);
	for (size_t p = 0; p < f->n_parts; p++) {
		const struct plan_part *part = &f->parts[p];
		const struct schema_stat *st = &part->schema->stats[part->stat];

		for (size_t i = part->first; i < part->first + part->count; i++)
			if (sm->have[i])
				put_stat(b, st, snap->sources[i], sm->vals + sm->offset[i]);
	}
}

static void render_info(const struct snapshot *snap, enum render_format fmt, struct buf *b)
{
	static const char help[] =
	    "Identity of a VM: its kernel id, VMM process and how it was found.";

	if (fmt == FMT_OPENMETRICS_100)
		buf_printf(b, "# TYPE kvm_vm info\n# HELP kvm_vm %s\n", help);
	else
		buf_printf(b, "# HELP kvm_vm_info %s\n# TYPE kvm_vm_info gauge\n", help);
	for (size_t i = 0; i < snap->n_vms; i++)
		buf_puts(b, snap->vms[i]->info_text);
}

int render_metrics(const struct snapshot *snap, const struct selfstats *stats,
		   enum render_format fmt, struct buf *out)
{
	struct samples sm = { 0 };
	int rc = 0;

	if (snap && snap->n_vms) {
		rc = collect(snap, &sm);
		if (rc < 0)
			goto out;
		render_info(snap, fmt, out);
		for (size_t f = 0; f < snap->n_families; f++)
			render_family(snap, &sm, &snap->families[f], fmt, out);
	}
	if (stats)
		selfstats_render(stats, snap ? (unsigned)(snap->n_sources - snap->n_vcpus) : 0,
				 snap ? (unsigned)snap->n_vcpus : 0, fmt == FMT_OPENMETRICS_100,
				 out);
	if (fmt == FMT_OPENMETRICS_100)
		buf_put(out, "# EOF\n", 6);
	if (out->failed)
		rc = -ENOMEM;
out:
	free_samples(&sm);
	return rc;
}
