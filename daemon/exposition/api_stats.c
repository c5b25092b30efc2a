/* SPDX-License-Identifier: MIT */
/*
 * api_stats - /api/v1/stats: the KVM stats' counters and gauges, their
 * current values and their rates over a window of the history, per vCPU,
 * per VM or for the host, ranked and cut to a limit; sparklines on request.
 *
 * A request reads each matching source's newest sample and the one that
 * starts the window (two reads of its history ring, whatever the number of
 * stats), makes one raw row per (source, stat), groups raw rows by the key
 * group= asks for, ranks the groups and writes the first limit of them.
 * Only the rows written get sparklines, each a walk back through its
 * members' histories, within API_SPARK_READS_MAX reads per request.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "json.h"

/* One stat of one source. */
struct raw {
	uint64_t key; /* group key: what group= merges is equal (group_key) */
	const struct source *src;
	const struct schema_stat *st;
	const struct ring *ring; /* the history, or the poll ring without one */
	uint32_t word;		 /* of the stat in that ring's samples */
	double value, rate;	 /* rate NaN: a gauge, or not known yet */
};

/* A group of raw rows: raws[first, first + count) */
struct row {
	size_t first, count;
	unsigned vcpus;
	double value, rate;
};

struct stats_req {
	const struct api_query *q;
	const struct api_filter *f;
	uint64_t interval_ns;
	struct raw *raws;
	size_t n_raws, cap_raws;
	uint64_t *cur, *old; /* one sample of the source being read */
	size_t words;
	size_t spark_reads;
	bool spark_cut;
	/* stat names seen, numbered for the group key; the keys of the last
	 * schema read (sources come sorted by schema: few recomputations) */
	const char **names;
	size_t n_names;
	const struct schema *keyed;
	uint16_t *stat_keys;
};

#define STAT_KEY_MAX (1u << 14)

/* The number of a stat name in this request; -1 past STAT_KEY_MAX names. */
static int name_key(struct stats_req *rq, const char *name)
{
	const char **p = NULL;
	int key = -1;

	for (size_t i = 0; key < 0 && i < rq->n_names; i++)
		if (!strcmp(rq->names[i], name))
			key = (int)i;
	if (key < 0 && rq->n_names < STAT_KEY_MAX)
		p = realloc(rq->names, (rq->n_names + 1) * sizeof(*p));
	if (key < 0 && p) {
		rq->names = p;
		rq->names[rq->n_names] = name;
		key = (int)rq->n_names++;
	}
	return key;
}

static bool key_schema(struct stats_req *rq, const struct schema *sc)
{
	bool ok = true;
	uint16_t *k;

	if (rq->keyed != sc) { /* sources come sorted by schema: rarely */
		k = realloc(rq->stat_keys, (sc->n_stats ? sc->n_stats : 1) * sizeof(*k));
		ok = k != NULL;
		if (ok)
			rq->stat_keys = k;
		for (size_t i = 0; ok && i < sc->n_stats; i++) {
			int n = name_key(rq, sc->stats[i].desc_name);

			ok = n >= 0;
			k[i] = (uint16_t)(ok ? n : 0);
		}
		rq->keyed = ok ? sc : NULL;
	}
	return ok;
}

/*
 * What group= merges, as one number: the VM (not for host), the scope,
 * the vCPU (only for vcpu) and the stat name's number. Sorting by it
 * brings each group's members together without a string compare.
 */
static uint64_t group_key(enum api_group g, const struct source *s, uint16_t stat)
{
	uint64_t k = (uint64_t)(s->schema->scope == SCOPE_VCPU) << 31 | stat;

	if (g != API_GROUP_HOST)
		k |= (uint64_t)s->vm->id << 32;
	if (g == API_GROUP_VCPU)
		k |= (uint64_t)(s->vcpu + 1) << 14;
	return k;
}

static double factor_of(struct metric_scale s)
{
	return s.base2 ? ldexp(1.0, s.exponent) : pow(10.0, s.exponent);
}

