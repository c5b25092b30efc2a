/* SPDX-License-Identifier: MIT */
/*
 * poller - one pread of a stats fd's data block into its ring.
 *
 * The data block is read in one call straight into the ring slot: no copy,
 * no parsing on the hot path. pread, never read: the fd may be a copy that
 * shares its file offset with the VMM.
 */
#ifndef KVMSTATD_POLLER_H
#define KVMSTATD_POLLER_H

#include <stdint.h>

#include "source.h"

/* 0, or -errno / -EIO (short read); the ring keeps its previous sample. */
int poller_sample(struct source *s, uint64_t now_ns);

/*
 * What a tick reads, flat: fd, extent and ring of every polled source in
 * one array, rebuilt when sources come and go. A tick once a second finds
 * the caches cold; walking VM -> source -> schema -> ring cost a cache miss
 * at each step, about as much again as the preads themselves. The list
 * holds no references: its owner rebuilds it before a source it names is
 * freed.
 */
struct poll_item {
	struct ring *ring;
	int fd;
	uint32_t offset, bytes;
	struct ring *hist; /* NULL: no history */
	const uint32_t *scalar_index;
	uint32_t n_scalar;
};

struct poll_list {
	struct poll_item *items;
	size_t n, cap;
};

void poll_list_clear(struct poll_list *l);
int poll_list_add(struct poll_list *l, const struct source *s); /* 0 or -ENOMEM */
void poll_list_free(struct poll_list *l);

/* Append the single-value words of a sample to a history ring. */
void poller_keep_history(struct ring *hist, const uint32_t *scalar_index, uint32_t n_scalar,
			 const uint64_t *vals, uint64_t now_ns);

/* One pread per item into its ring; returns how many failed. */
unsigned poll_list_run(const struct poll_list *l, uint64_t now_ns);

#endif
