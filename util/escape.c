/* SPDX-License-Identifier: MIT */
/* escape - see escape.h. */
#include "escape.h"

#include <errno.h>
#include <stdint.h>
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
