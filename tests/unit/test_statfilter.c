/* SPDX-License-Identifier: MIT */
/*
 * test_statfilter - [metrics] include / exclude / histograms against the
 * stats of the real captured schemas: patterns are anchored POSIX EREs on
 * the family name, a counter also answers to its name with _total, and the
 * snapshot's plan holds exactly the families the filter keeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pattern.h"
#include "snapshot.h"
#include "statfilter.h"
#include "testutil.h"

struct world {
	struct schema *vm, *vcpu;
};

static uint8_t *vm_blk, *vcpu_blk;
static size_t vm_len, vcpu_len;

static int setup(void **state)
{
	struct schema_error err;
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	vm_blk = tu_read_file(TU_VM_LAYOUT, &vm_len);
	vcpu_blk = tu_read_file(TU_VCPU_LAYOUT, &vcpu_len);
	if (schema_parse(vm_blk, vm_len, SCOPE_VM, &w->vm, &err) ||
	    schema_parse(vcpu_blk, vcpu_len, SCOPE_VCPU, &w->vcpu, &err))
		fail_msg("schema_parse: %s", err.why);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	schema_unref(w->vm);
	schema_unref(w->vcpu);
	free(w);
	free(vm_blk);
	free(vcpu_blk);
	return 0;
}

static const struct schema_stat *fam(const struct world *w, const char *family)
{
	const struct schema_stat *st = tu_stat_by_family(w->vcpu, family);

	if (!st)
		st = tu_stat_by_family(w->vm, family);
	if (!st)
		fail_msg("no family %s", family);
	return st;
}

static void init(struct stat_filter *f, const char *include, const char *exclude, bool histograms)
{
	char err[256] = "";

	if (stat_filter_init(f, include, exclude, histograms, err, sizeof(err)) != 0)
		fail_msg("stat_filter_init(\"%s\", \"%s\"): %s", include, exclude, err);
}

/* How many stats of both schemas f keeps. */
static size_t kept(const struct world *w, const struct stat_filter *f)
{
	size_t n = 0;

	for (size_t i = 0; i < w->vm->n_stats; i++)
		n += stat_filter_keeps(f, &w->vm->stats[i]);
	for (size_t i = 0; i < w->vcpu->n_stats; i++)
		n += stat_filter_keeps(f, &w->vcpu->stats[i]);
	return n;
}

static size_t all(const struct world *w)
{
	return w->vm->n_stats + w->vcpu->n_stats;
}

static void assert_keeps_only(const struct world *w, const char *include, const char *exclude,
			      const char *const *families, size_t n)
{
	struct stat_filter f;

	init(&f, include, exclude, true);
	for (size_t i = 0; i < n; i++)
		if (!stat_filter_keeps(&f, fam(w, families[i])))
			fail_msg("include \"%s\" exclude \"%s\" drops %s", include, exclude,
				 families[i]);
	if (kept(w, &f) != n)
		fail_msg("include \"%s\" exclude \"%s\" keeps %zu stats, want %zu", include,
			 exclude, kept(w, &f), n);
	stat_filter_free(&f);
}

static void test_empty_patterns_and_no_filter_keep_every_stat(void **state)
{
	struct world *w = *state;
	struct stat_filter f;

	init(&f, "", "", true);
	assert_false(f.has_include);
	assert_false(f.has_exclude);
	assert_int_equal(kept(w, &f), all(w));
	assert_int_equal(kept(w, NULL), all(w));
	stat_filter_free(&f);
}

static void test_include_is_anchored_at_both_ends(void **state)
{
	static const char *const exits[] = { "kvm_vcpu_exits" };
	struct world *w = *state;

	/* not kvm_vcpu_io_exits, kvm_vcpu_mmio_exits, kvm_vcpu_halt_exits ... */
	assert_keeps_only(w, "kvm_vcpu_exits", "", exits, 1);
	/* a part of a name matches nothing */
	assert_keeps_only(w, "exits", "", NULL, 0);
	assert_keeps_only(w, "kvm_vcpu_exit", "", NULL, 0);
	assert_keeps_only(w, "vcpu_exits", "", NULL, 0);
	/* explicit anchors change nothing */
	assert_keeps_only(w, "^kvm_vcpu_exits$", "", exits, 1);
	/* case matters */
	assert_keeps_only(w, "KVM_VCPU_EXITS", "", NULL, 0);
}

static void test_alternatives_are_each_anchored_as_a_whole(void **state)
{
	static const char *const two[] = { "kvm_vcpu_exits", "kvm_vm_pages_4k" };
	struct world *w = *state;

	assert_keeps_only(w, "kvm_vcpu_exits|kvm_vm_pages_4k", "", two, 2);
	/* "^a|b$" would let kvm_vm_pages_4k match the prefix kvm_vm_pages */
	assert_keeps_only(w, "kvm_vcpu_exits|kvm_vm_pages", "", two, 1);
	/* and a suffix alone does not match */
	assert_keeps_only(w, "4k|kvm_vcpu_exits", "", two, 1);
}

