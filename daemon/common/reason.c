/* SPDX-License-Identifier: MIT */
/* reason - see reason.h. */
#include "reason.h"

#include <stdio.h>

int reason_vset(char *why, size_t why_size, int err, const char *fmt, va_list ap)
{
	if (why && why_size)
		vsnprintf(why, why_size, fmt, ap);
	return err;
}

int reason_set(char *why, size_t why_size, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reason_vset(why, why_size, err, fmt, ap);
	va_end(ap);
	return err;
}
