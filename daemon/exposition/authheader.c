/* SPDX-License-Identifier: MIT */
/* authheader - see authheader.h. */
#include "authheader.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* 0..63 for a base64 character, -1 for anything else ('=' included). */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Padding: 0, 1 or 2 '=' at the very end, and only there. */
static int count_padding(const char *in, size_t len)
{
	size_t pad = 0;

	while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
		pad++;
	return memchr(in, '=', len - pad) ? -EINVAL : (int)pad;
}

int authheader_b64decode(const char *in, size_t in_len, unsigned char *out, size_t out_size)
{
	int pad = in_len % 4 ? -EINVAL : count_padding(in, in_len);
	size_t n = 0, len;
	unsigned acc = 0;

	if (pad < 0)
		return pad;
	len = in_len / 4 * 3 - (size_t)pad;
	if (len > out_size)
		return -E2BIG;
	for (size_t i = 0; i < in_len - (size_t)pad; i++) {
		int v = b64_value((unsigned char)in[i]);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (unsigned)v;
		if (i % 4 == 3)
			for (int s = 16; s >= 0; s -= 8)
				out[n++] = (unsigned char)(acc >> s);
	}
	/* a partial group: 2 chars carry 1 byte (4 spare bits), 3 carry 2 (2 spare) */
	if (pad == 2) {
		if (acc & 0xf)
			return -EINVAL;
		out[n++] = (unsigned char)(acc >> 4);
	} else if (pad == 1) {
		if (acc & 0x3)
			return -EINVAL;
		out[n++] = (unsigned char)(acc >> 10);
		out[n++] = (unsigned char)(acc >> 2);
	}
	return (int)n;
}

static int copy_part(const unsigned char *p, size_t len, char *dst, size_t size)
{
	if (len >= size)
		return -E2BIG;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return -EINVAL;
	memcpy(dst, p, len);
	dst[len] = '\0';
	return 0;
}

/* user ":" password, the user not empty */
static int split(const unsigned char *text, size_t n, char *user, size_t user_size, char *pass,
		 size_t pass_size)
{
	const unsigned char *colon = memchr(text, ':', n);
	int rc;

	if (!colon || colon == text)
		return -EINVAL;
	rc = copy_part(text, (size_t)(colon - text), user, user_size);
	if (rc == 0)
		rc = copy_part(colon + 1, n - (size_t)(colon + 1 - text), pass, pass_size);
	return rc;
}

int authheader_parse(const char *value, char *user, size_t user_size, char *pass, size_t pass_size)
{
	unsigned char text[AUTHHEADER_MAX];
	size_t spaces, len;
	int rc;

	if (strncasecmp(value, "Basic", 5) || (value[5] != ' ' && value[5] != '\0'))
		return -ENOENT;
	value += 5;
	spaces = strspn(value, " ");
	value += spaces;
	len = strlen(value);
	if (spaces == 0 || len == 0)
		return -EINVAL;
	if (len > (AUTHHEADER_MAX + 2) / 3 * 4)
		return -E2BIG; /* refused before decoding: the input is bounded too */
	rc = authheader_b64decode(value, len, text, sizeof(text));
	if (rc >= 0)
		rc = split(text, (size_t)rc, user, user_size, pass, pass_size);
	/* the password must not stay behind on this stack */
	explicit_bzero(text, sizeof(text));
	return rc;
}
