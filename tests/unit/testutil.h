/* SPDX-License-Identifier: MIT */
/*
 * testutil - helpers shared by the unit tests (static inline only).
 *
 * Test data: the real stats layouts captured by tools/capture-stats-layout
 * (tests/data/README.md), read relative to the tests' working directory
 * (tests/unit), and a builder for synthetic stats blocks that follow the
 * kernel's layout (header, id string, descriptors) so that tests can state
 * exactly the descriptors they need.
 *
 * Include after <cmocka.h>'s prerequisites (stdarg, stddef, stdint, setjmp).
 */
#ifndef KVMSTATD_TESTUTIL_H
#define KVMSTATD_TESTUTIL_H

#include <errno.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#define TU_DATA_DIR "../data/"
#define TU_VM_LAYOUT TU_DATA_DIR "vm-stats-layout.bin"
#define TU_VCPU_LAYOUT TU_DATA_DIR "vcpu-stats-layout.bin"
#define TU_VCPU_DATA TU_DATA_DIR "vcpu-stats-data.bin"

/* Facts of the captured layouts (kernel 6.18, see tests/data/README.md). */
#define TU_VM_NUM_DESC 15u
#define TU_VCPU_NUM_DESC 45u
#define TU_NAME_SIZE 48u
#define TU_VM_DATA_WORDS 15u
#define TU_VCPU_DATA_WORDS 138u

/* Whole file into a malloc'd buffer of exactly its size; aborts the test on error. */
static inline uint8_t *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f) {
		fprintf(stderr, "%s: %s (run from tests/unit)\n", path, strerror(errno));
		abort();
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		abort();
	buf = malloc(n ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Parse a captured block into a schema; fails the test (cmocka) on refusal. */
static inline struct schema *tu_parse(const uint8_t *buf, size_t len, enum stat_scope scope)
{
	struct schema_error err;
	struct schema *s = NULL;

	if (schema_parse(buf, len, scope, &s, &err) != 0)
		fail_msg("schema_parse: %s", err.why);
	return s;
}

/* A copy of exactly len bytes (so ASan sees any read past the end). */
static inline uint8_t *tu_dup(const uint8_t *p, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);

	if (!c)
		abort();
	if (len)
		memcpy(c, p, len);
	return c;
}

static inline struct kvm_stats_header tu_header(const uint8_t *buf)
{
	struct kvm_stats_header h;

	memcpy(&h, buf, sizeof(h));
	return h;
}

static inline void tu_set_header(uint8_t *buf, const struct kvm_stats_header *h)
{
	memcpy(buf, h, sizeof(*h));
}

/* Byte offset of descriptor i in a block. */
static inline size_t tu_desc_at(const uint8_t *buf, uint32_t i)
{
	struct kvm_stats_header h = tu_header(buf);

	return h.desc_offset + (size_t)i * (sizeof(struct kvm_stats_desc) + h.name_size);
}

static inline struct kvm_stats_desc tu_desc(const uint8_t *buf, uint32_t i)
{
	struct kvm_stats_desc d;

	memcpy(&d, buf + tu_desc_at(buf, i), sizeof(d));
	return d;
}

static inline void tu_set_desc(uint8_t *buf, uint32_t i, const struct kvm_stats_desc *d)
{
	memcpy(buf + tu_desc_at(buf, i), d, sizeof(*d));
}

static inline char *tu_desc_name(uint8_t *buf, uint32_t i)
{
	return (char *)buf + tu_desc_at(buf, i) + sizeof(struct kvm_stats_desc);
}

/* Index of the descriptor called name, or -1. */
static inline int tu_find_desc(uint8_t *buf, const char *name)
{
	struct kvm_stats_header h = tu_header(buf);

	for (uint32_t i = 0; i < h.num_desc; i++)
		if (!strncmp(tu_desc_name(buf, i), name, h.name_size))
			return (int)i;
	return -1;
}

/* One descriptor of a synthetic block. */
struct tu_stat {
	const char *name;
	uint32_t flags; /* KVM_STATS_TYPE_* | KVM_STATS_UNIT_* | KVM_STATS_BASE_* */
	int16_t exponent;
	uint16_t size;
	uint32_t offset; /* bytes into the data block */
	uint32_t bucket_size;
};

/*
 * A block laid out like the kernel's: header, id (name_size bytes), the
 * descriptors, data_offset right after them. Returns a malloc'd buffer of
 * exactly *len bytes (no data block). Names are copied with strncpy, so a
 * name of name_size characters or more is left unterminated on purpose.
 */
static inline uint8_t *tu_build_block(const char *id, uint32_t name_size, const struct tu_stat *st,
				      uint32_t n, size_t *len)
{
	struct kvm_stats_header h = { 0 };
	size_t desc_size = sizeof(struct kvm_stats_desc) + name_size;
	uint8_t *buf;

	h.name_size = name_size;
	h.num_desc = n;
	h.id_offset = sizeof(h);
	h.desc_offset = h.id_offset + name_size;
	h.data_offset = (uint32_t)(h.desc_offset + n * desc_size);
	*len = h.data_offset;
	buf = calloc(1, *len ? *len : 1);
	if (!buf)
		abort();
	tu_set_header(buf, &h);
	strncpy((char *)buf + h.id_offset, id, name_size);
	for (uint32_t i = 0; i < n; i++) {
		struct kvm_stats_desc d = { 0 };

		d.flags = st[i].flags;
		d.exponent = st[i].exponent;
		d.size = st[i].size;
		d.offset = st[i].offset;
		d.bucket_size = st[i].bucket_size;
		tu_set_desc(buf, i, &d);
		strncpy(tu_desc_name(buf, i), st[i].name, name_size);
	}
	return buf;
}

/* The exported stat with this descriptor name, or NULL. */
static inline const struct schema_stat *tu_stat_by_desc(const struct schema *s, const char *name)
{
	for (size_t i = 0; i < s->n_stats; i++)
		if (!strcmp(s->stats[i].desc_name, name))
			return &s->stats[i];
	return NULL;
}

/* The exported stat of this family, or NULL. */
static inline const struct schema_stat *tu_stat_by_family(const struct schema *s,
							  const char *family)
{
	for (size_t i = 0; i < s->n_stats; i++)
		if (!strcmp(s->stats[i].family, family))
			return &s->stats[i];
	return NULL;
}

/* Number of non-overlapping occurrences of needle in hay. */
static inline size_t tu_count(const char *hay, const char *needle)
{
	size_t n = 0, l = strlen(needle);

	for (const char *p = hay; l && (p = strstr(p, needle)); p += l)
		n++;
	return n;
}

/* Is line a whole line of out? */
static inline bool tu_has_line(const char *out, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = out; (p = strstr(p, line)); p++)
		if ((p == out || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

/* Fail the test unless the printf-formatted line is a whole line of out. */
static inline void tu_assert_line(const char *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void tu_assert_line(const char *out, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!tu_has_line(out, line))
		fail_msg("line not found: %s", line);
}

/* Number of lines of out that start with prefix. */
static inline size_t tu_lines_starting(const char *out, const char *prefix)
{
	size_t n = 0, l = strlen(prefix);

	for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		n += !strncmp(p, prefix, l);
	return n;
}

#endif