/* Timestamp of the sample back samples before the newest; false if gone. */
static bool ts_at(const struct ring *r, uint32_t back, uint64_t *ts)
{
	uint64_t none;

	return ring_read_back(r, back, 0, 0, &none, ts) == 0;
}

/*
 * How far back the window starts: the newest sample at least window_ns
 * older than t_new, else the oldest kept. Ticks are regular, so the first
 * guess is close and the walks are short. 0: no older sample.
 */
static uint32_t window_back(const struct ring *r, uint64_t t_new, uint64_t window_ns,
			    uint64_t interval_ns)
{
	uint64_t count = ring_count(r), kept = ring_slots(r) - 1, ts;
	uint64_t guess = interval_ns ? window_ns / interval_ns : 1;
	uint32_t oldest = 0, back = 0;

	if (count >= 2 && kept >= 2) {
		oldest = (uint32_t)((count < kept ? count : kept) - 1);
		back = (uint32_t)(guess < 1 ? 1 : guess > oldest ? oldest : guess);
	}
	while (back && back < oldest && ts_at(r, back, &ts) && t_new - ts < window_ns)
		back++;
	while (back > 1 && ts_at(r, back - 1, &ts) && t_new - ts >= window_ns)
		back--;
	return back;
}

static bool push_raw(struct stats_req *rq, const struct raw *r)
{
	struct raw *p = rq->raws;
	size_t cap = rq->cap_raws;

	if (rq->n_raws == cap) {
		cap = cap ? cap * 2 : 256;
		p = realloc(rq->raws, cap * sizeof(*p));
		if (p) {
			rq->raws = p;
			rq->cap_raws = cap;
		}
	}
	if (p)
		rq->raws[rq->n_raws++] = *r;
	return p != NULL;
}

static bool ensure_words(struct stats_req *rq, size_t n)
{
	uint64_t *a, *b;
	bool ok = n <= rq->words;

	if (!ok) {
		a = realloc(rq->cur, n * sizeof(*a));
		if (a)
			rq->cur = a;
		b = a ? realloc(rq->old, n * sizeof(*b)) : NULL;
		if (b)
			rq->old = b;
		ok = a && b;
		if (ok)
			rq->words = n;
	}
	return ok;
}

/* The raw rows of one source: its newest sample, and the window's start. */
static bool read_source(struct stats_req *rq, const struct source *s)
{
	const struct ring *r = s->hist ? s->hist : s->ring;
	uint32_t n = ring_words(r), back, hpos = 0;
	uint64_t t_new = 0, t_old = 0;
	bool ok = ensure_words(rq, n ? n : 1) && key_schema(rq, s->schema);
	bool sampled = ok && ring_read_back(r, 0, 0, n, rq->cur, &t_new) == 0, have_old = false;

	if (sampled) { /* else never sampled: nothing to say yet */
		back = window_back(r, t_new, rq->q->window_s ? rq->q->window_s * 1000000000ull : 1,
				   rq->interval_ns);
		have_old = back > 0 && ring_read_back(r, back, 0, n, rq->old, &t_old) == 0;
	}
	for (size_t i = 0; sampled && ok && i < s->schema->n_stats; i++) {
		const struct schema_stat *st = &s->schema->stats[i];
		bool scalar = st->type != MT_HISTOGRAM && st->size == 1;
		struct raw raw = { group_key(rq->q->group, s, rq->stat_keys[i]),
				   s,
				   st,
				   r,
				   s->hist ? hpos : st->index,
				   0,
				   NAN };
		double k;

		hpos += scalar;
		if (!scalar || !api_filter_name(rq->f, st->desc_name))
			continue;
		k = factor_of(st->scale);
		raw.value = (double)rq->cur[raw.word] * k;
		if (st->type == MT_COUNTER && have_old)
			raw.rate = api_rate(rq->cur[raw.word], t_new, rq->old[raw.word], t_old, k);
		ok = push_raw(rq, &raw);
	}
	return ok;
}

