/* SPDX-License-Identifier: MIT */
/*
 * schema - the self-description of a KVM binary stats fd, validated.
 *
 * A stats fd starts with a header, an id string and descriptors (layout in
 * linux/kvm.h). schema_read() fetches that prefix with pread; schema_parse()
 * checks every field against the others and builds the export plan: which
 * u64 of the data block becomes which metric family, how it is scaled, the
 * `le` bounds of histograms and the pre-rendered HELP/TYPE lines.
 *
 * Two levels of trouble:
 *  - the layout is broken (regions overlap or leave bounds, counts absurd,
 *    data ranges overlap): the whole fd is refused with a reason;
 *  - one descriptor is not understood (unknown type/unit/base, bad name,
 *    zero size, name collision): that stat is skipped and counted.
 *
 * Equal descriptor blocks are interned by schema_cache: thousands of vCPUs
 * share one schema, so its names and bounds are built once.
 */
#ifndef KVMSTATD_SCHEMA_H
#define KVMSTATD_SCHEMA_H

#include <linux/kvm.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metric.h"
#include "statsid.h"

#define SCHEMA_HEADER_SIZE 24u
#define SCHEMA_MAX_NAME_SIZE STATSID_MAX_NAME_SIZE
#define SCHEMA_MAX_DESCS STATSID_MAX_DESCS
/* Histogram buckets in one stat: log bounds are 2^i - 1, so i < 64. */
#define SCHEMA_MAX_STAT_SIZE 64u
/* header + id + descriptors: never more than this is read or allocated */
#define SCHEMA_MAX_PREFIX (1u << 21)
#define SCHEMA_MAX_DATA_WORDS 65536u
#define SCHEMA_ID_MAX SCHEMA_MAX_NAME_SIZE

/* A pre-rendered piece of a sample line, with its length. */
struct text_piece {
	char *s;
	size_t len;
};

struct schema_stat {
	char family[METRIC_NAME_MAX]; /* e.g. kvm_vcpu_halt_wait_seconds */
	char desc_name[SCHEMA_MAX_NAME_SIZE];
	enum metric_type type;
	struct stat_flags flags;
	struct metric_scale scale;
	uint32_t index;	      /* first u64 of this stat in the data block */
	uint32_t size;	      /* u64 items: 1, or the number of buckets */
	uint32_t bucket_size; /* linear histograms: width of a bucket */
	int32_t sum_index;    /* histogram: index of its _sum twin, -1 if none */
	struct metric_scale sum_scale;
	char **le;	 /* histogram: size-1 formatted upper bounds (+Inf is last) */
	char *head_text; /* "# HELP ...\n# TYPE ...\n", Prometheus text 0.0.4 */
	char *head_om;	 /* "# TYPE ...\n# UNIT ...\n# HELP ...\n", OpenMetrics */
	/*
	 * Sample lines are pieces glued together: open + labels + close +
	 * value. open: "<family>[_total]{" (scalar) or, for histograms,
	 * "_bucket{", "_count{", "_sum{" in [0..2]; le_close: one
	 * ",le=\"<bound>\"} " per bucket (the last "+Inf").
	 */
	struct text_piece open[3];
	struct text_piece *le_close;
	struct text_piece created_open; /* "<family>_created{": counters, histograms */
};

struct schema_skips {
	unsigned unknown;   /* type, unit, base or exponent not understood */
	unsigned invalid;   /* bad name, zero size, bad bucket size */
	unsigned collision; /* a family or sample name already taken */
};

struct schema {
	atomic_int refs;
	enum stat_scope scope;
	uint32_t data_offset;
	uint32_t data_words; /* u64 items read per poll */
	size_t n_stats;
	struct schema_stat *stats; /* exported stats, descriptor order */
	struct schema_skips skips;
	/*
	 * The history (source.h): data words of the single-value stats
	 * (counters and gauges, no histograms), in stats order. A history
	 * sample's word k is data word scalar_index[k].
	 */
	uint32_t *scalar_index;
	uint32_t n_scalar;
	/* interning key: scope + the raw header fields and descriptor block */
	uint8_t *key;
	size_t key_len;
};

/* Why a stats fd was refused: a sentence for the log. */
struct schema_error {
	char why[160];
};

/*
 * Read header + id + descriptors of fd into a malloc'd buffer (*buf, *len).
 * pread only: a copied fd shares its file offset with the VMM.
 */
int schema_read(int fd, uint8_t **buf, size_t *len, struct schema_error *err);

/* Copy the NUL-terminated, printable id string out of a buffer from
 * schema_read (checked); id must hold SCHEMA_ID_MAX bytes. */
int schema_parse_id(const uint8_t *buf, size_t len, char *id, struct schema_error *err);

/* Validate buf and build a schema (refs = 1). -EINVAL with err->why. */
int schema_parse(const uint8_t *buf, size_t len, enum stat_scope scope, struct schema **out,
		 struct schema_error *err);

/*
 * The same, leaving histograms out ([metrics] histograms = no) before the
 * cumulative twins are paired with them: those stay counters of their own
 * (kvm_vcpu_halt_wait_seconds_total) instead of vanishing as a _sum.
 */
int schema_parse_no_histograms(const uint8_t *buf, size_t len, enum stat_scope scope,
			       struct schema **out, struct schema_error *err);

struct schema *schema_ref(struct schema *s);
void schema_unref(struct schema *s);

/* Intern table, used by one thread (the poller). */
struct schema_cache {
	struct schema **v;
	size_t n, cap;
	bool no_histograms; /* parse with schema_parse_no_histograms */
};

/*
 * Returns a new reference to the shared schema for buf, parsing on a miss;
 * *created (may be NULL) says whether it was parsed just now.
 */
int schema_cache_get(struct schema_cache *c, const uint8_t *buf, size_t len, enum stat_scope scope,
		     struct schema **out, bool *created, struct schema_error *err);
/* Drop schemas nobody but the cache holds. */
void schema_cache_trim(struct schema_cache *c);
void schema_cache_fini(struct schema_cache *c);

#endif
