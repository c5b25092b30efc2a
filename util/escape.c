/* SPDX-License-Identifier: MIT */
/* escape - see escape.h. */
#include "escape.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and beyond U+10FFFF are not UTF-8 */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

bool escape_is_clean_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_len(p + i, len - i);

		if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7f)))
			return false;
		if (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0) /* C1 controls */
			return false;
		i += n;
	}
	return true;
}

int escape_text(const char *src, bool quote, char *out, size_t out_size)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t n = 0, total = strlen(src);

	if (out_size == 0)
		return -ENOSPC;
	for (size_t i = 0; i < total;) {
		char rep[4];
		size_t rl = 0, sl = utf8_len(p + i, total - i);

		if (sl == 0) {
			memcpy(rep, "\xef\xbf\xbd", 3), rl = 3, sl = 1;
		} else if (p[i] == '\\') {
			rep[0] = '\\', rep[1] = '\\', rl = 2;
		} else if (p[i] == '\n') {
			rep[0] = '\\', rep[1] = 'n', rl = 2;
		} else if (p[i] == '"' && quote) {
			rep[0] = '\\', rep[1] = '"', rl = 2;
		}
		if (n + (rl ? rl : sl) + 1 > out_size) {
			if (out_size)
				out[0] = '\0';
			return -ENOSPC;
		}
		memcpy(out + n, rl ? rep : src + i, rl ? rl : sl);
		n += rl ? rl : sl;
		i += sl;
	}
	out[n] = '\0';
	return (int)n;
}

/* The code point of the valid sequence of sl bytes at s. */
static uint32_t code_point(const unsigned char *s, size_t sl)
{
	static const unsigned char lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	uint32_t cp = s[0] & lead_mask[sl];

	for (size_t i = 1; i < sl; i++)
		cp = (cp << 6) | (s[i] & 0x3f);
	return cp;
}

/* Line and paragraph separators, direction marks, embeddings and isolates. */
static bool reorders_line(uint32_t cp)
{
	return cp == 0x2028 || cp == 0x2029 || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The escape of the sl bytes at s (sl 0: one byte that is not UTF-8) into
 * rep; its length, or 0 when the bytes pass as they are. */
static size_t log_escape_of(const unsigned char *s, size_t sl, char rep[16])
{
	static const char named[0x20] = { ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't', [0x1b] = 'e' };
	uint32_t cp = sl ? code_point(s, sl) : 0;

	if (sl == 0) /* not UTF-8 */
		return (size_t)snprintf(rep, 16, "\\x%02x", s[0]);
	if (sl == 2 && cp < 0xa0) /* a C1 control */
		return (size_t)snprintf(rep, 16, "\\x%02x\\x%02x", s[0], s[1]);
	if (cp == '\\')
		return (size_t)snprintf(rep, 16, "\\\\");
	if (cp < 0x20 && named[cp])
		return (size_t)snprintf(rep, 16, "\\%c", named[cp]);
	if (cp < 0x20 || cp == 0x7f)
		return (size_t)snprintf(rep, 16, "\\x%02x", (unsigned)cp);
	if (reorders_line(cp))
		return (size_t)snprintf(rep, 16, "\\u{%04x}", (unsigned)cp);
	return 0;
}

size_t escape_log(const char *src, size_t len, char *out, size_t out_size)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t n = 0;

	if (out_size == 0)
		return 0;
	for (size_t i = 0; i < len;) {
		char rep[16];
		size_t sl = utf8_len(p + i, len - i), rl = log_escape_of(p + i, sl, rep);
		size_t step = sl ? sl : 1, add = rl ? rl : step;

		if (n + add + 1 > out_size)
			break;
		memcpy(out + n, rl ? rep : src + i, add);
		n += add;
		i += step;
	}
	out[n] = '\0';
	return n;
}
