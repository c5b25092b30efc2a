/* SPDX-License-Identifier: MIT */
/*
 * schema - see schema.h. The checks follow what a reader of an untrusted
 * stats fd must make (cf. the kernel's kvm_binary_stats_test): bound every
 * count, offset and size, step descriptors by sizeof(desc) + name_size,
 * require names to end inside name_size, and never trust the regions not
 * to overlap.
 */
#include "schema.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "help.h"
#include "reason.h"

#define DESC_FIXED 16u /* struct kvm_stats_desc without its name */

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void get_header(const uint8_t *buf, struct kvm_stats_header *h)
{
	memcpy(h, buf, sizeof(*h));
}

static uint64_t desc_end(const struct kvm_stats_header *h)
{
	return (uint64_t)h->desc_offset + (uint64_t)h->num_desc * (DESC_FIXED + h->name_size);
}

static int check_header(const struct kvm_stats_header *h, struct schema_error *err)
{
	if (h->flags != 0)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "header flags 0x%x unknown (expected 0)", h->flags);
	if (h->name_size == 0 || h->name_size > SCHEMA_MAX_NAME_SIZE)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "name_size %u out of range 1..%u", h->name_size,
				  SCHEMA_MAX_NAME_SIZE);
	if (h->num_desc == 0 || h->num_desc > SCHEMA_MAX_DESCS)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "num_desc %u out of range 1..%u", h->num_desc, SCHEMA_MAX_DESCS);
	if (h->id_offset < SCHEMA_HEADER_SIZE || h->desc_offset < SCHEMA_HEADER_SIZE ||
	    h->data_offset < SCHEMA_HEADER_SIZE)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "id/desc/data offset %u/%u/%u inside the header", h->id_offset,
				  h->desc_offset, h->data_offset);
	/* id and descriptors may not overlap; data comes after both */
	if ((uint64_t)h->id_offset + h->name_size > h->desc_offset && desc_end(h) > h->id_offset)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "id string at %u overlaps descriptors at %u", h->id_offset,
				  h->desc_offset);
	if ((uint64_t)h->id_offset + h->name_size > h->data_offset || desc_end(h) > h->data_offset)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "data block at %u overlaps the id or the descriptors",
				  h->data_offset);
	return 0;
}

int schema_read(int fd, uint8_t **buf, size_t *len, struct schema_error *err)
{
	struct kvm_stats_header h;
	uint8_t hb[SCHEMA_HEADER_SIZE];
	uint64_t end;
	uint8_t *b = NULL;
	ssize_t n;
	int rc;

	n = pread(fd, hb, sizeof(hb), 0);
	if (n != (ssize_t)sizeof(hb)) {
		rc = n < 0 ? -errno : -EIO;
		snprintf(err->why, sizeof(err->why), "reading the header: %s",
			 n < 0 ? strerror(-rc) : "short read");
		return rc;
	}
	get_header(hb, &h);
	rc = check_header(&h, err);
	if (rc < 0)
		return rc;
	end = desc_end(&h);
	if ((uint64_t)h.id_offset + h.name_size > end)
		end = (uint64_t)h.id_offset + h.name_size;
	if (end > SCHEMA_MAX_PREFIX)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "id and descriptors end at %llu, beyond %u bytes",
				  (unsigned long long)end, SCHEMA_MAX_PREFIX);
	b = malloc(end);
	if (!b)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "out of memory for %llu bytes", (unsigned long long)end),
		       -ENOMEM;
	n = pread(fd, b, end, 0);
	if (n != (ssize_t)end) {
		rc = n < 0 ? -errno : -EIO;
		snprintf(err->why, sizeof(err->why), "reading %llu bytes of descriptors: %s",
			 (unsigned long long)end, n < 0 ? strerror(-rc) : "short read");
		free(b);
		return rc;
	}
	*buf = b;
	*len = (size_t)end;
	return 0;
}

/* A name field: NUL inside size, printable ASCII before it. */
static int check_name(const uint8_t *p, uint32_t size)
{
	const uint8_t *nul = memchr(p, '\0', size);

	if (!nul || nul == p)
		return -EINVAL;
	for (; p < nul; p++)
		if (*p < 0x21 || *p > 0x7e)
			return -EINVAL;
	return 0;
}

