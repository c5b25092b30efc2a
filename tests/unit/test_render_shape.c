/* SPDX-License-Identifier: MIT */
/*
 * test_render_shape - how render_opts shape a page: vcpu_series = per_vm
 * (sums per VM, peaks take the maximum), max_series (whole stats left out,
 * counted) and OpenMetrics _created lines.
 *
 * The world: the real captured VM and vCPU schemas (tests/data), VM "a"
 * with three polled vCPUs and one never polled, VM "b" with one vCPU, and a
 * synthetic vCPU schema with a KVM "peak" stat (the captured vCPU schema
 * has none) for VM "p".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "render.h"
#include "snapshot.h"
#include "testutil.h"

#define CREATED_A_NS 1700000000123456789ull /* " 1700000000.123" */
#define CREATED_B_NS 1600000000005000000ull /* " 1600000000.005" */
#define HIST "kvm_vcpu_halt_wait_seconds"

struct world {
	struct schema *vm_schema, *vcpu_schema, *peak_schema;
	struct vm_meta *vms[3];
	size_t n_vms;
	struct source *src[16];
	size_t n_src;
	struct snapshot *snap;
	struct selfstats stats;
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

static const struct schema_stat *stat_of(const struct schema *s, const char *desc)
{
	const struct schema_stat *st = tu_stat_by_desc(s, desc);

	if (!st)
		fail_msg("no stat %s", desc);
	return st;
}

static struct source *add_source(struct world *w, struct vm_meta *vm, struct schema *sc, int vcpu)
{
	struct source *s = NULL;

