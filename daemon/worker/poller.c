/* SPDX-License-Identifier: MIT */
/* poller - see poller.h. */
#include "poller.h"

#include <errno.h>
#include <stdlib.h>
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
	if (s->hist)
		poller_keep_history(s->hist, s->schema->scalar_index, s->schema->n_scalar, slot,
				    now_ns);
	return 0;
}

void poller_keep_history(struct ring *hist, const uint32_t *scalar_index, uint32_t n_scalar,
			 const uint64_t *vals, uint64_t now_ns)
{
	uint64_t *h = ring_begin_write(hist);

	for (uint32_t k = 0; k < n_scalar; k++)
		h[k] = vals[scalar_index[k]];
	ring_commit(hist, now_ns);
}

void poll_list_clear(struct poll_list *l)
{
	l->n = 0;
}

int poll_list_add(struct poll_list *l, const struct source *s)
{
	if (s->fd < 0)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct poll_item *p = realloc(l->items, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->items = p;
		l->cap = cap;
	}
	l->items[l->n++] = (struct poll_item){ s->ring,
					       s->fd,
					       s->schema->data_offset,
					       s->schema->data_words * 8u,
					       s->hist,
					       s->schema->scalar_index,
					       s->schema->n_scalar };
	return 0;
}

void poll_list_free(struct poll_list *l)
{
	free(l->items);
	*l = (struct poll_list){ 0 };
}

unsigned poll_list_run(const struct poll_list *l, uint64_t now_ns)
{
	unsigned errors = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct poll_item *it = &l->items[i];
		uint64_t *slot;

		/* while this pread runs: the next ring's slot, and the ring after */
		if (i + 2 < l->n)
			__builtin_prefetch(l->items[i + 2].ring, 0);
		if (i + 1 < l->n)
			ring_prefetch_write(l->items[i + 1].ring);
		slot = ring_begin_write(it->ring);
		if (pread(it->fd, slot, it->bytes, it->offset) == (ssize_t)it->bytes) {
			ring_commit(it->ring, now_ns);
			if (it->hist) /* the slot stays ours to read until the next write */
				poller_keep_history(it->hist, it->scalar_index, it->n_scalar, slot,
						    now_ns);
		} else {
			ring_abort(it->ring);
			errors++;
		}
	}
	return errors;
}
