/* SPDX-License-Identifier: MIT */
/*
 * test_pagecache - a page rendered at most once per snapshot generation and
 * format, its gzip at most once, pages outliving the cache's hold on them.
 *
 * The snapshot is published where the worker would (a snapshot_pub), built
 * from the real captured schemas; selfstats counts renders and
 * compressions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <zlib.h>

#include "pagecache.h"
#include "render.h"
#include "snapshot.h"
#include "testutil.h"

struct world {
	struct schema *vm_schema, *vcpu_schema;
	struct vm_meta *vm;
	struct source *src[3];
	struct selfstats stats;
	struct snapshot_pub snaps;
	struct pagecache *pc;
};

static uint8_t *vm_blk, *vcpu_blk;
static size_t vm_len, vcpu_len;

static int load_data(void **state)
{
	(void)state;
	vm_blk = tu_read_file(TU_VM_LAYOUT, &vm_len);
	vcpu_blk = tu_read_file(TU_VCPU_LAYOUT, &vcpu_len);
	return 0;
}

static int free_data(void **state)
{
	(void)state;
	free(vm_blk);
	free(vcpu_blk);
	return 0;
}

/* vCPU i's exits = exits, everything else 0 (VM source: word 0 = exits). */
static void commit_exits(struct world *w, size_t i, uint64_t exits)
{
	struct source *s = w->src[i];
	uint64_t *slot = ring_begin_write(s->ring);
	const struct schema_stat *st = tu_stat_by_desc(s->schema, i ? "exits" : "remote_tlb_flush");

	assert_non_null(st);
	memset(slot, 0, (size_t)ring_words(s->ring) * 8);
	slot[st->index] = exits;
	ring_commit(s->ring, 1000);
}

static void publish(struct world *w)
{
	struct snapshot *snap = NULL;

	assert_int_equal(snapshot_build(&snap, &w->vm, 1, w->src, 3, NULL), 0);
	snapshot_publish(&w->snaps, snap);
}

/* VM "pc" with its VM stats and two vCPUs; published; a cache with default options. */
static int build_world(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	snapshot_pub_init(&w->snaps);
	w->vm_schema = tu_parse(vm_blk, vm_len, SCOPE_VM);
	w->vcpu_schema = tu_parse(vcpu_blk, vcpu_len, SCOPE_VCPU);
	assert_int_equal(vm_meta_new(&w->vm, 1, 4242, 1000, "pc", "kvm-4242", "vmm", "registered"),
			 0);
	assert_int_equal(source_new(&w->src[0], w->vm, schema_ref(w->vm_schema), -1, -1, 4), 0);
	assert_int_equal(source_new(&w->src[1], w->vm, schema_ref(w->vcpu_schema), -1, 0, 4), 0);
	assert_int_equal(source_new(&w->src[2], w->vm, schema_ref(w->vcpu_schema), -1, 1, 4), 0);
	for (size_t i = 0; i < 3; i++)
		commit_exits(w, i, 10 + i);
	publish(w);
	w->stats.start_time = 1700000000;
	assert_int_equal(pagecache_new(&w->pc, &w->snaps, &w->stats, NULL), 0);
	*state = w;
	return 0;
}

static int free_world(void **state)
{
	struct world *w = *state;

	pagecache_free(w->pc);
	snapshot_pub_fini(&w->snaps);
	for (size_t i = 0; i < 3; i++)
		source_unref(w->src[i]);
	vm_meta_unref(w->vm);
	schema_unref(w->vm_schema);
	schema_unref(w->vcpu_schema);
	free(w);
	return 0;
}

static struct page *get(struct world *w, enum render_format fmt, bool gz)
{
	struct page *p = NULL;

	assert_int_equal(pagecache_get(w->pc, fmt, gz, &p), 0);
	assert_non_null(p);
	return p;
}

/* A page's bytes as a NUL-terminated malloc'd string. */
static char *text_of(const struct page *p)
{
	return strndup(page_data(p), page_len(p));
}

