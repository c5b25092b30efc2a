/* SPDX-License-Identifier: MIT */
/* pagecache - see pagecache.h. */
#include "pagecache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "clock.h"
#include "gzip.h"
#include "snapshot.h"

struct page {
	atomic_int refs;
	struct buf body;
};

/* One format's pages for one generation. */
struct entry {
	pthread_mutex_t lock; /* held while rendering: the other scrapes wait for it */
	uint64_t gen;
	struct page *plain, *gz;
	/*
	 * The last plain page's buffer, kept for the next render: writing into
	 * fresh memory costs a page fault per 4 KiB and the kernel's zeroing,
	 * several times the rendering itself (62 against 34 ns per line at
	 * 50x4). Only up to SPARE_MAX: a bigger one (16 MB at 400 VMs, 65 at
	 * 1,600) would sit in RSS between scrapes for the whole scrape interval;
	 * those come fresh in huge pages instead (buf.c).
	 */
	struct buf spare;
};

#define SPARE_MAX (8u << 20)

struct pagecache {
	struct snapshot_pub *snaps;
	struct selfstats *stats;
	const struct render_config *rc;
	atomic_size_t last_len; /* the previous page's size: the next one's first reservation */
	struct entry e[2];
};

const char *page_data(const struct page *p)
{
	return p->body.data;
}

size_t page_len(const struct page *p)
{
	return p->body.len;
}

struct page *page_ref(struct page *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void page_unref(struct page *p)
{
	if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	buf_free(&p->body);
	free(p);
}

static struct page *page_new(void)
{
	struct page *p = calloc(1, sizeof(*p));

	if (p)
		atomic_init(&p->refs, 1);
	return p;
}

int pagecache_new(struct pagecache **out, struct snapshot_pub *snaps, struct selfstats *stats,
		  const struct render_config *rc)
{
	struct pagecache *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return -ENOMEM;
	pc->snaps = snaps;
	pc->stats = stats;
	pc->rc = rc;
	for (int i = 0; i < 2; i++)
		pthread_mutex_init(&pc->e[i].lock, NULL);
	*out = pc;
	return 0;
}

static void entry_clear(struct entry *e)
{
	/* Under e->lock no scrape can take a new reference: refs 1 is ours alone. */
	if (e->plain && !e->spare.data && e->plain->body.cap <= SPARE_MAX &&
	    atomic_load_explicit(&e->plain->refs, memory_order_acquire) == 1) {
		e->spare = e->plain->body;
		e->spare.len = 0;
		e->plain->body = (struct buf){ 0 };
	}
	page_unref(e->plain);
	page_unref(e->gz);
	e->plain = e->gz = NULL;
}

void pagecache_free(struct pagecache *pc)
{
	if (!pc)
		return;
	for (int i = 0; i < 2; i++) {
		entry_clear(&pc->e[i]);
		buf_free(&pc->e[i].spare);
		pthread_mutex_destroy(&pc->e[i].lock);
	}
	free(pc);
}

static int render_page(struct pagecache *pc, struct entry *e, enum render_format fmt,
		       struct page **out)
{
	struct snapshot *snap = snapshot_acquire(pc->snaps);
	struct render_result res = { 0 };
	struct page *p = page_new();
	uint64_t t0 = clock_mono_ns();
	int rc = -ENOMEM;

	if (!p)
		goto out;
	p->body = e->spare;
	e->spare = (struct buf){ 0 };
	/* one allocation of about the right size instead of doubling through it */
	buf_reserve(&p->body, atomic_load_explicit(&pc->last_len, memory_order_relaxed) + 65536);
	rc = render_metrics(snap, pc->stats, fmt, pc->rc, &p->body, &res);
	if (rc < 0)
		goto out;
	atomic_store_explicit(&pc->last_len, p->body.len, memory_order_relaxed);
	stat_add(&pc->stats->renders, 1);
	stat_add(&pc->stats->render_ns_sum, clock_mono_ns() - t0);
	stat_add(&pc->stats->series_dropped, res.dropped);
	*out = p;
	p = NULL;
out:
	page_unref(p);
	snapshot_unref(snap);
	return rc;
}

static int compress_page(struct pagecache *pc, const struct page *plain, struct page **out)
{
	struct page *p = page_new();
	uint64_t t0 = clock_mono_ns();
	int rc = -ENOMEM;

	if (p)
		rc = gzip_compress(&plain->body, &p->body);
	if (rc < 0) {
		page_unref(p);
		return rc;
	}
	stat_add(&pc->stats->compressions, 1);
	stat_add(&pc->stats->compress_ns_sum, clock_mono_ns() - t0);
	*out = p;
	return 0;
}

void pagecache_drop_stale(struct pagecache *pc)
{
	for (int i = 0; pc && i < 2; i++) {
		struct entry *e = &pc->e[i];

		if (pthread_mutex_trylock(&e->lock) != 0)
			continue;
		if (e->plain && e->gen != snapshot_generation(pc->snaps))
			entry_clear(e); /* a client still sending it holds its own reference */
		pthread_mutex_unlock(&e->lock);
	}
}

int pagecache_get(struct pagecache *pc, enum render_format fmt, bool gz, struct page **out)
{
	struct entry *e = &pc->e[fmt == FMT_OPENMETRICS_100];
	uint64_t gen;
	int rc = 0;

	pthread_mutex_lock(&e->lock);
	/*
	 * Read under the lock (a scrape that waited must not tag a page with a
	 * generation older than the one it replaces) and before rendering (a
	 * tick that lands meanwhile makes this page stale, never the next).
	 */
	gen = snapshot_generation(pc->snaps);
	if (!e->plain || e->gen != gen) {
		entry_clear(e);
		rc = render_page(pc, e, fmt, &e->plain);
		e->gen = gen;
	}
	if (rc == 0 && gz && !e->gz)
		rc = compress_page(pc, e->plain, &e->gz);
	if (rc == 0)
		*out = page_ref(gz ? e->gz : e->plain);
	pthread_mutex_unlock(&e->lock);
	return rc;
}
