/* SPDX-License-Identifier: MIT */
/*
 * escape - the one place where text is escaped for the exposition formats.
 *
 * Label values and HELP text: backslash, double quote (labels, and HELP in
 * OpenMetrics) and newline are escaped; everything else, UTF-8 included,
 * passes through. Invalid UTF-8 is replaced by U+FFFD so that no parser
 * ever sees a broken byte sequence.
 */
#ifndef KVMSTATD_ESCAPE_H
#define KVMSTATD_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Escape src into out (NUL-terminated). quote: also escape '"'. Returns the
 * length written, or -ENOSPC when out is too small (out is then empty).
 */
int escape_text(const char *src, bool quote, char *out, size_t out_size);

/* True if s is valid UTF-8 with no control characters (a VM name). */
bool escape_is_clean_utf8(const char *s, size_t len);

#endif