/* gunzip a page (a gzip member) into a malloc'd string. */
static char *gunzip(const struct page *p)
{
	size_t cap = 1 << 22;
	char *out = malloc(cap + 1);
	z_stream z;

	assert_non_null(out);
	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)page_data(p);
	z.avail_in = (uInt)page_len(p);
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.avail_in, 0); /* one member, nothing after it */
	out[z.total_out] = '\0';
	inflateEnd(&z);
	return out;
}

static void test_two_gets_within_a_generation_share_one_page(void **state)
{
	struct world *w = *state;
	struct page *a = get(w, FMT_TEXT_004, false);
	struct page *b = get(w, FMT_TEXT_004, false);

	assert_ptr_equal(a, b);
	assert_int_equal(stat_get(&w->stats.renders), 1);
	assert_int_equal(stat_get(&w->stats.compressions), 0);
	page_unref(a);
	page_unref(b);
}

static void test_a_tick_makes_the_next_get_render_a_new_page(void **state)
{
	struct world *w = *state;
	struct page *a = get(w, FMT_TEXT_004, false), *b, *c;
	uint64_t gen = snapshot_generation(&w->snaps);

	snapshot_tick(&w->snaps);
	assert_true(snapshot_generation(&w->snaps) > gen);
	b = get(w, FMT_TEXT_004, false);
	c = get(w, FMT_TEXT_004, false);
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(b, c);
	assert_int_equal(stat_get(&w->stats.renders), 2);
	page_unref(a);
	page_unref(b);
	page_unref(c);
}

static void test_a_page_shows_the_samples_of_its_generation(void **state)
{
	struct world *w = *state;
	struct page *a = get(w, FMT_TEXT_004, false), *b, *c;
	char *s;

	s = text_of(a);
	assert_non_null(strstr(s, "\nkvm_vcpu_exits_total{vm=\"pc\",vcpu=\"0\"} 11\n"));
	free(s);
	/* a new sample without a tick: the page of this generation is served */
	commit_exits(w, 1, 99);
	b = get(w, FMT_TEXT_004, false);
	assert_ptr_equal(a, b);
	/* the poller's tick after writing it: the next page has it */
	snapshot_tick(&w->snaps);
	c = get(w, FMT_TEXT_004, false);
	s = text_of(c);
	assert_non_null(strstr(s, "\nkvm_vcpu_exits_total{vm=\"pc\",vcpu=\"0\"} 99\n"));
	free(s);
	page_unref(a);
	page_unref(b);
	page_unref(c);
}

static void test_publishing_a_snapshot_moves_the_generation(void **state)
{
	struct world *w = *state;
	struct page *a = get(w, FMT_OPENMETRICS_100, false), *b;
	char *s;

	publish(w); /* sources came or went */
	b = get(w, FMT_OPENMETRICS_100, false);
	assert_ptr_not_equal(a, b);
	s = text_of(b);
	assert_non_null(strstr(s, "kvm_vm_info{vm=\"pc\""));
	free(s);
	page_unref(a);
	page_unref(b);
}

static void test_each_format_is_rendered_once_per_generation(void **state)
{
	struct world *w = *state;
	struct page *t1 = get(w, FMT_TEXT_004, false), *o1 = get(w, FMT_OPENMETRICS_100, false);
	struct page *t2 = get(w, FMT_TEXT_004, false), *o2 = get(w, FMT_OPENMETRICS_100, false);
	char *t = text_of(t1), *o = text_of(o1);

	assert_ptr_equal(t1, t2);
	assert_ptr_equal(o1, o2);
	assert_ptr_not_equal(t1, o1);
	assert_int_equal(stat_get(&w->stats.renders), 2);
	assert_null(strstr(t, "# EOF"));
	assert_non_null(strstr(o, "# EOF\n"));
	snapshot_tick(&w->snaps);
	page_unref(get(w, FMT_TEXT_004, false));
	page_unref(get(w, FMT_OPENMETRICS_100, false));
	page_unref(get(w, FMT_TEXT_004, false));
	assert_int_equal(stat_get(&w->stats.renders), 4);
	free(t);
	free(o);
	page_unref(t1);
	page_unref(t2);
	page_unref(o1);
	page_unref(o2);
}

