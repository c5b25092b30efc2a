/* SPDX-License-Identifier: MIT */
/*
 * escape - the one place where text is escaped: for the exposition
 * formats, and for the log and the journal.
 *
 * Label values and HELP text: backslash, double quote (labels, and HELP in
 * OpenMetrics) and newline are escaped; everything else, UTF-8 included,
 * passes through. Invalid UTF-8 is replaced by U+FFFD so that no parser
 * ever sees a broken byte sequence.
 *
 * Log lines: whatever came from outside (a /proc link name, a VM or user
 * name, a comm, an HTTP field) must not start a line of its own, move the
 * cursor or recolour a terminal. escape_log makes any bytes one line of
 * printable text that still reads like the original.
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

/*
 * Any len bytes of src into out as one printable line, NUL-terminated:
 * valid UTF-8 passes, but a backslash becomes \\, a C0 control, DEL or C1
 * control \n, \r, \t, \e or \xHH (C1: of each of its two bytes), a byte
 * that is not UTF-8 \xHH, and a character that breaks or reorders a line
 * on a terminal (U+2028, U+2029, U+200E, U+200F, U+202A..U+202E,
 * U+2066..U+2069) \u{XXXX}. Cut at a whole character or escape when out
 * is too small. Returns the length written (out_size 0: nothing, 0).
 */
size_t escape_log(const char *src, size_t len, char *out, size_t out_size);

/* True if s is valid UTF-8 with no control characters (a VM name). */
bool escape_is_clean_utf8(const char *s, size_t len);

#endif
