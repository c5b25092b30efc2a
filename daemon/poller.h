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

#endif
