/* SPDX-License-Identifier: MIT */
/*
 * pattern - the [metrics] include/exclude patterns: POSIX extended regular
 * expressions matched against a whole name (anchored, as in Prometheus
 * relabelling). The configuration checks them at load, in either process;
 * the worker's stat filter (worker/statfilter.h) matches with them.
 */
#ifndef KVMSTATD_PATTERN_H
#define KVMSTATD_PATTERN_H

#include <regex.h>
#include <stddef.h>

#define PATTERN_MAX 1024 /* bytes of a pattern, NUL not included */

/* Compile "^(pattern)$" into re. 0, or -EINVAL with the reason in err. */
int pattern_compile(regex_t *re, const char *pattern, char *err, size_t err_size);

/*
 * Only check that a pattern compiles: NULL, or a sentence in why (which
 * must hold 128 bytes).
 */
const char *pattern_check(const char *pattern, char why[128]);

#endif
