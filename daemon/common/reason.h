/* SPDX-License-Identifier: MIT */
/*
 * reason - the one way to refuse with a sentence: format why into the
 * caller's buffer and hand back the errno. Every module that explains a
 * refusal (a request, an fd, a message, a schema, a setting) calls this
 * instead of keeping its own vsnprintf helper.
 *
 *	return reason_set(why, why_size, -EBADF, "fd %d: %s", i, what);
 *
 * why may be NULL (or why_size 0): the caller only wants the errno.
 */
#ifndef KVMSTATD_REASON_H
#define KVMSTATD_REASON_H

#include <stdarg.h>
#include <stddef.h>

/* Format fmt into why (truncated, always terminated); returns err. */
int reason_set(char *why, size_t why_size, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The same with a va_list, for modules that add their own context first. */
int reason_vset(char *why, size_t why_size, int err, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