static void test_gzip_is_compressed_once_per_generation_and_unzips_to_the_plain_page(void **state)
{
	struct world *w = *state;
	struct page *z1 = get(w, FMT_OPENMETRICS_100, true);
	struct page *z2 = get(w, FMT_OPENMETRICS_100, true);
	struct page *plain = get(w, FMT_OPENMETRICS_100, false);
	char *unz = gunzip(z1), *txt = text_of(plain);

	assert_ptr_equal(z1, z2);
	assert_ptr_not_equal(z1, plain);
	assert_int_equal(stat_get(&w->stats.renders), 1);
	assert_int_equal(stat_get(&w->stats.compressions), 1);
	assert_string_equal(unz, txt);
	assert_true(page_len(z1) < page_len(plain));
	free(unz);
	free(txt);
	page_unref(z1);
	page_unref(z2);
	page_unref(plain);

	/* next generation: one more render, one more compression */
	snapshot_tick(&w->snaps);
	page_unref(get(w, FMT_OPENMETRICS_100, false));
	page_unref(get(w, FMT_OPENMETRICS_100, true));
	page_unref(get(w, FMT_OPENMETRICS_100, true));
	assert_int_equal(stat_get(&w->stats.renders), 2);
	assert_int_equal(stat_get(&w->stats.compressions), 2);
	/* a plain-only generation compresses nothing */
	snapshot_tick(&w->snaps);
	page_unref(get(w, FMT_TEXT_004, false));
	assert_int_equal(stat_get(&w->stats.compressions), 2);
	assert_true(stat_get(&w->stats.render_ns_sum) > 0);
	assert_true(stat_get(&w->stats.compress_ns_sum) > 0);
}

static void test_compressions_counter_is_served_on_the_next_page(void **state)
{
	struct world *w = *state;
	struct page *p;
	char *s;

	page_unref(get(w, FMT_TEXT_004, true));
	snapshot_tick(&w->snaps);
	p = get(w, FMT_TEXT_004, false);
	s = text_of(p);
	assert_non_null(strstr(s, "\nkvmstatd_compressions_total 1\n"));
	assert_non_null(strstr(s, "\nkvmstatd_renders_total 1\n"));
	free(s);
	page_unref(p);
}

static void test_a_page_ref_stays_valid_after_the_cache_moved_on(void **state)
{
	struct world *w = *state;
	struct page *old = get(w, FMT_TEXT_004, false);
	struct page *oldz = get(w, FMT_TEXT_004, true);
	char *want = text_of(old), *wantz = gunzip(oldz), *s;

	/* two generations later the cache holds neither */
	for (int i = 0; i < 2; i++) {
		snapshot_tick(&w->snaps);
		commit_exits(w, 2, 1000 + (uint64_t)i);
		page_unref(get(w, FMT_TEXT_004, false));
		page_unref(get(w, FMT_TEXT_004, true));
	}
	s = text_of(old);
	assert_string_equal(s, want);
	free(s);
	s = gunzip(oldz);
	assert_string_equal(s, wantz);
	free(s);
	/* a reference taken from a page still being sent */
	page_unref(page_ref(old));
	s = text_of(old);
	assert_string_equal(s, want);
	free(s);
	free(want);
	free(wantz);
	page_unref(old);
	page_unref(oldz);
}

static void test_freeing_the_cache_leaves_held_pages_alive(void **state)
{
	struct world *w = *state;
	struct page *p = get(w, FMT_OPENMETRICS_100, true);
	char *want = gunzip(p), *s;

	pagecache_free(w->pc);
	w->pc = NULL;
	s = gunzip(p);
	assert_string_equal(s, want);
	free(s);
	free(want);
	page_unref(p);
	assert_int_equal(pagecache_new(&w->pc, &w->snaps, &w->stats, NULL), 0);
}

static void test_nothing_published_renders_the_selfstats_page(void **state)
{
	struct world *w = *state;
	struct page *p;
	char *s;

	snapshot_publish(&w->snaps, NULL);
	p = get(w, FMT_OPENMETRICS_100, false);
	s = text_of(p);
	assert_null(strstr(s, "kvm_vm_info"));
	assert_non_null(strstr(s, "kvmstatd_sources{kind=\"vm\"} 0\n"));
	assert_true(strlen(s) >= 6 && !strcmp(s + strlen(s) - 6, "# EOF\n"));
	free(s);
	page_unref(p);
}

