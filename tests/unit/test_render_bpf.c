/* SPDX-License-Identifier: MIT */
/*
 * test_render_bpf - the exit telemetry's families under the [metrics]
 * cardinality knobs: vcpu_series = per_vm sums them per VM (counters by
 * reason, round-trip histograms bucket by bucket, schedstat), max_series
 * caps their lines with the KVM stats' and counts what it leaves out,
 * include/exclude and histograms = no apply by the exported name.
 *
 * The BPF maps are memfds laid out as struct kx_slot / kx_meta: bpfview
 * maps them read-only as it maps the real frozen maps, and joins the
 * sources to the slots by the ids both carry. The world: VM "a" with
 * vCPUs 0 and 1 (slots 0, 1), VM "b" with vCPU 0 (slot 2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bpf_layout.h"
#include "bpfview.h"
#include "config.h"
#include "render.h"
#include "render_bpf.h"
#include "snapshot.h"
#include "testutil.h"

#define N_SLOTS 4
#define RT "kvm_vcpu_exit_roundtrip_seconds"
#define UX "kvm_vcpu_userspace_exits_total"
#define HW "kvm_vcpu_exits_by_reason_total"
#define DELAY "kvm_vcpu_run_delay_seconds_total"
#define VMX_IO 30  /* io_instruction */
#define VMX_EPT 48 /* ept_violation */

struct world {
	struct schema *schema;
	struct vm_meta *vms[2];
	struct source *src[3];
	struct snapshot *snap;
	struct selfstats stats;
};

static struct kx_slot *slots; /* the test's writable view of the slots memfd */
static size_t slots_len, meta_len;
static int slots_fd = -1, meta_fd = -1;
static struct bpfview *view;	  /* the worker's read-only view of the same */
static struct stat_filter filter; /* [metrics] as the last configure() set it */
static struct render_bpf rb;

