/* SPDX-License-Identifier: MIT */
/* pattern - see pattern.h. */
#include "pattern.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int pattern_compile(regex_t *re, const char *pattern, char *err, size_t err_size)
{
	char anchored[PATTERN_MAX + 8];
	int rc;

	if (strlen(pattern) > PATTERN_MAX) {
		snprintf(err, err_size, "longer than %d bytes", PATTERN_MAX);
		return -EINVAL;
	}
	snprintf(anchored, sizeof(anchored), "^(%s)$", pattern);
	rc = regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		regerror(rc, re, err, err_size);
		return -EINVAL;
	}
	return 0;
}

const char *pattern_check(const char *pattern, char why[128])
{
	regex_t re;

	if (pattern_compile(&re, pattern, why, 128) < 0)
		return why;
	regfree(&re);
	return NULL;
}