static int check_extent(const uint8_t *buf, size_t len, struct kvm_stats_header *h,
			struct schema_error *err)
{
	if (len < SCHEMA_HEADER_SIZE)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "%zu bytes, shorter than the header", len);
	get_header(buf, h);
	if (check_header(h, err) < 0)
		return -EINVAL;
	if (desc_end(h) > len || (uint64_t)h->id_offset + h->name_size > len)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "descriptors end at %llu, beyond the %zu bytes read",
				  (unsigned long long)desc_end(h), len);
	return 0;
}

int schema_parse_id(const uint8_t *buf, size_t len, char *id, struct schema_error *err)
{
	struct kvm_stats_header h;

	if (check_extent(buf, len, &h, err) < 0)
		return -EINVAL;
	if (check_name(buf + h.id_offset, h.name_size) < 0)
		return reason_set(err->why, sizeof(err->why), -EINVAL,
				  "id string is empty, unterminated or not printable ASCII");
	snprintf(id, SCHEMA_ID_MAX, "%s", (const char *)buf + h.id_offset);
	return 0;
}

struct range {
	uint32_t start, end; /* u64 index range [start, end) */
	uint32_t desc;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Decide whether descriptor i is exported; fill st or count a skip. */
static int take_desc(const uint8_t *d, uint32_t name_size, enum stat_scope scope,
		     struct schema_stat *st, struct schema_skips *skips)
{
	struct kvm_stats_desc kd;
	int rc;

	memcpy(&kd, d, DESC_FIXED);
	if (metric_decode_flags(kd.flags, &st->flags) < 0 || kd.exponent < -METRIC_MAX_EXPONENT ||
	    kd.exponent > METRIC_MAX_EXPONENT) {
		skips->unknown++;
		return 0;
	}
	st->type = metric_type_of(&st->flags);
	if (check_name(d + DESC_FIXED, name_size) < 0 || kd.size == 0 ||
	    (st->type != MT_HISTOGRAM && kd.size != 1) ||
	    (st->type == MT_HISTOGRAM && (kd.size < 2 || kd.size > SCHEMA_MAX_STAT_SIZE)) ||
	    (st->flags.type == KVM_STATS_TYPE_LINEAR_HIST >> KVM_STATS_TYPE_SHIFT &&
	     kd.bucket_size == 0) ||
	    (st->type == MT_HISTOGRAM &&
	     st->flags.unit == KVM_STATS_UNIT_BOOLEAN >> KVM_STATS_UNIT_SHIFT)) {
		skips->invalid++;
		return 0;
	}
	snprintf(st->desc_name, sizeof(st->desc_name), "%s", (const char *)d + DESC_FIXED);
	rc = metric_family_name(scope, st->desc_name, &st->flags, st->family, sizeof(st->family));
	if (rc < 0) {
		skips->invalid++;
		return 0;
	}
	st->scale.base2 = st->flags.base == KVM_STATS_BASE_POW2 >> KVM_STATS_BASE_SHIFT;
	st->scale.exponent = kd.exponent;
	st->index = kd.offset / 8;
	st->size = kd.size;
	st->sum_index = -1;
	st->bucket_size = kd.bucket_size;
	return 1;
}

/* Check the data ranges of the taken stats: aligned, in bounds, disjoint. */
static int check_data(struct schema *s, const uint32_t *offsets, const struct kvm_stats_header *h,
		      struct schema_error *err)
{
	struct range *r = calloc(s->n_stats ? s->n_stats : 1, sizeof(*r));
	uint64_t words = 0;
	int rc = 0;

