/* SPDX-License-Identifier: MIT */
/* captured - see captured.h. */
#include "captured.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

unsigned char *captured_read(const char *dir, const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	unsigned char *b = NULL;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
	    !(b = malloc((size_t)n + 1)) || fread(b, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "%s: cannot read %s\n", program_invocation_short_name, path);
		exit(1);
	}
	fclose(f);
	b[n] = '\0';
	*len = (size_t)n;
	return b;
}

struct schema *captured_schema(const char *dir, const char *name, enum stat_scope scope)
{
	struct schema_error err;
	struct schema *s = NULL;
	size_t len;
	unsigned char *b = captured_read(dir, name, &len);

	if (schema_parse(b, len, scope, &s, &err) != 0) {
		fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, name, err.why);
		exit(1);
	}
	free(b);
	return s;
}

uint64_t captured_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
