/* SPDX-License-Identifier: MIT */
/*
 * fuzz_webauth - libFuzzer target: arbitrary bytes as the value of an
 * Authorization header (authheader_parse) and as base64
 * (authheader_b64decode).
 *
 * What is accepted must be what authheader.h promises: a non-empty user
 * without ':' and neither part with a control character, and base64 that
 * encodes back to exactly the input (one encoding per text). Build and
 * run: see tests/fuzz/README.md. Seeds: tests/fuzz/corpus/webauth.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authheader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode(const unsigned char *in, size_t len, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);

		*out++ = a[v >> 18 & 63];
		*out++ = a[v >> 12 & 63];
		*out++ = i + 1 < len ? a[v >> 6 & 63] : '=';
		*out++ = i + 2 < len ? a[v & 63] : '=';
	}
	*out = '\0';
}

static void check_part(const char *s, int is_user)
{
	if (is_user && (!*s || strchr(s, ':')))
		abort();
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			abort();
}

static void check_parse(const char *text)
{
	char user[64], pass[AUTHHEADER_MAX], again[2 * AUTHHEADER_MAX];
	unsigned char joined[AUTHHEADER_MAX + 64];
	int rc = authheader_parse(text, user, sizeof(user), pass, sizeof(pass));
	int n;

	if (rc != 0) {
		if (rc != -ENOENT && rc != -EINVAL && rc != -E2BIG)
			abort();
		return;
	}
	check_part(user, 1);
	check_part(pass, 0);
	n = snprintf((char *)joined, sizeof(joined), "%s:%s", user, pass);
	if (n < 0 || (size_t)n >= sizeof(joined))
		abort();
	encode(joined, (size_t)n, again);
	if (strcmp(text + 5 + strspn(text + 5, " "), again))
		abort(); /* the header holds exactly this encoding */
}

static void check_decode(const uint8_t *data, size_t size)
{
	unsigned char out[AUTHHEADER_MAX];
	char again[2 * AUTHHEADER_MAX + 4];
	int n = authheader_b64decode((const char *)data, size, out, sizeof(out));

	if (n < 0) {
		if (n != -EINVAL && n != -E2BIG)
			abort();
		return;
	}
	if ((size_t)n > sizeof(out))
		abort();
	encode(out, (size_t)n, again);
	if (strlen(again) != size || memcmp(again, data, size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	check_parse(text);
	check_decode(data, size);
	free(text);
	return 0;
}