/* Group key order: what group= merges compares equal. */
static int cmp_group(const struct raw *a, const struct raw *b, enum api_group g)
{
	int c = 0;

	if (g != API_GROUP_HOST)
		c = strcmp(a->src->vm->name, b->src->vm->name);
	if (!c && g != API_GROUP_HOST)
		c = (a->src->vm->id > b->src->vm->id) - (a->src->vm->id < b->src->vm->id);
	if (!c)
		c = (int)a->src->schema->scope - (int)b->src->schema->scope;
	if (!c && g == API_GROUP_VCPU)
		c = a->src->vcpu - b->src->vcpu;
	if (!c)
		c = strcmp(a->st->desc_name, b->st->desc_name);
	return c;
}

static int cmp_raw(const void *pa, const void *pb)
{
	const struct raw *a = pa, *b = pb;

	return (a->key > b->key) - (a->key < b->key);
}

static size_t group_rows(struct stats_req *rq, struct row *rows)
{
	size_t n = 0;

	for (size_t i = 0; i < rq->n_raws; i++) {
		const struct raw *r = &rq->raws[i];
		struct row *w = &rows[n ? n - 1 : 0];

		if (!n || rq->raws[w->first].key != r->key) {
			w = &rows[n++];
			*w = (struct row){ i, 0, 0, 0, NAN };
		}
		w->count++;
		w->vcpus += r->src->vcpu >= 0;
		w->value += r->value;
		if (!isnan(r->rate))
			w->rate = isnan(w->rate) ? r->rate : w->rate + r->rate;
	}
	return n;
}

static int cmp_desc(double a, double b)
{
	/* unknown (NaN) last */
	return isnan(a) || isnan(b) ? isnan(a) - isnan(b) : (a < b) - (a > b);
}

struct sort_ctx {
	const struct stats_req *rq;
};

static int cmp_row(const void *pa, const void *pb, void *ctx)
{
	const struct stats_req *rq = ((const struct sort_ctx *)ctx)->rq;
	const struct row *a = pa, *b = pb;
	const struct raw *ra = &rq->raws[a->first], *rb = &rq->raws[b->first];
	int c = 0;

	if (rq->q->sort == API_SORT_RATE)
		c = cmp_desc(a->rate, b->rate);
	if (!c && rq->q->sort != API_SORT_NAME)
		c = cmp_desc(a->value, b->value);
	if (!c && rq->q->sort == API_SORT_NAME)
		c = cmp_group(ra, rb, rq->q->group);
	if (!c) /* ties: a stable order without comparing strings */
		c = (ra->key > rb->key) - (ra->key < rb->key);
	return c;
}

/* One member's points, oldest first: rates (counters) or values (gauges). */
static void member_points(struct stats_req *rq, const struct raw *r, unsigned n, double *pts)
{
	double k = factor_of(r->st->scale);
	uint64_t v[API_SPARK_MAX + 1], ts[API_SPARK_MAX + 1];
	bool ok[API_SPARK_MAX + 1];

	for (unsigned back = 0; back <= n; back++)
		ok[back] = ring_read_back(r->ring, back, r->word, 1, &v[back], &ts[back]) == 0;
	rq->spark_reads += n + 1;
	for (unsigned i = 0; i < n; i++) {
		unsigned b = n - 1 - i; /* the point's newer sample */
		double p = NAN;

		if (r->st->type != MT_COUNTER && ok[b])
			p = (double)v[b] * k;
		else if (r->st->type == MT_COUNTER && ok[b] && ok[b + 1])
			p = api_rate(v[b], ts[b], v[b + 1], ts[b + 1], k);
		if (!isnan(p))
			pts[i] = isnan(pts[i]) ? p : pts[i] + p;
	}
}

static void put_spark(struct stats_req *rq, const struct row *w, struct buf *b)
{
	double pts[API_SPARK_MAX];
	unsigned n = rq->q->spark;

	if (rq->spark_reads + (size_t)w->count * (n + 1) > API_SPARK_READS_MAX) {
		rq->spark_cut = true;
		return;
	}
	for (unsigned i = 0; i < n; i++)
		pts[i] = NAN;
	for (size_t m = 0; m < w->count; m++)
		member_points(rq, &rq->raws[w->first + m], n, pts);
	buf_puts(b, ",\"spark\":[");
	for (unsigned i = 0; i < n; i++) {
		if (i)
			buf_putc(b, ',');
		json_num(b, pts[i]);
	}
	buf_putc(b, ']');
}

