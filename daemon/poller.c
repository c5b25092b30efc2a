/* SPDX-License-Identifier: MIT */
/* poller - see poller.h. */
#include "poller.h"

#include <errno.h>
#include <unistd.h>

int poller_sample(struct source *s, uint64_t now_ns)
{
	size_t want = (size_t)s->schema->data_words * 8;
	uint64_t *slot;
	ssize_t n;

	if (s->fd < 0)
		return -EBADF;
	slot = ring_begin_write(s->ring);
	n = pread(s->fd, slot, want, s->schema->data_offset);
	if (n != (ssize_t)want) {
		int rc = n < 0 ? -errno : -EIO;

		ring_abort(s->ring);
		return rc;
	}
	ring_commit(s->ring, now_ns);
	return 0;
}
