/* SPDX-License-Identifier: MIT */
/* ring - see ring.h. A seqlock per slot, as in the kernel's seqcount. */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	atomic_uint seq;
	uint64_t timestamp_ns;
	uint64_t vals[];
};

struct ring {
	uint32_t slots, words;
	size_t slot_size;
	atomic_uint_fast64_t count; /* committed samples; newest is count - 1 */
	unsigned char *mem;
};

static struct slot *slot_at(const struct ring *r, uint64_t n)
{
	return (struct slot *)(void *)(r->mem + (n % r->slots) * r->slot_size);
}

/* a cache line per slot start keeps the writer off the readers' lines */
static size_t slot_size_for(uint32_t words)
{
	return (sizeof(struct slot) + (size_t)words * 8 + 63) & ~(size_t)63;
}

int ring_new(struct ring **out, uint32_t slots, uint32_t words)
{
	struct ring *r = calloc(1, sizeof(*r));

	if (!r || slots < 2)
		goto fail;
	r->slots = slots;
	r->words = words;
	r->slot_size = slot_size_for(words);
	r->mem = aligned_alloc(64, r->slot_size * slots);
	if (!r->mem)
		goto fail;
	memset(r->mem, 0, r->slot_size * slots);
	atomic_init(&r->count, 0);
	*out = r;
	return 0;
fail:
	free(r);
	return slots < 2 ? -EINVAL : -ENOMEM;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	free(r->mem);
	free(r);
}

uint64_t *ring_begin_write(struct ring *r)
{
	struct slot *s = slot_at(r, atomic_load_explicit(&r->count, memory_order_relaxed));

	atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed); /* odd: writing */
	atomic_thread_fence(memory_order_release);
	return s->vals;
}

void ring_prefetch_write(const struct ring *r)
{
	__builtin_prefetch(slot_at(r, atomic_load_explicit(&r->count, memory_order_relaxed)), 1);
}

void ring_commit(struct ring *r, uint64_t timestamp_ns)
{
	uint64_t n = atomic_load_explicit(&r->count, memory_order_relaxed);
	struct slot *s = slot_at(r, n);

	s->timestamp_ns = timestamp_ns;
	atomic_fetch_add_explicit(&s->seq, 1, memory_order_release); /* even: done */
	atomic_store_explicit(&r->count, n + 1, memory_order_release);
}

void ring_abort(struct ring *r)
{
	struct slot *s = slot_at(r, atomic_load_explicit(&r->count, memory_order_relaxed));

	/* the slot is not the newest, so no reader relies on its old content */
	atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
}

int ring_read_latest(const struct ring *r, uint64_t *vals, uint64_t *timestamp_ns)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t n = atomic_load_explicit(&r->count, memory_order_acquire);
		struct slot *s;
		unsigned seq;

		if (n == 0)
			return -ENODATA;
		s = slot_at(r, n - 1);
		seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (seq & 1)
			continue;
		memcpy(vals, s->vals, (size_t)r->words * 8);
		*timestamp_ns = s->timestamp_ns;
		atomic_thread_fence(memory_order_acquire);
		/*
		 * The seq check alone misses a writer that lapped us between
		 * reading count and reading seq (our slot then holds a newer or
		 * an aborted sample with an even seq). The writer only reaches
		 * our slot once count has advanced by slots - 1.
		 */
		if (atomic_load_explicit(&s->seq, memory_order_relaxed) == seq &&
		    atomic_load_explicit(&r->count, memory_order_relaxed) - n < r->slots - 1)
			return 0;
	}
	return -EAGAIN;
}

int ring_read_back(const struct ring *r, uint32_t back, uint32_t first, uint32_t n, uint64_t *vals,
		   uint64_t *timestamp_ns)
{
	int rc = -EAGAIN;

	for (int tries = 0; tries < 16 && rc == -EAGAIN; tries++) {
		uint64_t count = atomic_load_explicit(&r->count, memory_order_acquire), k;
		const struct slot *s;
		unsigned seq;

		if (back >= count || back + 1 >= r->slots) {
			rc = -ENODATA;
			break;
		}
		k = count - 1 - back;
		s = slot_at(r, k);
		seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (seq & 1)
			continue;
		memcpy(vals, s->vals + first, (size_t)n * 8);
		*timestamp_ns = s->timestamp_ns;
		atomic_thread_fence(memory_order_acquire);
		/* as in ring_read_latest: the writer reaches sample k's slot
		 * only once count has moved past k by slots - 1 */
		if (atomic_load_explicit(&s->seq, memory_order_relaxed) == seq &&
		    atomic_load_explicit(&r->count, memory_order_relaxed) - k < r->slots)
			rc = 0;
	}
	return rc;
}

uint64_t ring_count(const struct ring *r)
{
	return atomic_load_explicit(&r->count, memory_order_acquire);
}

uint32_t ring_words(const struct ring *r)
{
	return r->words;
}

uint32_t ring_slots(const struct ring *r)
{
	return r->slots;
}

size_t ring_bytes(const struct ring *r)
{
	return sizeof(*r) + r->slot_size * r->slots;
}

size_t ring_bytes_for(uint32_t slots, uint32_t words)
{
	return sizeof(struct ring) + slot_size_for(words) * slots;
}