static void test_counter_answers_to_its_name_with_total(void **state)
{
	static const char *const exits[] = { "kvm_vcpu_exits" };
	struct world *w = *state;
	struct stat_filter f;

	assert_keeps_only(w, "kvm_vcpu_exits_total", "", exits, 1);
	assert_keeps_only(w, "kvm_vcpu_(exits|exits_total)", "", exits, 1);
	/* _total is a counter's: a gauge or a histogram does not answer to it */
	assert_keeps_only(w, "kvm_vm_mmu_unsync_total", "", NULL, 0);
	assert_keeps_only(w, "kvm_vcpu_blocking_total", "", NULL, 0);
	assert_keeps_only(w, "kvm_vcpu_halt_wait_seconds_total", "", NULL, 0);
	/* a histogram answers to its family name only, not to _bucket */
	init(&f, "kvm_vcpu_halt_wait_seconds", "", true);
	assert_true(stat_filter_keeps(&f, fam(w, "kvm_vcpu_halt_wait_seconds")));
	assert_int_equal(kept(w, &f), 1);
	stat_filter_free(&f);
	assert_keeps_only(w, "kvm_vcpu_halt_wait_seconds_bucket", "", NULL, 0);
	/* every counter answers to .*_total */
	init(&f, ".*_total", "", true);
	for (size_t i = 0; i < w->vcpu->n_stats; i++)
		assert_int_equal(stat_filter_keeps(&f, &w->vcpu->stats[i]),
				 w->vcpu->stats[i].type == MT_COUNTER);
	stat_filter_free(&f);
}

static void test_exclude_drops_what_it_matches_and_total_works_there_too(void **state)
{
	struct world *w = *state;
	struct stat_filter f;

	init(&f, "", "kvm_vcpu_exits_total", true);
	assert_false(stat_filter_keeps(&f, fam(w, "kvm_vcpu_exits")));
	assert_true(stat_filter_keeps(&f, fam(w, "kvm_vcpu_io_exits")));
	assert_int_equal(kept(w, &f), all(w) - 1);
	stat_filter_free(&f);

	init(&f, "", "kvm_vcpu_.*", true);
	assert_int_equal(kept(w, &f), w->vm->n_stats);
	stat_filter_free(&f);

	/* anchored too: "exits" excludes nothing */
	init(&f, "", "exits", true);
	assert_int_equal(kept(w, &f), all(w));
	stat_filter_free(&f);
}

static void test_exclude_wins_over_include(void **state)
{
	static const char *const io[] = { "kvm_vcpu_io_exits", "kvm_vcpu_mmio_exits" };
	struct world *w = *state;

	assert_keeps_only(w, "kvm_vcpu_.*exits",
			  "kvm_vcpu_(exits|.*halt.*|.*window.*|signal.*|"
			  "request.*|irq.*|notify.*)",
			  io, 2);
	assert_keeps_only(w, "kvm_vcpu_exits", "kvm_vcpu_exits", NULL, 0);
}

static void test_histograms_off_drops_every_histogram_and_nothing_else(void **state)
{
	struct world *w = *state;
	struct stat_filter f;
	size_t hists = 0;

	init(&f, "", "", false);
	for (size_t i = 0; i < w->vcpu->n_stats; i++) {
		const struct schema_stat *st = &w->vcpu->stats[i];

		hists += st->type == MT_HISTOGRAM;
		assert_int_equal(stat_filter_keeps(&f, st), st->type != MT_HISTOGRAM);
	}
	assert_int_equal(hists, 3);
	assert_int_equal(kept(w, &f), all(w) - 3);
	stat_filter_free(&f);
	/* even when include names it */
	init(&f, "kvm_vcpu_halt_wait_seconds", "", false);
	assert_int_equal(kept(w, &f), 0);
	stat_filter_free(&f);
}

static void test_histograms_off_schema_keeps_the_cumulative_twins_as_counters(void **state)
{
	struct world *w = *state;
	struct schema_error err;
	struct schema *s = NULL;
	struct stat_filter f;
	const struct schema_stat *twin;

	if (schema_parse_no_histograms(vcpu_blk, vcpu_len, SCOPE_VCPU, &s, &err))
		fail_msg("schema_parse_no_histograms: %s", err.why);
	/* 45 descriptors, 3 histograms gone, their 3 twins their own stats */
	assert_int_equal(s->n_stats, w->vcpu->n_stats - 3 + 3);
	twin = tu_stat_by_family(s, "kvm_vcpu_halt_wait_seconds");
	assert_non_null(twin);
	assert_int_equal(twin->type, MT_COUNTER);
	init(&f, "kvm_vcpu_halt_wait_seconds_total", "", false);
	assert_true(stat_filter_keeps(&f, twin));
	stat_filter_free(&f);
	for (size_t i = 0; i < s->n_stats; i++)
		assert_int_not_equal(s->stats[i].type, MT_HISTOGRAM);
	schema_unref(s);
}