static int memfd_of(size_t len)
{
	int fd = memfd_create("kx", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
		abort();
	return fd;
}

static int map_slots(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	(void)state;
	slots_len = (N_SLOTS * sizeof(struct kx_slot) + page - 1) / page * page;
	meta_len = page;
	slots_fd = memfd_of(slots_len);
	meta_fd = memfd_of(meta_len);
	slots = mmap(NULL, slots_len, PROT_READ | PROT_WRITE, MAP_SHARED, slots_fd, 0);
	assert_true(slots != MAP_FAILED);
	assert_int_equal(bpfview_new(&view), 0);
	assert_int_equal(bpfview_map(view, slots_fd, meta_fd, N_SLOTS, sizeof(struct kx_slot)), 0);
	return 0;
}

static int unmap_slots(void **state)
{
	(void)state;
	bpfview_free(view);
	munmap(slots, slots_len);
	close(slots_fd);
	close(meta_fd);
	render_bpf_fini(&rb);
	stat_filter_free(&filter);
	return 0;
}

static void hist_entry(struct kx_slot *s, uint32_t kind, uint32_t reason, uint64_t sum_ns,
		       unsigned b0, uint64_t n0, unsigned b1, uint64_t n1)
{
	struct kx_hist *h = &s->c.hist[s->c.n_hist++];

	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->reason = reason;
	h->sum_ns = sum_ns;
	h->bucket[b0] += n0;
	h->bucket[b1] += n1;
}

static void hw_entry(struct kx_slot *s, uint32_t reason, uint64_t count)
{
	struct kx_hw *e = &s->c.hw[s->c.n_hw++];

	e->isa = KX_ISA_VMX;
	e->reason = reason;
	e->count = count;
}

static void uexit(struct kx_slot *s, unsigned reason, uint64_t count)
{
	s->c.uexit_mask |= 1ull << reason;
	s->c.uexit[reason] = count;
}

/*
 * a/0: io 5, hlt 3; io_instruction 4; round trips userspace io {b0: 1,
 * b3: 2} 1000 ns, hardware io_instruction {b1: 4} 400 ns; run delay 1 s.
 * a/1: io 7, mmio 1; io_instruction 6, ept_violation 2; userspace io
 * {b0: 2, b5: 1} 2000 ns; run delay 0.5 s. b/0: io 11; delay 0.25 s.
 */
static void fill_slots(void)
{
	memset(slots, 0, slots_len);
	for (int i = 0; i < 3; i++) {
		slots[i].owner_tid = 100u + (unsigned)i;
		snprintf(slots[i].vm_id, KX_ID_LEN, "kvm-%d", i < 2 ? 10 : 20);
		snprintf(slots[i].vcpu_id, KX_ID_LEN, "kvm-%d/vcpu-%d", 100 + i, i == 1);
	}
	uexit(&slots[0], 2, 5);
	uexit(&slots[0], 5, 3);
	hw_entry(&slots[0], VMX_IO, 4);
	hist_entry(&slots[0], KX_KIND_USER, 2, 1000, 0, 1, 3, 2);
	hist_entry(&slots[0], KX_KIND_HW | KX_ISA_VMX << 8, VMX_IO, 400, 1, 4, 1, 0);
	uexit(&slots[1], 2, 7);
	uexit(&slots[1], 6, 1);
	hw_entry(&slots[1], VMX_IO, 6);
	hw_entry(&slots[1], VMX_EPT, 2);
	hist_entry(&slots[1], KX_KIND_USER, 2, 2000, 0, 2, 5, 1);
	uexit(&slots[2], 2, 11);
}

static struct source *vcpu_source(struct world *w, int i, struct vm_meta *vm, int vcpu,
				  uint64_t delay_ns)
{
	static const uint64_t exits[1] = { 42 };
	struct source *s = NULL;

	assert_int_equal(source_new(&s, vm, schema_ref(w->schema), -1, vcpu, 4), 0);
	snprintf(s->id, sizeof(s->id), "kvm-%d/vcpu-%d", 100 + i, vcpu);
	memcpy(ring_begin_write(s->ring), exits, sizeof(exits));
	ring_commit(s->ring, 1000);
	atomic_store(&s->sched_delay_ns, delay_ns);
	atomic_store(&s->sched_run_ns, 2 * delay_ns);
	atomic_store(&s->sched_ok, true);
	w->src[i] = s;
	return s;
}

static int build_world(void **state)
{
	static const struct tu_stat st[] = {
		{ "exits", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 0, 0 },
	};
	struct world *w = calloc(1, sizeof(*w));
	uint8_t *blk;
	size_t len;

	assert_non_null(w);
	blk = tu_build_block("kvm-100/vcpu-0", 48, st, 1, &len);
	w->schema = tu_parse(blk, len, SCOPE_VCPU);
	free(blk);
	assert_int_equal(vm_meta_new(&w->vms[0], 1, 10, 1000, "a", "kvm-10", "vmm", "registered"),
			 0);
	assert_int_equal(vm_meta_new(&w->vms[1], 2, 20, 1000, "b", "kvm-20", "vmm", "registered"),
			 0);
	vm_meta_set_created(w->vms[0], 1700000000123456789ull);
	fill_slots();
	vcpu_source(w, 0, w->vms[0], 0, 1000000000);
	vcpu_source(w, 1, w->vms[0], 1, 500000000);
	vcpu_source(w, 2, w->vms[1], 0, 250000000);
	bpfview_join(view, w->src, 3, true);
	for (int i = 0; i < 3; i++)
		assert_int_not_equal(atomic_load(&w->src[i]->bpf_join), 0);
	assert_int_equal(snapshot_build(&w->snap, w->vms, 2, w->src, 3, NULL), 0);
	w->stats.start_time = 1700000000;
	*state = w;
	return 0;
}

static int free_world(void **state)
{
	struct world *w = *state;

	snapshot_unref(w->snap);
	for (int i = 0; i < 3; i++)
		source_unref(w->src[i]);
	for (int i = 0; i < 2; i++)
		vm_meta_unref(w->vms[i]);
	schema_unref(w->schema);
	free(w);
	return 0;
}

/*
 * [metrics] as given by an INI snippet (empty: the defaults), compiled as
 * the worker compiles it: one stats filter, the reasons settings.
 */
static void configure(const char *metrics)
{
	struct config cfg;
	char text[512], err[256];

	snprintf(text, sizeof(text), "[metrics]\n%s\n", metrics);
	config_defaults(&cfg);
	if (config_load_string(&cfg, text, "test", err, sizeof(err)) < 0)
		fail_msg("config: %s", err);
	render_bpf_fini(&rb);
	stat_filter_free(&filter);
	assert_int_equal(stat_filter_init(&filter, cfg.metrics_include, cfg.metrics_exclude,
					  cfg.histograms, err, sizeof(err)),
			 0);
	assert_int_equal(render_bpf_init(&rb, &cfg, err, sizeof(err)), 0);
}

static char *render(const struct world *w, enum render_format fmt, const struct render_opts *o,
		    struct render_result *res, bool self)
{
	const struct render_config rc = { .opts = o ? *o : (struct render_opts){ 0 },
					  .filter = &filter,
					  .schedstat = true,
					  .bpf = &rb,
					  .view = view };
	struct buf b = { 0 };
	char *s;

	assert_int_equal(render_metrics(w->snap, self ? &w->stats : NULL, fmt, &rc, &b, res), 0);
	assert_false(b.failed);
	s = strndup(b.data ? b.data : "", b.len);
	assert_non_null(s);
	buf_free(&b);
	return s;
}

/* Sample lines render_result counts: kvm_*, but kvm_vm_info. */
static size_t kvm_sample_lines(const char *out)
{
	return tu_lines_starting(out, "kvm_") - tu_lines_starting(out, "kvm_vm_info{");
}

/* ---- vcpu_series = per_vm ----------------------------------------------------- */

static void test_per_vcpu_keeps_the_vcpu_label_on_every_bpf_series(void **state)
{
	const struct world *w = *state;
	char *out;

	configure("");
	out = render(w, FMT_TEXT_004, NULL, NULL, false);
	tu_assert_line(out, UX "{vm=\"a\",vcpu=\"0\",reason=\"io\"} 5");
	tu_assert_line(out, UX "{vm=\"a\",vcpu=\"1\",reason=\"io\"} 7");
	tu_assert_line(out, DELAY "{vm=\"a\",vcpu=\"1\"} 0.5");
	assert_int_equal(tu_lines_starting(out, RT "_count{"), 3);
	free(out);
}

static void test_per_vm_sums_exit_counters_by_reason_without_the_vcpu_label(void **state)
{
	const struct world *w = *state;
	const struct render_opts o = { .vcpu_sum = true };
	char *out;

	configure("");
	out = render(w, FMT_TEXT_004, &o, NULL, false);
	tu_assert_line(out, UX "{vm=\"a\",reason=\"io\"} 12");
	tu_assert_line(out, UX "{vm=\"a\",reason=\"hlt\"} 3");
	tu_assert_line(out, UX "{vm=\"a\",reason=\"mmio\"} 1");
	tu_assert_line(out, UX "{vm=\"b\",reason=\"io\"} 11");
	tu_assert_line(out, HW "{vm=\"a\",reason=\"io_instruction\"} 10");
	tu_assert_line(out, HW "{vm=\"a\",reason=\"ept_violation\"} 2");
	assert_int_equal(tu_lines_starting(out, UX "{"), 4);
	assert_int_equal(tu_lines_starting(out, HW "{"), 2);
	/* the KVM stats' per-VM sums: the same label set */
	tu_assert_line(out, "kvm_vcpu_exits_total{vm=\"a\"} 84");
	assert_null(strstr(out, "vcpu=\""));
	free(out);
}

static void test_per_vm_sums_round_trip_histograms_bucket_by_bucket(void **state)
{
	const struct world *w = *state;
	const struct render_opts o = { .vcpu_sum = true };
	char *out;

	configure("");
	out = render(w, FMT_TEXT_004, &o, NULL, false);
	/* buckets {0: 1+2, 3: 2, 5: 1}, cumulative; le = 2^(8+b) - 1 ns */
	tu_assert_line(out, RT
		       "_bucket{vm=\"a\",kind=\"userspace\",reason=\"io\",le=\"0.000000255\"} 3");
	tu_assert_line(out, RT
		       "_bucket{vm=\"a\",kind=\"userspace\",reason=\"io\",le=\"0.000001023\"} 3");
	tu_assert_line(out, RT
		       "_bucket{vm=\"a\",kind=\"userspace\",reason=\"io\",le=\"0.000002047\"} 5");
	tu_assert_line(out, RT
		       "_bucket{vm=\"a\",kind=\"userspace\",reason=\"io\",le=\"0.000008191\"} 6");
	tu_assert_line(out, RT "_bucket{vm=\"a\",kind=\"userspace\",reason=\"io\",le=\"+Inf\"} 6");
	tu_assert_line(out, RT "_count{vm=\"a\",kind=\"userspace\",reason=\"io\"} 6");
	tu_assert_line(out, RT "_sum{vm=\"a\",kind=\"userspace\",reason=\"io\"} 0.000003");
	tu_assert_line(out, RT "_count{vm=\"a\",kind=\"hardware\",reason=\"io_instruction\"} 4");
	tu_assert_line(out,
		       RT "_sum{vm=\"a\",kind=\"hardware\",reason=\"io_instruction\"} 0.0000004");
	assert_int_equal(tu_lines_starting(out, RT "_bucket{"), 2 * KX_HIST_BUCKETS);
	assert_int_equal(tu_lines_starting(out, RT "_count{"), 2);
	free(out);
}

static void test_per_vm_sums_schedstat_and_uses_the_vms_created(void **state)
{
	const struct world *w = *state;
	const struct render_opts o = { .vcpu_sum = true };
	char *out;

	configure("");
	out = render(w, FMT_OPENMETRICS_100, &o, NULL, false);
	tu_assert_line(out, DELAY "{vm=\"a\"} 1.5");
	tu_assert_line(out, DELAY "{vm=\"b\"} 0.25");
	tu_assert_line(out, "kvm_vcpu_thread_cpu_seconds_total{vm=\"a\"} 3");
	tu_assert_line(out, "kvm_vcpu_run_delay_seconds_created{vm=\"a\"} 1700000000.123");
	tu_assert_line(out, UX "{vm=\"a\",reason=\"io\"} 12");
	tu_assert_line(out,
		       "kvm_vcpu_userspace_exits_created{vm=\"a\",reason=\"io\"} 1700000000.123");
	free(out);
}

static void test_per_vm_with_reasons_top_sums_the_cut_reasons_into_other(void **state)
{
	const struct world *w = *state;
	const struct render_opts o = { .vcpu_sum = true };
	char *out;

	configure("reasons_top = 1");
	out = render(w, FMT_TEXT_004, &o, NULL, false);
	tu_assert_line(out, UX "{vm=\"a\",reason=\"io\"} 12");
	tu_assert_line(out, UX "{vm=\"a\",reason=\"other\"} 4");
	tu_assert_line(out, HW "{vm=\"a\",reason=\"io_instruction\"} 10");
	tu_assert_line(out, HW "{vm=\"a\",reason=\"other\"} 2");
	assert_int_equal(tu_lines_starting(out, UX "{vm=\"a\""), 2);
	tu_assert_line(out, RT "_count{vm=\"a\",kind=\"userspace\",reason=\"io\"} 6");
	tu_assert_line(out, RT "_count{vm=\"a\",kind=\"hardware\",reason=\"other\"} 4");
	free(out);
}

/* ---- max_series ------------------------------------------------------------------ */

/* Every round-trip histogram series in out is whole: buckets, _count, _sum (, _created). */
static void assert_whole_histograms(const char *out, bool om)
{
	size_t series = tu_lines_starting(out, RT "_count{");

	assert_int_equal(tu_lines_starting(out, RT "_bucket{"), series * KX_HIST_BUCKETS);
	assert_int_equal(tu_lines_starting(out, RT "_sum{"), series);
	if (om)
		assert_int_equal(tu_lines_starting(out, RT "_created{"), series);
}

static void check_caps(const struct world *w, enum render_format fmt, bool vcpu_sum)
{
	struct render_opts o = { .vcpu_sum = vcpu_sum };
	struct render_result full = { 0 };
	char *uncapped = render(w, fmt, &o, &full, false);

	assert_int_equal(full.series, kvm_sample_lines(uncapped));
	for (size_t cap = 1; cap <= full.series + 1; cap++) {
		struct render_result res = { 0 };
		char *out;

		o.max_series = cap;
		out = render(w, fmt, &o, &res, false);
		if (res.series > cap)
			fail_msg("cap %zu: %zu series", cap, res.series);
		assert_int_equal(res.series, kvm_sample_lines(out));
		assert_int_equal(res.series + res.dropped, full.series);
		assert_whole_histograms(out, fmt == FMT_OPENMETRICS_100);
		if (cap >= full.series)
			assert_string_equal(out, uncapped);
		free(out);
	}
	free(uncapped);
}

static void test_max_series_caps_bpf_series_whole_and_counts_them(void **state)
{
	const struct world *w = *state;

	configure("");
	check_caps(w, FMT_TEXT_004, false);
	check_caps(w, FMT_OPENMETRICS_100, false);
	check_caps(w, FMT_TEXT_004, true);
	check_caps(w, FMT_OPENMETRICS_100, true);
}

static void test_max_series_drops_bpf_lines_into_the_self_metric(void **state)
{
	struct world *w = *state;
	const struct render_opts o = { .max_series = 3 }; /* the 3 KVM exits lines */
	struct render_result res = { 0 };
	char *out;

	configure("");
	w->stats.max_series = 3;
	out = render(w, FMT_TEXT_004, &o, &res, true);
	assert_int_equal(res.series, 3);
	assert_int_equal(tu_lines_starting(out, "kvm_vcpu_exits_total{"), 3);
	assert_int_equal(tu_lines_starting(out, UX "{") + tu_lines_starting(out, DELAY "{") +
			     tu_lines_starting(out, RT "_count{"),
			 0);
	assert_true(res.dropped > 0);
	tu_assert_line(out, "kvmstatd_series 3");
	tu_assert_line(out, "kvmstatd_series_dropped_total %zu", res.dropped);
	free(out);
}

static void test_openmetrics_created_lines_of_bpf_series_are_counted(void **state)
{
	const struct world *w = *state;
	struct render_result text = { 0 }, om = { 0 };
	char *a, *b;

	configure("");
	a = render(w, FMT_TEXT_004, NULL, &text, false);
	b = render(w, FMT_OPENMETRICS_100, NULL, &om, false);
	assert_int_equal(om.series, text.series + tu_count(b, "_created{"));
	assert_int_equal(om.series, kvm_sample_lines(b));
	free(a);
	free(b);
}

/* ---- include / exclude / histograms ------------------------------------------------- */

static void test_exclude_names_bpf_families_by_their_exported_name(void **state)
{
	const struct world *w = *state;
	char *out;

	configure("exclude = " RT "|" DELAY "|kvm_vcpu_exits_by_reason");
	out = render(w, FMT_TEXT_004, NULL, NULL, false);
	assert_int_equal(tu_lines_starting(out, RT), 0);
	assert_int_equal(tu_lines_starting(out, DELAY), 0);
	assert_int_equal(tu_lines_starting(out, HW), 0);
	assert_null(strstr(out, "# HELP " HW));
	assert_int_equal(tu_lines_starting(out, UX "{"), 5);
	assert_int_equal(tu_lines_starting(out, "kvm_vcpu_thread_cpu_seconds_total{"), 3);
	free(out);
}

static void test_include_keeps_only_the_named_bpf_families(void **state)
{
	const struct world *w = *state;
	char *out;

	configure("include = " UX "|kvm_vcpu_run_delay_seconds");
	out = render(w, FMT_TEXT_004, NULL, NULL, false);
	assert_int_equal(tu_lines_starting(out, UX "{"), 5);
	assert_int_equal(tu_lines_starting(out, DELAY "{"), 3);
	assert_int_equal(tu_lines_starting(out, RT), 0);
	assert_int_equal(tu_lines_starting(out, HW), 0);
	assert_int_equal(tu_lines_starting(out, "kvm_vcpu_thread_cpu_seconds"), 0);
	free(out);
}

/* ---- the schedstat switch ([daemon] bpf = off) ---------------------------------------- */

static void test_schedstat_off_leaves_out_its_families_and_nothing_else(void **state)
{
	const struct world *w = *state;
	const struct render_config off = {
		.filter = &filter, .schedstat = false, .bpf = &rb, .view = view
	};
	struct buf b = { 0 };
	char *out, *on;

	configure("");
	on = render(w, FMT_TEXT_004, NULL, NULL, false);
	assert_int_equal(render_metrics(w->snap, NULL, FMT_TEXT_004, &off, &b, NULL), 0);
	out = strndup(b.data, b.len);
	assert_non_null(out);
	assert_null(strstr(out, "kvm_vcpu_run_delay_seconds"));
	assert_null(strstr(out, "kvm_vcpu_thread_cpu_seconds"));
	assert_int_equal(tu_lines_starting(out, UX "{"), tu_lines_starting(on, UX "{"));
	assert_int_equal(tu_lines_starting(out, RT "_count{"), tu_lines_starting(on, RT "_count{"));
	assert_int_equal(tu_lines_starting(on, DELAY "{"), 3);
	buf_free(&b);
	free(out);
	free(on);
}

static void test_histograms_no_leaves_out_the_round_trip_histograms(void **state)
{
	const struct world *w = *state;
	char *out;

	configure("histograms = no");
	out = render(w, FMT_OPENMETRICS_100, NULL, NULL, false);
	assert_null(strstr(out, RT));
	assert_int_equal(tu_lines_starting(out, UX "{"), 5);
	assert_int_equal(tu_lines_starting(out, HW "{"), 3);
	free(out);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, build_world, free_world)
	const struct CMUnitTest tests[] = {
		T(test_per_vcpu_keeps_the_vcpu_label_on_every_bpf_series),
		T(test_per_vm_sums_exit_counters_by_reason_without_the_vcpu_label),
		T(test_per_vm_sums_round_trip_histograms_bucket_by_bucket),
		T(test_per_vm_sums_schedstat_and_uses_the_vms_created),
		T(test_per_vm_with_reasons_top_sums_the_cut_reasons_into_other),
		T(test_max_series_caps_bpf_series_whole_and_counts_them),
		T(test_max_series_drops_bpf_lines_into_the_self_metric),
		T(test_openmetrics_created_lines_of_bpf_series_are_counted),
		T(test_exclude_names_bpf_families_by_their_exported_name),
		T(test_include_keeps_only_the_named_bpf_families),
		T(test_histograms_no_leaves_out_the_round_trip_histograms),
		T(test_schedstat_off_leaves_out_its_families_and_nothing_else),
	};
#undef T
	return cmocka_run_group_tests(tests, map_slots, unmap_slots);
}
