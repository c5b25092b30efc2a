/* SPDX-License-Identifier: MIT */
/*
 * captured - what the benchmarks that run on captured stats layouts
 * (tests/data/) share: read a captured file, parse a captured schema, and
 * a monotonic clock. Any failure ends the program with a message naming
 * the file.
 */
#ifndef KVMSTATD_BENCH_CAPTURED_H
#define KVMSTATD_BENCH_CAPTURED_H

#include <stddef.h>
#include <stdint.h>

#include "schema.h"

/* The whole of dir/name, NUL-terminated one byte past *len. */
unsigned char *captured_read(const char *dir, const char *name, size_t *len);

/* The schema of a captured layout dir/name. */
struct schema *captured_schema(const char *dir, const char *name, enum stat_scope scope);

uint64_t captured_now_ns(void);

#endif