static void test_the_caches_options_shape_the_page_and_drops_add_up(void **state)
{
	struct world *w = *state;
	const struct render_config rc = {
		.opts = { .vcpu_sum = true, .no_created = true, .max_series = 20 },
	};
	struct pagecache *pc = NULL;
	struct page *p = NULL;
	uint64_t dropped;
	char *s;

	assert_int_equal(pagecache_new(&pc, &w->snaps, &w->stats, &rc), 0);
	assert_int_equal(pagecache_get(pc, FMT_OPENMETRICS_100, false, &p), 0);
	s = text_of(p);
	assert_null(strstr(s, "vcpu=\""));
	assert_null(strstr(s, "kvm_vm_remote_tlb_flush_created"));
	assert_non_null(strstr(s, "\nkvmstatd_series 20\n"));
	free(s);
	page_unref(p);
	dropped = stat_get(&w->stats.series_dropped);
	assert_true(dropped > 0);
	/* a second render of a later tick drops as many again */
	snapshot_tick(&w->snaps);
	assert_int_equal(pagecache_get(pc, FMT_OPENMETRICS_100, false, &p), 0);
	page_unref(p);
	assert_int_equal(stat_get(&w->stats.series_dropped), 2 * dropped);
	/* within the tick: no render, nothing more counted */
	assert_int_equal(pagecache_get(pc, FMT_OPENMETRICS_100, false, &p), 0);
	page_unref(p);
	assert_int_equal(stat_get(&w->stats.series_dropped), 2 * dropped);
	pagecache_free(pc);
}

#define THREADS 8
#define GETS 50

struct racer {
	struct world *w;
	pthread_barrier_t *go;
	struct page *first;
	bool all_same;
};

static void *race(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->all_same = true;
	for (int i = 0; i < GETS; i++) {
		struct page *p = NULL;

		if (pagecache_get(r->w->pc, FMT_OPENMETRICS_100, i % 2 == 0, &p) < 0)
			return NULL;
		if (i == 0)
			r->first = page_ref(p);
		else if (i % 2 == 0)
			r->all_same &= p == r->first;
		page_unref(p);
	}
	return r;
}

static void test_concurrent_gets_of_one_generation_render_and_compress_once(void **state)
{
	struct world *w = *state;
	struct racer r[THREADS];
	pthread_t t[THREADS];
	pthread_barrier_t go;

	pthread_barrier_init(&go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct racer){ .w = w, .go = &go };
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		void *ret = NULL;

		pthread_join(t[i], &ret);
		assert_ptr_equal(ret, &r[i]);
		assert_true(r[i].all_same);
		assert_ptr_equal(r[i].first, r[0].first);
	}
	for (int i = 0; i < THREADS; i++)
		page_unref(r[i].first);
	pthread_barrier_destroy(&go);
	assert_int_equal(stat_get(&w->stats.renders), 1);
	assert_int_equal(stat_get(&w->stats.compressions), 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, build_world, free_world)
	const struct CMUnitTest tests[] = {
		T(test_two_gets_within_a_generation_share_one_page),
		T(test_a_tick_makes_the_next_get_render_a_new_page),
		T(test_a_page_shows_the_samples_of_its_generation),
		T(test_publishing_a_snapshot_moves_the_generation),
		T(test_each_format_is_rendered_once_per_generation),
		T(test_gzip_is_compressed_once_per_generation_and_unzips_to_the_plain_page),
		T(test_compressions_counter_is_served_on_the_next_page),
		T(test_a_page_ref_stays_valid_after_the_cache_moved_on),
		T(test_freeing_the_cache_leaves_held_pages_alive),
		T(test_nothing_published_renders_the_selfstats_page),
		T(test_the_caches_options_shape_the_page_and_drops_add_up),
		T(test_concurrent_gets_of_one_generation_render_and_compress_once),
	};
#undef T

	return cmocka_run_group_tests(tests, load_data, free_data);
}
