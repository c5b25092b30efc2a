/* SPDX-License-Identifier: MIT */
/*
 * snapshot - the immutable set of sources a scrape renders, and its plan.
 *
 * The poller builds a new snapshot whenever sources come or go and
 * publishes it; a scrape takes a reference to the current one and renders
 * it without any lock held. The plan groups samples by family, as both
 * exposition formats require, even when sources have different schemas.
 */
#ifndef KVMSTATD_SNAPSHOT_H
#define KVMSTATD_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"
#include "statfilter.h"

struct plan_part {
	const struct schema *schema;
	size_t stat;	     /* index in schema->stats */
	size_t first, count; /* sources[first .. first+count) use this schema */
};

struct plan_family {
	const struct schema_stat *head; /* the first stat: names, type, headers */
	size_t n_parts;
	struct plan_part *parts;
};

struct snapshot {
	atomic_int refs;
	size_t n_vms;
	struct vm_meta **vms;
	size_t n_sources, n_vcpus;
	struct source **sources; /* sorted by scope, schema, VM, vCPU */
	size_t n_families;
	struct plan_family *families;
	unsigned type_conflicts; /* stats left out: same family, other type */
};

/*
 * Build from arrays of borrowed pointers (the snapshot takes references).
 * Only the stats filter keeps (NULL: all) get a place in the plan.
 */
int snapshot_build(struct snapshot **out, struct vm_meta *const *vms, size_t n_vms,
		   struct source *const *sources, size_t n_sources,
		   const struct stat_filter *filter);
void snapshot_unref(struct snapshot *s);

/*
 * Where the poller publishes the current snapshot and scrapes take it:
 * one per worker, which owns it and lends it to its page cache. The only
 * lock guards the published pointer and is held for a pointer copy and a
 * reference increment: no I/O, no render.
 */
struct snapshot_pub {
	pthread_mutex_t lock;
	struct snapshot *current; /* under lock; NULL before the first publish */
	/*
	 * A number that moves whenever what a scrape would show changes: at
	 * every publish and at every poll tick (snapshot_tick). Pages
	 * rendered at one generation can be served until it moves.
	 */
	atomic_uint_fast64_t generation;
};

void snapshot_pub_init(struct snapshot_pub *p);
void snapshot_pub_fini(struct snapshot_pub *p); /* drops the current snapshot */

void snapshot_publish(struct snapshot_pub *p,
		      struct snapshot *s);		   /* takes the caller's reference */
struct snapshot *snapshot_acquire(struct snapshot_pub *p); /* NULL before the first publish */

void snapshot_tick(struct snapshot_pub *p);
uint64_t snapshot_generation(struct snapshot_pub *p);

#endif
