/* SPDX-License-Identifier: MIT */
/*
 * buf - a growable byte buffer for rendering. Appends never fail halfway:
 * an allocation failure latches buf->failed and later appends are no-ops,
 * so a renderer checks once at the end.
 */
#ifndef KVMSTATD_BUF_H
#define KVMSTATD_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct buf {
	char *data;
	size_t len, cap;
	bool failed;
};

bool buf_reserve(struct buf *b, size_t extra);
void buf_free(struct buf *b);

static inline void buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap && !buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static inline void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static inline void buf_putc(struct buf *b, char c)
{
	if (b->len + 1 > b->cap && !buf_reserve(b, 1))
		return;
	b->data[b->len++] = c;
}

void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Readable bytes past the end of a padded string. The renderer copies the
 * short pieces of a sample line 16 bytes at a time (cheaper than a call to
 * memcpy per piece), so every piece it copies is allocated with this slack.
 */
#define BUF_PAD 16

/* asprintf() into an allocation with BUF_PAD zero bytes past the NUL; *len
 * gets the length. NULL when out of memory. */
char *buf_padded_printf(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