	if (!r)
		return reason_set(err->why, sizeof(err->why), -EINVAL, "out of memory"), -ENOMEM;
	for (size_t i = 0; i < s->n_stats; i++) {
		uint64_t end = (uint64_t)offsets[i] / 8 + s->stats[i].size;

		if (offsets[i] % 8 || end > SCHEMA_MAX_DATA_WORDS) {
			rc = reason_set(err->why, sizeof(err->why), -EINVAL,
					"stat \"%s\": data offset %u misaligned or beyond %u words",
					s->stats[i].desc_name, offsets[i], SCHEMA_MAX_DATA_WORDS);
			goto out;
		}
		r[i] = (struct range){ offsets[i] / 8, (uint32_t)end, (uint32_t)i };
		if (end > words)
			words = end;
	}
	qsort(r, s->n_stats, sizeof(*r), cmp_range);
	for (size_t i = 1; i < s->n_stats; i++)
		if (r[i].start < r[i - 1].end) {
			rc = reason_set(err->why, sizeof(err->why), -EINVAL,
					"stats \"%s\" and \"%s\" overlap in the data block",
					s->stats[r[i - 1].desc].desc_name,
					s->stats[r[i].desc].desc_name);
			goto out;
		}
	if ((uint64_t)h->data_offset + words * 8 > UINT32_MAX) {
		rc = reason_set(err->why, sizeof(err->why), -EINVAL,
				"data block at %u of %llu words exceeds 4 GiB", h->data_offset,
				(unsigned long long)words);
		goto out;
	}
	s->data_words = (uint32_t)words;
out:
	free(r);
	return rc;
}

static void free_stat(struct schema_stat *st);

static void drop_stat(struct schema *s, size_t i)
{
	free_stat(&s->stats[i]);
	memmove(&s->stats[i], &s->stats[i + 1], (s->n_stats - i - 1) * sizeof(s->stats[0]));
	s->n_stats--;
}

/* A histogram's cumulative twin of the same family becomes its _sum. */
static void pair_sums(struct schema *s)
{
	for (size_t h = 0; h < s->n_stats; h++) {
		if (s->stats[h].type != MT_HISTOGRAM)
			continue;
		for (size_t c = 0; c < s->n_stats; c++) {
			if (s->stats[c].type != MT_COUNTER ||
			    strcmp(s->stats[c].family, s->stats[h].family))
				continue;
			s->stats[h].sum_index = (int32_t)s->stats[c].index;
			s->stats[h].sum_scale = s->stats[c].scale;
			drop_stat(s, c);
			if (c < h)
				h--;
			break;
		}
	}
}

struct sample_name {
	char name[METRIC_NAME_MAX + 8];
	long owner; /* stat index; -1 for names the daemon itself reserves */
};

static int cmp_sample(const void *a, const void *b)
{
	const struct sample_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->owner > y->owner) - (x->owner < y->owner);
}

static size_t add_names(struct sample_name *v, size_t n, const struct schema_stat *st, long owner)
{
	static const char *const counter[] = { "", "_total", "_created", NULL };
	static const char *const gauge[] = { "", NULL };
	static const char *const hist[] = { "", "_bucket", "_count", "_sum", "_created", NULL };
	const char *const *sfx = st->type == MT_COUNTER ? counter
				 : st->type == MT_GAUGE ? gauge
							: hist;

	for (; *sfx; sfx++, n++) {
		snprintf(v[n].name, sizeof(v[n].name), "%s%s", st->family, *sfx);
		v[n].owner = owner;
	}
	return n;
}

/* Any two exported stats whose sample names meet: the later one goes. */
static int drop_collisions(struct schema *s)
{
	static const char *const reserved[] = { "kvm_vm", "kvm_vm_info", NULL };
	struct sample_name *v = calloc(s->n_stats * 5 + 2, sizeof(*v));
	bool *gone = calloc(s->n_stats + 1, sizeof(*gone));
	size_t n = 0;
	int rc = 0;

	if (!v || !gone) {
		rc = -ENOMEM;
		goto out;
	}
	for (const char *const *r = reserved; *r; r++, n++) {
		snprintf(v[n].name, sizeof(v[n].name), "%s", *r);
		v[n].owner = -1;
	}
	for (size_t i = 0; i < s->n_stats; i++)
		n = add_names(v, n, &s->stats[i], (long)i);
	qsort(v, n, sizeof(*v), cmp_sample);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(v[i].name, v[i - 1].name) && v[i].owner != v[i - 1].owner)
			gone[v[i].owner] = true;
	for (size_t i = s->n_stats; i-- > 0;)
		if (gone[i]) {
			drop_stat(s, i);
			s->skips.collision++;
		}
out:
	free(v);
	free(gone);
	return rc;
}

/* Upper bound of bucket i, an integer in the stat's own unit. */
static uint64_t bucket_bound(const struct schema_stat *st, uint32_t i)
{
	if (st->flags.type == KVM_STATS_TYPE_LINEAR_HIST >> KVM_STATS_TYPE_SHIFT)
		return (uint64_t)(i + 1) * st->bucket_size - 1;
	return i == 0 ? 0 : (UINT64_C(1) << i) - 1; /* log: fls64(v) == i */
}

static int build_bounds(struct schema_stat *st)
{
	char num[METRIC_NUM_MAX];

	if (st->type != MT_HISTOGRAM)
		return 0;
	st->le = calloc(st->size - 1, sizeof(char *));
	if (!st->le)
		return -ENOMEM;
	for (uint32_t i = 0; i + 1 < st->size; i++) {
		metric_format_scaled(bucket_bound(st, i), st->scale, num);
		st->le[i] = strdup(num);
		if (!st->le[i])
			return -ENOMEM;
	}
	return 0;
}

