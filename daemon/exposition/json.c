/* SPDX-License-Identifier: MIT */
/* json - see json.h. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"

void json_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = strlen(s);
	bool utf8 = escape_is_clean_utf8(s, len);

	buf_putc(b, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
		} else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

			buf_put(b, e, sizeof(e));
		} else {
			buf_putc(b, (char)c);
		}
	}
	buf_putc(b, '"');
}

void json_key_str(struct buf *b, const char *key, const char *value)
{
	buf_putc(b, ',');
	json_str(b, key);
	buf_putc(b, ':');
	json_str(b, value);
}

void json_num(struct buf *b, double v)
{
	if (!isfinite(v))
		buf_puts(b, "null");
	else if (v == 0)
		buf_putc(b, '0'); /* never -0 */
	else
		buf_printf(b, "%.15g", v);
}