	assert_true(w->n_src < sizeof(w->src) / sizeof(w->src[0]));
	assert_int_equal(source_new(&s, vm, schema_ref(sc), -1, vcpu, 4), 0);
	w->src[w->n_src++] = s;
	return s;
}

static void commit(struct source *s, const uint64_t *vals)
{
	uint64_t *slot = ring_begin_write(s->ring);

	memcpy(slot, vals, (size_t)ring_words(s->ring) * 8);
	ring_commit(s->ring, 1000);
}

/* One vCPU of the captured schema: exits, blocking and the halt_wait histogram. */
static void commit_vcpu(struct world *w, struct source *s, uint64_t exits, uint64_t blocking,
			const uint64_t hist[32], uint64_t wait_ns)
{
	uint64_t v[TU_VCPU_DATA_WORDS] = { 0 };
	const struct schema_stat *hw = stat_of(w->vcpu_schema, "halt_wait_hist");

	v[stat_of(w->vcpu_schema, "exits")->index] = exits;
	v[stat_of(w->vcpu_schema, "blocking")->index] = blocking;
	memcpy(v + hw->index, hist, 32 * sizeof(uint64_t));
	v[hw->sum_index] = wait_ns;
	commit(s, v);
}

/*
 * VM "a" (created CREATED_A_NS): VM stats word i = i + 1; vCPU 0: exits 5,
 * blocking 1, halt_wait buckets {0: 1, 1: 2}, 1 s; vCPU 1: exits 7,
 * buckets {1: 3, 5: 4}, 0.5 s; vCPU 2: exits 11, blocking 1, bucket
 * {31: 1}, 0.25 s; vCPU 3: never polled. VM "b" (CREATED_B_NS): VM stats
 * all 7, vCPU 0 exits 13. VM "p": vCPUs of the peak schema.
 */
static int build_world(void **state)
{
	static const struct tu_stat peak_stats[] = {
		{ "max_latency", KVM_STATS_TYPE_PEAK, 0, 1, 0, 0 },
		{ "events", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 8, 0 },
		{ "level", KVM_STATS_TYPE_INSTANT, 0, 1, 16, 0 },
	};
	static const uint64_t peak_vals[3][3] = { { 3, 1, 2 }, { 9, 2, 2 }, { 4, 3, 2 } };
	struct world *w = calloc(1, sizeof(*w));
	uint64_t vm_vals[TU_VM_DATA_WORDS], h[32];
	uint8_t *pblk;
	size_t plen;

	assert_non_null(w);
	w->vm_schema = tu_parse(vm_blk, vm_len, SCOPE_VM);
	w->vcpu_schema = tu_parse(vcpu_blk, vcpu_len, SCOPE_VCPU);
	pblk = tu_build_block("kvm-77/vcpu-0", 48, peak_stats, 3, &plen);
	w->peak_schema = tu_parse(pblk, plen, SCOPE_VCPU);
	free(pblk);
	assert_int_equal(w->peak_schema->n_stats, 3);

	assert_int_equal(
	    vm_meta_new(&w->vms[0], 1, 4242, 1000, "a", "kvm-4242", "vmm", "registered"), 0);
	assert_int_equal(
	    vm_meta_new(&w->vms[1], 2, 5151, 1000, "b", "kvm-5151", "vmm", "registered"), 0);
	assert_int_equal(vm_meta_new(&w->vms[2], 3, 77, 1000, "p", "kvm-77", "vmm", "discovered"),
			 0);
	w->n_vms = 3;
	vm_meta_set_created(w->vms[0], CREATED_A_NS);
	vm_meta_set_created(w->vms[1], CREATED_B_NS);

	for (uint32_t i = 0; i < TU_VM_DATA_WORDS; i++)
		vm_vals[i] = i + 1;
	commit(add_source(w, w->vms[0], w->vm_schema, -1), vm_vals);
	memset(h, 0, sizeof(h));
	h[0] = 1;
	h[1] = 2;
	commit_vcpu(w, add_source(w, w->vms[0], w->vcpu_schema, 0), 5, 1, h, 1000000000);
	memset(h, 0, sizeof(h));
	h[1] = 3;
	h[5] = 4;
	commit_vcpu(w, add_source(w, w->vms[0], w->vcpu_schema, 1), 7, 0, h, 500000000);
	memset(h, 0, sizeof(h));
	h[31] = 1;
	commit_vcpu(w, add_source(w, w->vms[0], w->vcpu_schema, 2), 11, 1, h, 250000000);
	add_source(w, w->vms[0], w->vcpu_schema, 3); /* never polled */

	for (uint32_t i = 0; i < TU_VM_DATA_WORDS; i++)
		vm_vals[i] = 7;
	commit(add_source(w, w->vms[1], w->vm_schema, -1), vm_vals);
	memset(h, 0, sizeof(h));
	commit_vcpu(w, add_source(w, w->vms[1], w->vcpu_schema, 0), 13, 0, h, 0);

	for (int i = 0; i < 3; i++)
		commit(add_source(w, w->vms[2], w->peak_schema, i), peak_vals[i]);

	assert_int_equal(snapshot_build(&w->snap, w->vms, w->n_vms, w->src, w->n_src, NULL), 0);
	w->stats.start_time = 1700000000;
	w->stats.helper_start_time = 1600000000.5;
	*state = w;
	return 0;
}

static int free_world(void **state)
{
	struct world *w = *state;

	snapshot_unref(w->snap);
	for (size_t i = 0; i < w->n_src; i++)
		source_unref(w->src[i]);
	for (size_t i = 0; i < w->n_vms; i++)
		vm_meta_unref(w->vms[i]);
	schema_unref(w->vm_schema);
	schema_unref(w->vcpu_schema);
	schema_unref(w->peak_schema);
	free(w);
	return 0;
}

/* Render into a NUL-terminated malloc'd string. */
static char *render_opts(const struct snapshot *snap, const struct selfstats *st,
			 enum render_format fmt, const struct render_opts *o,
			 struct render_result *res)
{
	struct render_config rc = { .opts = o ? *o : (struct render_opts){ 0 } };
	struct buf b = { 0 };
	char *s;