static void test_bad_pattern_is_rejected_with_which_and_why(void **state)
{
	struct stat_filter f;
	char err[256];
	char long_pattern[1100];

	(void)state;
	err[0] = '\0';
	assert_int_equal(stat_filter_init(&f, "kvm_(vcpu", "", true, err, sizeof(err)), -EINVAL);
	assert_true(!strncmp(err, "include: ", 9) && strlen(err) > 9);
	err[0] = '\0';
	assert_int_equal(stat_filter_init(&f, "kvm_.*", "[a-", true, err, sizeof(err)), -EINVAL);
	assert_true(!strncmp(err, "exclude: ", 9) && strlen(err) > 9);
	err[0] = '\0';
	assert_int_equal(stat_filter_init(&f, "", "a{2,1}", true, err, sizeof(err)), -EINVAL);
	assert_true(!strncmp(err, "exclude: ", 9));
	/* too long for the anchoring buffer: refused, not cut */
	memset(long_pattern, 'a', sizeof(long_pattern) - 1);
	long_pattern[sizeof(long_pattern) - 1] = '\0';
	assert_int_equal(stat_filter_init(&f, long_pattern, "", true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "include: longer than 1024 bytes"));
	/* a small error buffer is not overrun */
	memset(err, 'x', sizeof(err));
	assert_int_equal(stat_filter_init(&f, "(", "", true, err, 8), -EINVAL);
	assert_int_equal(err[7], '\0');
	assert_int_equal(err[8], 'x');
}

static void test_check_pattern_accepts_good_and_explains_bad(void **state)
{
	char longest[1025], why[128];

	(void)state;
	assert_null(pattern_check("", why));
	assert_null(pattern_check("kvm_vcpu_.*", why));
	assert_null(pattern_check("a|b|(c)", why));
	assert_non_null(pattern_check("(", why));
	assert_non_null(pattern_check("a{3", why));
	assert_non_null(pattern_check("*a", why));
	memset(longest, 'a', 1024);
	longest[1024] = '\0';
	assert_null(pattern_check(longest, why));
}

static void test_snapshot_plan_holds_only_the_kept_families(void **state)
{
	struct world *w = *state;
	struct vm_meta *vm = NULL;
	struct source *src[2] = { NULL, NULL };
	struct snapshot *snap = NULL;
	struct stat_filter f;

	assert_int_equal(vm_meta_new(&vm, 1, 42, 0, "f", "kvm-42", "vmm", "registered"), 0);
	assert_int_equal(source_new(&src[0], vm, schema_ref(w->vm), -1, -1, 4), 0);
	assert_int_equal(source_new(&src[1], vm, schema_ref(w->vcpu), -1, 0, 4), 0);

	assert_int_equal(snapshot_build(&snap, &vm, 1, src, 2, NULL), 0);
	assert_int_equal(snap->n_families, all(w));
	snapshot_unref(snap);

	init(&f, "kvm_vm_pages_.*|kvm_vcpu_exits_total|kvm_vcpu_halt_.*", "kvm_vm_pages_1g", false);
	assert_int_equal(snapshot_build(&snap, &vm, 1, src, 2, &f), 0);
	for (size_t i = 0; i < snap->n_families; i++)
		assert_true(stat_filter_keeps(&f, snap->families[i].head));
	/*
	 * pages_4k, pages_2m, exits, and halt_successful_poll, halt_attempted_poll,
	 * halt_poll_invalid, halt_wakeup, halt_exits: the histograms are off
	 */
	assert_int_equal(snap->n_families, 2 + 1 + 5);
	assert_int_equal(snap->n_families, kept(w, &f));
	assert_non_null(tu_stat_by_family(w->vcpu, "kvm_vcpu_halt_wakeup"));
	for (size_t i = 0; i < snap->n_families; i++)
		assert_int_not_equal(snap->families[i].head->type, MT_HISTOGRAM);
	snapshot_unref(snap);
	stat_filter_free(&f);

	source_unref(src[0]);
	source_unref(src[1]);
	vm_meta_unref(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_patterns_and_no_filter_keep_every_stat),
		cmocka_unit_test(test_include_is_anchored_at_both_ends),
		cmocka_unit_test(test_alternatives_are_each_anchored_as_a_whole),
		cmocka_unit_test(test_counter_answers_to_its_name_with_total),
		cmocka_unit_test(test_exclude_drops_what_it_matches_and_total_works_there_too),
		cmocka_unit_test(test_exclude_wins_over_include),
		cmocka_unit_test(test_histograms_off_drops_every_histogram_and_nothing_else),
		cmocka_unit_test(test_histograms_off_schema_keeps_the_cumulative_twins_as_counters),
		cmocka_unit_test(test_bad_pattern_is_rejected_with_which_and_why),
		cmocka_unit_test(test_check_pattern_accepts_good_and_explains_bad),
		cmocka_unit_test(test_snapshot_plan_holds_only_the_kept_families),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