static void free_stat(struct schema_stat *st)
{
	if (st->le && st->type == MT_HISTOGRAM)
		for (uint32_t i = 0; i + 1 < st->size; i++)
			free(st->le[i]);
	free(st->le);
	free(st->head_text);
	free(st->head_om);
	for (int i = 0; i < 3; i++)
		free(st->open[i].s);
	free(st->created_open.s);
	if (st->le_close)
		for (uint32_t i = 0; i < st->size; i++)
			free(st->le_close[i].s);
	free(st->le_close);
}

/* Padded: the renderer copies pieces in BUF_PAD chunks. */
static int piece(struct text_piece *p, const char *a, const char *b, const char *c)
{
	p->s = buf_padded_printf(&p->len, "%s%s%s", a, b, c);
	return p->s ? 0 : -ENOMEM;
}

static int build_pieces(struct schema_stat *st)
{
	static const char *const hist[3] = { "_bucket{", "_count{", "_sum{" };
	int rc = 0;

	if (st->type != MT_GAUGE)
		rc = piece(&st->created_open, st->family, "_created", "{");
	if (st->type != MT_HISTOGRAM)
		return rc ? rc
			  : piece(&st->open[0], st->family, st->type == MT_COUNTER ? "_total" : "",
				  "{");
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = piece(&st->open[i], st->family, hist[i], "");
	st->le_close = calloc(st->size, sizeof(*st->le_close));
	if (!st->le_close)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->size && rc == 0; i++)
		rc = piece(&st->le_close[i], ",le=\"", i + 1 < st->size ? st->le[i] : "+Inf",
			   "\"} ");
	return rc;
}

static int set_key(struct schema *s, const uint8_t *buf, const struct kvm_stats_header *h)
{
	size_t dlen = (size_t)(desc_end(h) - h->desc_offset);

	s->key_len = 1 + sizeof(*h) + dlen;
	s->key = malloc(s->key_len);
	if (!s->key)
		return -ENOMEM;
	s->key[0] = (uint8_t)s->scope;
	memcpy(s->key + 1, h, sizeof(*h));
	memcpy(s->key + 1 + sizeof(*h), buf + h->desc_offset, dlen);
	return 0;
}

static int take_all(struct schema *s, const uint8_t *buf, const struct kvm_stats_header *h,
		    uint32_t *offsets)
{
	for (uint32_t i = 0; i < h->num_desc; i++) {
		const uint8_t *d = buf + h->desc_offset + (size_t)i * (DESC_FIXED + h->name_size);
		struct schema_stat *st = &s->stats[s->n_stats];

		if (take_desc(d, h->name_size, s->scope, st, &s->skips)) {
			offsets[s->n_stats] = get_u32(d + 8);
			s->n_stats++;
		}
	}
	return 0;
}

/* Which data words the history keeps: every single-value stat's. */
static int build_scalar_index(struct schema *s)
{
	s->scalar_index = calloc(s->n_stats ? s->n_stats : 1, sizeof(*s->scalar_index));
	if (!s->scalar_index)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_stats; i++)
		if (s->stats[i].type != MT_HISTOGRAM && s->stats[i].size == 1)
			s->scalar_index[s->n_scalar++] = s->stats[i].index;
	return 0;
}

/* The family headers of st, from the HELP table or its descriptor. */
static int build_heads(enum stat_scope scope, struct schema_stat *st)
{
	const struct help_family f = {
		.scope = scope,
		.desc_name = st->desc_name,
		.family = st->family,
		.flags = st->flags,
		.type = st->type,
		.has_sum = st->sum_index >= 0,
	};

	return help_build_heads(&f, &st->head_text, &st->head_om);
}

static int finish_stats(struct schema *s, bool no_histograms)
{
	int rc;

	for (size_t i = s->n_stats; no_histograms && i-- > 0;)
		if (s->stats[i].type == MT_HISTOGRAM)
			drop_stat(s, i);
	for (size_t i = 0; i < s->n_stats; i++) {
		rc = build_bounds(&s->stats[i]);
		if (rc < 0)
			return rc;
	}
	pair_sums(s);
	rc = drop_collisions(s);
	for (size_t i = 0; rc == 0 && i < s->n_stats; i++)
		rc = build_heads(s->scope, &s->stats[i]);
	for (size_t i = 0; rc == 0 && i < s->n_stats; i++)
		rc = build_pieces(&s->stats[i]);
	if (rc == 0)
		rc = build_scalar_index(s);
	return rc;
}

