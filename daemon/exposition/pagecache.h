/* SPDX-License-Identifier: MIT */
/*
 * pagecache - the /metrics page rendered at most once per poll tick.
 *
 * Every scrape within one tick would render the same bytes, so the first
 * scrape of a tick renders the page for its format (and compresses it if it
 * asked for gzip) and every later one in the same tick shares those bytes.
 * A tick is a snapshot generation (snapshot_generation()) of the worker's
 * snapshot_pub: it moves when the poller has written new samples or
 * published new sources.
 *
 * Pages are immutable and reference counted: a client still downloading
 * the previous tick's page keeps it alive after the cache moved on.
 * Concurrent scrapes of the same format wait for one render instead of
 * rendering in parallel.
 */
#ifndef KVMSTATD_PAGECACHE_H
#define KVMSTATD_PAGECACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "render.h"
#include "selfstats.h"
#include "snapshot.h"

struct page;
struct pagecache;

/*
 * Pages of what snaps publishes. snaps, stats and rc are borrowed and must
 * outlive the cache (rc NULL: render_metrics' defaults).
 */
int pagecache_new(struct pagecache **out, struct snapshot_pub *snaps, struct selfstats *stats,
		  const struct render_config *rc);
void pagecache_free(struct pagecache *pc);

/*
 * The current page for fmt, gzip-compressed if gz. The caller owns one
 * reference. -ENOMEM or -EIO (compression) on failure.
 */
int pagecache_get(struct pagecache *pc, enum render_format fmt, bool gz, struct page **out);

/*
 * Drop the pages of past ticks now rather than at the next scrape: with a
 * scrape every 15 s and a tick every second, a stale page (tens of MB at
 * thousands of vCPUs) would otherwise sit in memory for most of the time.
 * Never waits: an entry being rendered is left for the next tick.
 */
void pagecache_drop_stale(struct pagecache *pc);

const char *page_data(const struct page *p);
size_t page_len(const struct page *p);
struct page *page_ref(struct page *p);
void page_unref(struct page *p);

#endif