	assert_int_equal(render_metrics(snap, st, fmt, &rc, &b, res), 0);
	assert_false(b.failed);
	s = malloc(b.len + 1);
	assert_non_null(s);
	if (b.len)
		memcpy(s, b.data, b.len);
	s[b.len] = '\0';
	buf_free(&b);
	return s;
}

/* KVM sample lines: kvm_vm_* and kvm_vcpu_* samples, kvm_vm_info not counted. */
static size_t kvm_sample_lines(const char *out)
{
	return tu_lines_starting(out, "kvm_vm_") + tu_lines_starting(out, "kvm_vcpu_") -
	       tu_lines_starting(out, "kvm_vm_info{");
}

/* The value of the sample line that starts with "name " (no labels), or fails. */
static double plain_value(const char *out, const char *name)
{
	char key[256];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(out, key);
	if (!p)
		fail_msg("no sample %s", name);
	return strtod(p + strlen(key), NULL);
}

/* ---- vcpu_series = per_vm ------------------------------------------------- */

static void test_per_vm_sums_counters_across_vcpus_and_drops_the_vcpu_label(void **state)
{
	struct world *w = *state;
	const struct render_opts o = { .vcpu_sum = true };
	char *text = render_opts(w->snap, NULL, FMT_TEXT_004, &o, NULL);
	char *om = render_opts(w->snap, NULL, FMT_OPENMETRICS_100, &o, NULL);

	tu_assert_line(text, "kvm_vcpu_exits_total{vm=\"a\"} 23");
	tu_assert_line(text, "kvm_vcpu_exits_total{vm=\"b\"} 13");
	tu_assert_line(om, "kvm_vcpu_exits_total{vm=\"a\"} 23");
	assert_int_equal(tu_lines_starting(text, "kvm_vcpu_exits_total{"), 2);
	/* a boolean gauge adds up too: how many vCPUs were blocking */
	tu_assert_line(text, "kvm_vcpu_blocking{vm=\"a\"} 2");
	/* no series has a vcpu label, in either format */
	assert_null(strstr(text, "vcpu=\""));
	assert_null(strstr(om, "vcpu=\""));
	/* the VM's own stats are not touched */
	tu_assert_line(text, "kvm_vm_remote_tlb_flush_total{vm=\"a\"} 1");
	tu_assert_line(text, "kvm_vm_remote_tlb_flush_total{vm=\"b\"} 7");
	free(text);
	free(om);
}

static void test_per_vcpu_is_the_default_and_keeps_one_series_per_vcpu(void **state)
{
	struct world *w = *state;
	char *text = render_opts(w->snap, NULL, FMT_TEXT_004, NULL, NULL);

	tu_assert_line(text, "kvm_vcpu_exits_total{vm=\"a\",vcpu=\"0\"} 5");
	tu_assert_line(text, "kvm_vcpu_exits_total{vm=\"a\",vcpu=\"1\"} 7");
	tu_assert_line(text, "kvm_vcpu_exits_total{vm=\"a\",vcpu=\"2\"} 11");
	tu_assert_line(text, "kvm_vcpu_exits_total{vm=\"b\",vcpu=\"0\"} 13");
	assert_int_equal(tu_lines_starting(text, "kvm_vcpu_exits_total{"), 4);
	free(text);
}

static void test_per_vm_sums_histogram_buckets_and_sum_bucket_by_bucket_cumulatively(void **state)
{
	struct world *w = *state;
	const struct render_opts o = { .vcpu_sum = true };
	char *out = render_opts(w->snap, NULL, FMT_TEXT_004, &o, NULL);
	const char *a = HIST "_bucket{vm=\"a\",le=";
	const char *p;
	double last = -1;

	/* per bucket: {0: 1, 1: 2+3, 5: 4, 31: 1}, cumulative */
	tu_assert_line(out, "%s\"0\"} 1", a);
	tu_assert_line(out, "%s\"0.000000001\"} 6", a);
	tu_assert_line(out, "%s\"0.000000003\"} 6", a);
	tu_assert_line(out, "%s\"0.000000015\"} 6", a);
	tu_assert_line(out, "%s\"0.000000031\"} 10", a);
	tu_assert_line(out, "%s\"1.073741823\"} 10", a);
	tu_assert_line(out, "%s\"+Inf\"} 11", a);
	tu_assert_line(out, HIST "_count{vm=\"a\"} 11");
	tu_assert_line(out, HIST "_sum{vm=\"a\"} 1.75");
	assert_int_equal(tu_count(out, a), 32);
	/* never decreasing, bucket after bucket */
	for (p = out; (p = strstr(p, a)); p++) {
		double v = strtod(strchr(p, '}') + 1, NULL);

		assert_true(v >= last);
		last = v;
	}
	/* VM b: its only vCPU's zeros */
	tu_assert_line(out, HIST "_bucket{vm=\"b\",le=\"+Inf\"} 0");
	tu_assert_line(out, HIST "_sum{vm=\"b\"} 0");
	free(out);
}

static void test_per_vm_takes_the_max_of_a_peak_stat_and_sums_the_rest(void **state)
{
	struct world *w = *state;
	const struct render_opts o = { .vcpu_sum = true };
	char *sum = render_opts(w->snap, NULL, FMT_TEXT_004, &o, NULL);
	char *each = render_opts(w->snap, NULL, FMT_TEXT_004, NULL, NULL);

	/* vCPU peaks 3, 9, 4: the VM's peak is 9, not 16 */
	tu_assert_line(sum, "kvm_vcpu_max_latency{vm=\"p\"} 9");
	tu_assert_line(sum, "kvm_vcpu_events_total{vm=\"p\"} 6");
	tu_assert_line(sum, "kvm_vcpu_level{vm=\"p\"} 6");
	tu_assert_line(each, "kvm_vcpu_max_latency{vm=\"p\",vcpu=\"0\"} 3");
	tu_assert_line(each, "kvm_vcpu_max_latency{vm=\"p\",vcpu=\"1\"} 9");
	tu_assert_line(each, "kvm_vcpu_max_latency{vm=\"p\",vcpu=\"2\"} 4");
	free(sum);
	free(each);
}

static void test_per_vm_leaves_out_a_vm_whose_vcpus_have_no_sample(void **state)
{
	struct world *w = *state;
	const struct render_opts o = { .vcpu_sum = true };
	struct vm_meta *vm = NULL;
	struct source *srcs[2] = { NULL, NULL };
	struct snapshot *snap = NULL;
	char *out;

	assert_int_equal(vm_meta_new(&vm, 9, 99, 0, "idle", "kvm-99", "vmm", "registered"), 0);
	assert_int_equal(source_new(&srcs[0], vm, schema_ref(w->vcpu_schema), -1, 0, 4), 0);
	assert_int_equal(source_new(&srcs[1], vm, schema_ref(w->vcpu_schema), -1, 1, 4), 0);
	assert_int_equal(snapshot_build(&snap, &vm, 1, srcs, 2, NULL), 0);
	out = render_opts(snap, NULL, FMT_OPENMETRICS_100, &o, NULL);
	tu_assert_line(out, "kvm_vm_info{vm=\"idle\",kernel_id=\"kvm-99\",vmm_pid=\"99\","
			    "vmm_comm=\"vmm\",source=\"registered\"} 1");
	assert_int_equal(kvm_sample_lines(out), 0);
	free(out);
	snapshot_unref(snap);
	source_unref(srcs[0]);
	source_unref(srcs[1]);
	vm_meta_unref(vm);
}

static void test_per_vm_series_count_is_one_per_vm_and_stat(void **state)
{
	struct world *w = *state;
	const struct render_opts o = { .vcpu_sum = true };
	struct render_result each = { 0 }, sum = { 0 };
	char *a = render_opts(w->snap, NULL, FMT_TEXT_004, NULL, &each);
	char *b = render_opts(w->snap, NULL, FMT_TEXT_004, &o, &sum);
	/* scalar stats + 3 histograms of 32 buckets, _count and _sum */
	size_t per_vcpu = (w->vcpu_schema->n_stats - 3) + 3 * (32 + 2);
	size_t per_vm = w->vm_schema->n_stats;

	assert_int_equal(each.series, kvm_sample_lines(a));
	assert_int_equal(sum.series, kvm_sample_lines(b));
	/* a, b: VM stats; a: 3 polled vCPUs, b: 1; p: 3 vCPUs of 3 stats */
	assert_int_equal(each.series, 2 * per_vm + 4 * per_vcpu + 3 * 3);
	assert_int_equal(sum.series, 2 * per_vm + 2 * per_vcpu + 3);
	assert_int_equal(each.dropped, 0);
	assert_int_equal(sum.dropped, 0);
	free(a);
	free(b);
}

/* ---- max_series ------------------------------------------------------------ */

struct hist_key {
	char key[256];
	size_t lines;
};

/*
 * Every histogram series in out has all its lines: 32 buckets, _count,
 * _sum and (with created) _created, or none of them.
 */
static void assert_whole_histograms(const char *out, bool created)
{
	static const char *const sfx[] = { "_bucket{", "_count{", "_sum{", "_created{" };
	struct hist_key keys[64];
	size_t n = 0;

	for (const char *p = out; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = (size_t)(nl - p);

		assert_non_null(nl);
		for (int s = 0; s < 4; s++) {
			const char *h = HIST;
			size_t hl = strlen(h), sl = strlen(sfx[s]);
			const char *lab, *end;
			char key[256];
			size_t i;

			if (len < hl + sl || strncmp(p, h, hl) || strncmp(p + hl, sfx[s], sl))
				continue;
			lab = p + hl + sl;
			end = s == 0 ? strstr(lab, ",le=") : strchr(lab, '}');
			assert_true(end && end < nl);
			snprintf(key, sizeof(key), "%.*s", (int)(end - lab), lab);
			for (i = 0; i < n && strcmp(keys[i].key, key); i++)
				;
			if (i == n) {
				assert_true(n < 64);
				snprintf(keys[n].key, sizeof(keys[n].key), "%s", key);
				keys[n++].lines = 0;
			}
			keys[i].lines++;
		}
		p = nl + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (keys[i].lines != 32u + 2u + created)
			fail_msg("histogram {%s}: %zu lines", keys[i].key, keys[i].lines);
}

/* Every line of sub appears in full, in the same order, in full. */
static void assert_subsequence(const char *sub, const char *full)
{
	const char *f = full;

	for (const char *p = sub; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = (size_t)(nl - p) + 1;

		while (*f && strncmp(f, p, len))
			f = strchr(f, '\n') + 1;
		if (!*f)
			fail_msg("line out of order or invented: %.*s", (int)len - 1, p);
		f += len;
		p = nl + 1;
	}
}

/* Drop the kvmstatd_* lines (their values depend on the cap) and # EOF. */
static char *kvm_part(const char *out)
{
	const char *self = strstr(out, "# HELP kvmstatd_");
	const char *om_self = strstr(out, "# TYPE kvmstatd_");
	const char *end = out + strlen(out);

	if (self && self < end)
		end = self;
	if (om_self && om_self < end)
		end = om_self;
	return strndup(out, (size_t)(end - out));
}

static void check_caps(struct world *w, enum render_format fmt, bool vcpu_sum)
{
	bool om = fmt == FMT_OPENMETRICS_100;
	struct render_opts o = { .vcpu_sum = vcpu_sum };
	struct render_result full = { 0 };
	char *uncapped = render_opts(w->snap, NULL, fmt, &o, &full);
	char *kvm_full = kvm_part(uncapped);

	assert_int_equal(full.dropped, 0);
	assert_int_equal(full.series, kvm_sample_lines(uncapped));
	for (size_t cap = 1; cap <= full.series + 1; cap++) {
		struct render_result res = { 0 };
		char *out, *kvm;

		o.max_series = cap;
		out = render_opts(w->snap, NULL, fmt, &o, &res);
		kvm = kvm_part(out);
		if (res.series > cap)
			fail_msg("cap %zu: %zu series", cap, res.series);
		assert_int_equal(res.series, kvm_sample_lines(out));
		assert_int_equal(res.series + res.dropped, full.series);
		assert_whole_histograms(out, om);
		assert_subsequence(kvm, kvm_full);
		/* headers and kvm_vm_info stay; only sample lines go */
		assert_int_equal(tu_count(kvm, "# TYPE "), tu_count(kvm_full, "# TYPE "));
		assert_int_equal(tu_count(kvm, "kvm_vm_info{"), w->n_vms);
		if (cap >= full.series)
			assert_string_equal(out, uncapped);
		free(kvm);
		free(out);
	}
	free(kvm_full);
	free(uncapped);
}

static void test_max_series_leaves_out_whole_stats_never_half_a_histogram(void **state)
{
	struct world *w = *state;

	check_caps(w, FMT_TEXT_004, false);
	check_caps(w, FMT_OPENMETRICS_100, false);
	check_caps(w, FMT_TEXT_004, true);
	check_caps(w, FMT_OPENMETRICS_100, true);
}

static void test_max_series_inside_a_histogram_drops_it_and_keeps_later_small_stats(void **state)
{
	struct world *w = *state;
	struct render_result full = { 0 }, res = { 0 };
	char *out = render_opts(w->snap, NULL, FMT_TEXT_004, NULL, &full);
	const char *first = strstr(out, HIST "_bucket{");
	struct render_opts o = { 0 };
	size_t before = 0;

	/* the KVM sample lines before the first halt_wait histogram, then 10 more */
	assert_non_null(first);
	for (const char *p = out; p < first; p = strchr(p, '\n') + 1)
		before += !strncmp(p, "kvm_", 4) && strncmp(p, "kvm_vm_info{", 12);
	free(out);
	o.max_series = before + 10;
	out = render_opts(w->snap, NULL, FMT_TEXT_004, &o, &res);
	assert_null(strstr(out, HIST "_bucket{vm=\"a\",vcpu=\"0\""));
	assert_null(strstr(out, HIST "_sum{vm=\"a\",vcpu=\"0\""));
	/* 34 lines did not fit in 10, a 1-line stat after it does */
	assert_int_equal(res.series, o.max_series);
	assert_true(res.dropped >= 34);
	assert_int_equal(res.series + res.dropped, full.series);
	free(out);
}

static void test_max_series_counts_dropped_lines_in_the_page(void **state)
{
	struct world *w = *state;
	const struct render_opts o = { .max_series = 100 };
	struct render_result res = { 0 };
	char *out;

	w->stats.max_series = 100;
	stat_set(&w->stats.series_dropped, 1000); /* earlier renders' */
	out = render_opts(w->snap, &w->stats, FMT_TEXT_004, &o, &res);
	assert_true(res.dropped > 0);
	assert_int_equal(res.series, 100);
	assert_true(plain_value(out, "kvmstatd_series") == 100.0);
	assert_true(plain_value(out, "kvmstatd_series_limit") == 100.0);
	assert_true(plain_value(out, "kvmstatd_series_dropped_total") ==
		    (double)(1000 + res.dropped));
	free(out);
}

static void test_max_series_zero_means_no_cap(void **state)
{
	struct world *w = *state;
	const struct render_opts o = { .max_series = 0 };
	struct render_result res = { 0 };
	char *out = render_opts(w->snap, &w->stats, FMT_OPENMETRICS_100, &o, &res);

	assert_int_equal(res.dropped, 0);
	assert_int_equal(res.series, kvm_sample_lines(out));
	assert_true(plain_value(out, "kvmstatd_series") == (double)res.series);
	assert_true(plain_value(out, "kvmstatd_series_limit") == 0.0);
	assert_true(plain_value(out, "kvmstatd_series_dropped_total") == 0.0);
	free(out);
}

static void test_max_series_counts_created_lines_of_openmetrics(void **state)
{
	struct world *w = *state;
	struct render_result text = { 0 }, om = { 0 }, bare = { 0 };
	const struct render_opts no_created = { .no_created = true };
	char *a = render_opts(w->snap, NULL, FMT_TEXT_004, NULL, &text);
	char *b = render_opts(w->snap, NULL, FMT_OPENMETRICS_100, NULL, &om);
	char *c = render_opts(w->snap, NULL, FMT_OPENMETRICS_100, &no_created, &bare);

	assert_int_equal(om.series, text.series + tu_count(b, "_created{"));
	assert_int_equal(bare.series, text.series);
	free(a);
	free(b);
	free(c);
}

/* ---- _created ------------------------------------------------------------------ */

/* The metric name of a sample line (up to '{' or ' '). */
static size_t name_len(const char *line)
{
	return strcspn(line, "{ \n");
}

static bool name_ends(const char *line, const char *sfx)
{
	size_t n = name_len(line), l = strlen(sfx);

	return n >= l && !strncmp(line + n - l, sfx, l);
}

/* Sample lines (not comments) whose metric name ends with sfx. */
static size_t samples_ending(const char *out, const char *sfx)
{
	size_t n = 0;

	for (const char *p = out; *p; p = strchr(p, '\n') + 1)
		n += p[0] != '#' && name_ends(p, sfx);
	return n;
}

/*
 * In OpenMetrics output: every counter sample (kvm_* and kvmstatd_*) is
 * followed by <family>_created with the same labels; every _created
 * follows a counter sample or a histogram's last line (_sum, else _count)
 * of the same family and labels. Returns the number of _created lines.
 */
static size_t check_created_placement(const char *out)
{
	static const char *const owners[] = { "_total", "_sum", "_count" };
	size_t created = 0;
	const char *prev = "#\n";

	for (const char *p = out; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = name_len(p);

		assert_non_null(nl);
		if (p[0] != '#' && name_ends(p, "_created")) {
			size_t fam = n - strlen("_created"), pn = name_len(prev);
			size_t llen = strcspn(p + n, " ");
			bool ok = false;

			for (int i = 0; i < 3; i++)
				ok |= pn == fam + strlen(owners[i]) && !strncmp(prev, p, fam) &&
				      !strncmp(prev + fam, owners[i], strlen(owners[i])) &&
				      !strncmp(prev + pn, p + n, llen) && prev[pn + llen] == ' ';
			if (!ok)
				fail_msg("_created not after its sample: %.*s / %.*s",
					 (int)strcspn(prev, "\n"), prev, (int)(nl - p), p);
			created++;
		} else if (prev[0] != '#' && name_ends(prev, "_total")) {
			fail_msg("counter without _created: %.*s", (int)strcspn(prev, "\n"), prev);
		}
		prev = p;
		p = nl + 1;
	}
	return created;
}

static void test_created_follows_every_counter_and_histogram_in_openmetrics(void **state)
{
	struct world *w = *state;
	const struct render_opts sum = { .vcpu_sum = true };
	char *out = render_opts(w->snap, &w->stats, FMT_OPENMETRICS_100, NULL, NULL);
	char *summed = render_opts(w->snap, &w->stats, FMT_OPENMETRICS_100, &sum, NULL);

	/* one per counter sample and one per histogram series (its _count) */
	assert_int_equal(check_created_placement(out),
			 samples_ending(out, "_total") + samples_ending(out, "_count"));
	assert_int_equal(check_created_placement(summed),
			 samples_ending(summed, "_total") + samples_ending(summed, "_count"));
	assert_int_equal(samples_ending(out, HIST "_created"), 4);
	assert_int_equal(samples_ending(summed, HIST "_created"), 2);
	assert_int_equal(tu_lines_starting(out, "kvm_vcpu_events_created{"), 3);
	free(out);
	free(summed);
}

static void test_created_is_the_vms_time_with_millisecond_precision(void **state)
{
	struct world *w = *state;
	char *out = render_opts(w->snap, NULL, FMT_OPENMETRICS_100, NULL, NULL);

	tu_assert_line(out, "kvm_vcpu_exits_created{vm=\"a\",vcpu=\"0\"} 1700000000.123");
	tu_assert_line(out, "kvm_vcpu_exits_created{vm=\"b\",vcpu=\"0\"} 1600000000.005");
	tu_assert_line(out, "kvm_vm_remote_tlb_flush_created{vm=\"a\"} 1700000000.123");
	tu_assert_line(out, HIST "_created{vm=\"a\",vcpu=\"2\"} 1700000000.123");
	/* right after the histogram's _sum */
	assert_non_null(strstr(out, HIST "_sum{vm=\"a\",vcpu=\"2\"} 0.25\n" HIST
					 "_created{vm=\"a\",vcpu=\"2\"} 1700000000.123\n"));
	free(out);
}

static void test_created_set_formats_seconds_and_three_decimals(void **state)
{
	struct created c;

	(void)state;
	created_set(&c, 0);
	assert_int_equal(c.len, strlen(" 0.000\n"));
	assert_memory_equal(c.text, " 0.000\n", c.len);
	created_set(&c, 1999999999999999999ull);
	assert_memory_equal(c.text, " 1999999999.999\n", c.len);
	created_set(&c, 1700000000010000000ull);
	assert_memory_equal(c.text, " 1700000000.010\n", c.len);
	created_set(&c, 1700000000000999999ull); /* truncated, never rounded up */
	assert_memory_equal(c.text, " 1700000000.000\n", c.len);
}

static void test_created_of_a_vcpu_added_later_is_its_own_and_per_vm_uses_the_vms(void **state)
{
	struct world *w = *state;
	const struct render_opts sum = { .vcpu_sum = true };
	char *each, *out;

	created_set(&w->src[3]->created, 1800000000000000000ull); /* a's vCPU 2 */
	assert_int_equal(w->src[3]->vcpu, 2);
	each = render_opts(w->snap, NULL, FMT_OPENMETRICS_100, NULL, NULL);
	out = render_opts(w->snap, NULL, FMT_OPENMETRICS_100, &sum, NULL);
	tu_assert_line(each, "kvm_vcpu_exits_created{vm=\"a\",vcpu=\"2\"} 1800000000.000");
	tu_assert_line(each, "kvm_vcpu_exits_created{vm=\"a\",vcpu=\"1\"} 1700000000.123");
	/* the sum started when the VM's first counters did: the earliest */
	tu_assert_line(out, "kvm_vcpu_exits_created{vm=\"a\"} 1700000000.123");
	tu_assert_line(out, HIST "_created{vm=\"a\"} 1700000000.123");
	free(each);
	free(out);
}

static void test_created_never_appears_in_text_or_for_gauges(void **state)
{
	struct world *w = *state;
	char *text = render_opts(w->snap, &w->stats, FMT_TEXT_004, NULL, NULL);
	char *om = render_opts(w->snap, &w->stats, FMT_OPENMETRICS_100, NULL, NULL);

	/* (kvm_vcpu_pf_mmio_spte_created_total is a counter's name: a comment may say _created) */
	assert_int_equal(samples_ending(text, "_created"), 0);
	assert_non_null(strstr(text, "\nkvm_vcpu_pf_mmio_spte_created_total{"));
	/* gauges: boolean, instant, peak, the VM info */
	assert_null(strstr(om, "kvm_vcpu_blocking_created"));
	assert_null(strstr(om, "kvm_vm_mmu_unsync_created"));
	assert_null(strstr(om, "kvm_vm_max_mmu_rmap_size_created"));
	assert_null(strstr(om, "kvm_vcpu_max_latency_created"));
	assert_null(strstr(om, "kvm_vcpu_level_created"));
	assert_null(strstr(om, "kvm_vm_info_created"));
	assert_null(strstr(om, "kvmstatd_series_created"));
	assert_null(strstr(om, "kvmstatd_sources_created"));
	free(text);
	free(om);
}

static void test_created_no_removes_the_kvm_created_lines(void **state)
{
	struct world *w = *state;
	const struct render_opts o = { .no_created = true };
	const struct render_opts sum = { .no_created = true, .vcpu_sum = true };
	char *out = render_opts(w->snap, NULL, FMT_OPENMETRICS_100, &o, NULL);
	char *summed = render_opts(w->snap, NULL, FMT_OPENMETRICS_100, &sum, NULL);

	assert_int_equal(samples_ending(out, "_created"), 0);
	assert_int_equal(samples_ending(summed, "_created"), 0);
	/* and nothing else changes */
	tu_assert_line(out, "kvm_vcpu_exits_total{vm=\"a\",vcpu=\"0\"} 5");
	tu_assert_line(out, HIST "_sum{vm=\"a\",vcpu=\"0\"} 1");
	assert_true(strlen(out) >= 6 && !strcmp(out + strlen(out) - 6, "# EOF\n"));
	free(out);
	free(summed);
}

static void test_selfstats_counters_carry_the_worker_or_the_helper_start(void **state)
{
	struct world *w = *state;
	char *out = render_opts(w->snap, &w->stats, FMT_OPENMETRICS_100, NULL, NULL);

	tu_assert_line(out, "kvmstatd_polls_created 1700000000.000");
	tu_assert_line(out, "kvmstatd_renders_created 1700000000.000");
	tu_assert_line(out, "kvmstatd_compressions_created 1700000000.000");
	tu_assert_line(out, "kvmstatd_scrapes_created 1700000000.000");
	tu_assert_line(out, "kvmstatd_series_dropped_created 1700000000.000");
	tu_assert_line(out, "kvmstatd_render_duration_seconds_created 1700000000.000");
	tu_assert_line(out, "kvmstatd_stats_skipped_created{reason=\"unknown\"} 1700000000.000");
	/* the totals the helper hands to each new worker started with the helper */
	tu_assert_line(out, "kvmstatd_vms_discovered_created 1600000000.500");
	tu_assert_line(out, "kvmstatd_worker_restarts_created 1600000000.500");
	tu_assert_line(out, "kvmstatd_registrations_rejected_created{reason=\"bad_fd\"} "
			    "1600000000.500");
	free(out);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, build_world, free_world)
	const struct CMUnitTest tests[] = {
		T(test_per_vm_sums_counters_across_vcpus_and_drops_the_vcpu_label),
		T(test_per_vcpu_is_the_default_and_keeps_one_series_per_vcpu),
		T(test_per_vm_sums_histogram_buckets_and_sum_bucket_by_bucket_cumulatively),
		T(test_per_vm_takes_the_max_of_a_peak_stat_and_sums_the_rest),
		T(test_per_vm_leaves_out_a_vm_whose_vcpus_have_no_sample),
		T(test_per_vm_series_count_is_one_per_vm_and_stat),
		T(test_max_series_leaves_out_whole_stats_never_half_a_histogram),
		T(test_max_series_inside_a_histogram_drops_it_and_keeps_later_small_stats),
		T(test_max_series_counts_dropped_lines_in_the_page),
		T(test_max_series_zero_means_no_cap),
		T(test_max_series_counts_created_lines_of_openmetrics),
		T(test_created_follows_every_counter_and_histogram_in_openmetrics),
		T(test_created_is_the_vms_time_with_millisecond_precision),
		cmocka_unit_test(test_created_set_formats_seconds_and_three_decimals),
		T(test_created_of_a_vcpu_added_later_is_its_own_and_per_vm_uses_the_vms),
		T(test_created_never_appears_in_text_or_for_gauges),
		T(test_created_no_removes_the_kvm_created_lines),
		T(test_selfstats_counters_carry_the_worker_or_the_helper_start),
	};
#undef T

	return cmocka_run_group_tests(tests, load_data, free_data);
}