static int parse(const uint8_t *buf, size_t len, enum stat_scope scope, bool no_histograms,
		 struct schema **out, struct schema_error *err)
{
	struct kvm_stats_header h;
	struct schema *s = NULL;
	uint32_t *offsets = NULL;
	int rc;

	rc = check_extent(buf, len, &h, err);
	if (rc < 0)
		return rc;
	rc = -ENOMEM;
	s = calloc(1, sizeof(*s));
	offsets = calloc(h.num_desc, sizeof(*offsets));
	if (!s || !offsets || !(s->stats = calloc(h.num_desc, sizeof(*s->stats))))
		goto fail_nomem;
	atomic_init(&s->refs, 1);
	s->scope = scope;
	s->data_offset = h.data_offset;
	take_all(s, buf, &h, offsets);
	rc = check_data(s, offsets, &h, err);
	if (rc < 0)
		goto fail;
	rc = finish_stats(s, no_histograms);
	if (rc < 0 || (rc = set_key(s, buf, &h)) < 0)
		goto fail_nomem;
	free(offsets);
	*out = s;
	return 0;
fail_nomem:
	reason_set(err->why, sizeof(err->why), -EINVAL, "out of memory");
	rc = -ENOMEM;
fail:
	free(offsets);
	if (s) {
		for (size_t i = 0; i < s->n_stats; i++)
			free_stat(&s->stats[i]);
		free(s->stats);
		free(s->scalar_index);
		free(s);
	}
	return rc;
}

int schema_parse(const uint8_t *buf, size_t len, enum stat_scope scope, struct schema **out,
		 struct schema_error *err)
{
	return parse(buf, len, scope, false, out, err);
}

int schema_parse_no_histograms(const uint8_t *buf, size_t len, enum stat_scope scope,
			       struct schema **out, struct schema_error *err)
{
	return parse(buf, len, scope, true, out, err);
}

struct schema *schema_ref(struct schema *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void schema_unref(struct schema *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < s->n_stats; i++)
		free_stat(&s->stats[i]);
	free(s->stats);
	free(s->scalar_index);
	free(s->key);
	free(s);
}

static bool key_matches(const struct schema *s, const uint8_t *buf, enum stat_scope scope,
			const struct kvm_stats_header *h)
{
	size_t dlen = (size_t)(desc_end(h) - h->desc_offset);
	struct kvm_stats_header k;

	if (s->key_len != 1 + sizeof(*h) + dlen || s->key[0] != (uint8_t)scope)
		return false;
	memcpy(&k, s->key + 1, sizeof(k));
	k.id_offset = h->id_offset;
	return !memcmp(&k, h, sizeof(k)) &&
	       !memcmp(s->key + 1 + sizeof(*h), buf + h->desc_offset, dlen);
}

int schema_cache_get(struct schema_cache *c, const uint8_t *buf, size_t len, enum stat_scope scope,
		     struct schema **out, bool *created, struct schema_error *err)
{
	struct kvm_stats_header h;
	struct schema **nv;
	int rc;

	if (created)
		*created = false;
	rc = check_extent(buf, len, &h, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < c->n; i++)
		if (key_matches(c->v[i], buf, scope, &h)) {
			*out = schema_ref(c->v[i]);
			return 0;
		}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;

		nv = realloc(c->v, cap * sizeof(*nv));
		if (!nv)
			return reason_set(err->why, sizeof(err->why), -EINVAL, "out of memory"),
			       -ENOMEM;
		c->v = nv;
		c->cap = cap;
	}
	rc = parse(buf, len, scope, c->no_histograms, out, err);
	if (rc < 0)
		return rc;
	c->v[c->n++] = schema_ref(*out);
	if (created)
		*created = true;
	return 0;
}

void schema_cache_trim(struct schema_cache *c)
{
	size_t j = 0;

	for (size_t i = 0; i < c->n; i++) {
		if (atomic_load(&c->v[i]->refs) == 1)
			schema_unref(c->v[i]);
		else
			c->v[j++] = c->v[i];
	}
	c->n = j;
}

void schema_cache_fini(struct schema_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		schema_unref(c->v[i]);
	free(c->v);
	memset(c, 0, sizeof(*c));
}
