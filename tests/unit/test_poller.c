/* SPDX-License-Identifier: MIT */
/*
 * test_poller - a tick's pread lands in the source's ring and its
 * counters and gauges in its history, in the schema's order, histograms
 * left out; a failed read touches neither. The stats fd is a memfd laid
 * out like a real one (testutil's block, then the data block).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/mman.h>
#include <unistd.h>

#include "poller.h"
#include "source.h"
#include "testutil.h"

#define CUM (KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)
#define INST (KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)
#define HIST (KVM_STATS_TYPE_LINEAR_HIST | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)

/* data words: hist[3] at 0..2, exits at 3, blocking at 4 (not in descriptor order) */
static const struct tu_stat stats[] = {
	{ "exits", CUM, 0, 1, 24, 0 },
	{ "sizes_hist", HIST, 0, 3, 0, 10 },
	{ "blocking", INST, 0, 1, 32, 0 },
};

struct fixture {
	struct schema *schema;
	struct vm_meta *vm;
	struct source *src;
	int fd;
	size_t data_offset;
};

static void write_data(struct fixture *f, uint64_t base)
{
	uint64_t v[5] = { base + 1, base + 2, base + 3, base + 10, base & 1 };

	assert_int_equal(pwrite(f->fd, v, sizeof(v), (off_t)f->data_offset), (ssize_t)sizeof(v));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint8_t *blk;
	size_t len;

	assert_non_null(f);
	blk = tu_build_block("kvm-1/vcpu-0", 32, stats, 3, &len);
	f->schema = tu_parse(blk, len, SCOPE_VCPU);
	f->data_offset = len;
	f->fd = memfd_create("stats", MFD_CLOEXEC);
	assert_true(f->fd >= 0);
	assert_int_equal(pwrite(f->fd, blk, len, 0), (ssize_t)len);
	free(blk);
	assert_int_equal(vm_meta_new(&f->vm, 1, 1, 0, "vm", "kvm-1", "vmm", "registered"), 0);
	assert_int_equal(source_new(&f->src, f->vm, schema_ref(f->schema), f->fd, 0, 4), 0);
	assert_int_equal(source_set_history(f->src, 8), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	source_unref(f->src); /* closes the memfd */
	vm_meta_unref(f->vm);
	schema_unref(f->schema);
	free(f);
	return 0;
}

static void test_history_keeps_counters_and_gauges_in_schema_order(void **state)
{
	struct fixture *f = *state;
	struct poll_list l = { 0 };
	uint64_t h[2], ts;

	assert_int_equal(f->schema->n_scalar, 2);
	assert_int_equal(ring_words(f->src->hist), 2);
	assert_int_equal(poll_list_add(&l, f->src), 0);
	for (uint64_t t = 1; t <= 3; t++) {
		write_data(f, t * 100);
		assert_int_equal(poll_list_run(&l, t * 1000), 0);
	}
	for (uint32_t back = 0; back < 3; back++) {
		uint64_t t = 3 - back;

		assert_int_equal(ring_read_back(f->src->hist, back, 0, 2, h, &ts), 0);
		assert_int_equal(ts, t * 1000);
		assert_int_equal(h[0], t * 100 + 10); /* exits */
		assert_int_equal(h[1], t * 100 & 1);  /* blocking */
	}
	poll_list_free(&l);
}

static void test_poller_sample_keeps_history_too(void **state)
{
	struct fixture *f = *state;
	uint64_t h[2], ts;

	write_data(f, 700);
	assert_int_equal(poller_sample(f->src, 4000), 0);
	assert_int_equal(ring_read_back(f->src->hist, 0, 0, 2, h, &ts), 0);
	assert_int_equal(h[0], 710);
	assert_int_equal(ts, 4000);
}

static void test_a_short_read_leaves_ring_and_history_alone(void **state)
{
	struct fixture *f = *state;
	struct poll_list l = { 0 };
	uint64_t before = ring_count(f->src->hist);

	assert_int_equal(ftruncate(f->fd, (off_t)f->data_offset + 8), 0); /* data cut short */
	assert_int_equal(poll_list_add(&l, f->src), 0);
	assert_int_equal(poll_list_run(&l, 9000), 1);
	assert_int_equal(poller_sample(f->src, 9000), -EIO);
	assert_int_equal(ring_count(f->src->hist), before);
	poll_list_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_history_keeps_counters_and_gauges_in_schema_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poller_sample_keeps_history_too, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_short_read_leaves_ring_and_history_alone,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