static void put_row(struct stats_req *rq, const struct row *w, struct buf *b)
{
	const struct raw *r = &rq->raws[w->first];
	const char *unit = metric_unit_name(&r->st->flags);
	enum api_group g = rq->q->group;

	buf_putc(b, '{');
	json_str(b, "scope");
	buf_putc(b, ':');
	json_str(b, r->src->schema->scope == SCOPE_VM ? "vm" : "vcpu");
	if (g != API_GROUP_HOST)
		json_key_str(b, "vm", r->src->vm->name);
	if (g == API_GROUP_VCPU && r->src->vcpu >= 0)
		buf_printf(b, ",\"vcpu\":%d", r->src->vcpu);
	if (g != API_GROUP_VCPU)
		buf_printf(b, ",\"sources\":%zu,\"vcpus\":%u", w->count, w->vcpus);
	json_key_str(b, "stat", r->st->desc_name);
	buf_puts(b, ",\"metric\":\"");
	buf_puts(b, r->st->family); /* [a-z0-9_]: nothing to escape */
	buf_puts(b, r->st->type == MT_COUNTER ? "_total\"" : "\"");
	json_key_str(b, "kind", r->st->type == MT_COUNTER ? "counter" : "gauge");
	buf_puts(b, ",\"unit\":");
	if (unit)
		json_str(b, unit);
	else
		buf_puts(b, "null");
	buf_puts(b, ",\"value\":");
	json_num(b, w->value);
	buf_puts(b, ",\"rate\":");
	json_num(b, w->rate);
	if (rq->q->spark)
		put_spark(rq, w, b);
	buf_putc(b, '}');
}

static size_t drop_zero(struct row *rows, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (rows[i].value != 0)
			rows[k++] = rows[i];
	return k;
}

static void put_rows(struct stats_req *rq, struct row *rows, size_t n, struct buf *b)
{
	struct sort_ctx ctx = { rq };
	size_t shown;

	if (rq->q->nonzero)
		n = drop_zero(rows, n);
	shown = n < rq->q->limit ? n : rq->q->limit;
	if (n)
		qsort_r(rows, n, sizeof(*rows), cmp_row, &ctx);
	buf_puts(b, "\"rows\":[");
	for (size_t i = 0; i < shown; i++) {
		if (i)
			buf_putc(b, ',');
		put_row(rq, &rows[i], b);
	}
	buf_printf(b, "],\"total\":%zu,\"truncated\":%s", n, n > shown ? "true" : "false");
	if (rq->spark_cut)
		buf_puts(b, ",\"spark_truncated\":true");
}

void api_render_stats(const struct snapshot *snap, const struct api_query *q,
		      const struct api_filter *f, const struct api_env *env, struct buf *b)
{
	static const char *const groups[] = { "vcpu", "vm", "host" };
	struct stats_req rq = { .q = q, .f = f, .interval_ns = env->interval_ms * 1000000ull };
	enum api_group g = q->group;
	struct row *rows = NULL;
	bool ok = true;

	for (size_t i = 0; ok && i < snap->n_sources; i++)
		if (api_filter_source(f, snap->sources[i]))
			ok = read_source(&rq, snap->sources[i]);
	if (ok)
		rows = malloc((rq.n_raws ? rq.n_raws : 1) * sizeof(*rows));
	buf_printf(b, "\"window_s\":%u,\"group\":\"%s\",", q->window_s, groups[g]);
	if (rows) {
		if (rq.n_raws) /* raws is NULL without any */
			qsort(rq.raws, rq.n_raws, sizeof(*rq.raws), cmp_raw);
		put_rows(&rq, rows, group_rows(&rq, rows), b);
	} else {
		b->failed = true; /* out of memory: the caller answers 500 */
	}
	free(rows);
	free(rq.raws);
	free(rq.cur);
	free(rq.old);
	free(rq.names);
	free(rq.stat_keys);
}
