/* SPDX-License-Identifier: MIT */
/*
 * ring - recent samples of one stats fd: one writer, any number of readers.
 *
 * Each slot carries a sequence number (odd while written). The writer fills
 * the slot after the newest, then publishes it; a reader copies the newest
 * slot and retries if its sequence moved. Nobody ever blocks: the poller
 * never waits for a scrape and a scrape never waits for the poller.
 */
#ifndef KVMSTATD_RING_H
#define KVMSTATD_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct ring;

int ring_new(struct ring **out, uint32_t slots, uint32_t words);
void ring_free(struct ring *r);

/* Writer side: get the slot to fill, then commit or abort it. */
uint64_t *ring_begin_write(struct ring *r);
void ring_commit(struct ring *r, uint64_t timestamp_ns);
void ring_abort(struct ring *r);
/* Ask the CPU for the slot the next ring_begin_write() will fill. */
void ring_prefetch_write(const struct ring *r);

/*
 * Reader side: copy the newest sample (words values) into vals. Returns 0,
 * -ENODATA when nothing was written yet, -EAGAIN if the writer lapped the
 * reader too often (never seen in practice; a bound, not a loop forever).
 */
int ring_read_latest(const struct ring *r, uint64_t *vals, uint64_t *timestamp_ns);

/*
 * Copy n words from word first of the sample back samples before the
 * newest (back 0: the newest) into vals. Returns 0, -ENODATA when that
 * sample was never written or is no longer kept (a ring of S slots keeps
 * S - 1: the writer may be filling the last), -EAGAIN as above. first + n
 * must be at most ring_words().
 */
int ring_read_back(const struct ring *r, uint32_t back, uint32_t first, uint32_t n, uint64_t *vals,
		   uint64_t *timestamp_ns);

uint64_t ring_count(const struct ring *r); /* samples committed so far */
uint32_t ring_words(const struct ring *r);
uint32_t ring_slots(const struct ring *r);
size_t ring_bytes(const struct ring *r);	       /* memory it holds, itself included */
size_t ring_bytes_for(uint32_t slots, uint32_t words); /* the same, before ring_new */

#endif
