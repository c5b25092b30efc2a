/* SPDX-License-Identifier: MIT */
/*
 * test_render - snapshot + renderer against golden text, in both formats.
 *
 * Sources are built from the real captured schemas with fd -1 (source.c only
 * closes fds >= 0) and known values written into their rings. Besides exact
 * lines, every output goes through a structural check: each family has one
 * TYPE, its HELP/TYPE come before its samples, its samples are contiguous,
 * histogram buckets are cumulative and end in _count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http.h"
#include "render.h"
#include "snapshot.h"
#include "testutil.h"

#define WEIRD_NAME "we\"ird\\name\n-\xc3\xbc\xf0\x9f\x98\x80"
#define WEIRD_LABEL "vm=\"we\\\"ird\\\\name\\n-\xc3\xbc\xf0\x9f\x98\x80\""

struct world {
	struct schema *vm_schema, *vcpu_schema;
	struct vm_meta *vms[2];
	struct source *src[6];
	size_t n_src;
	struct snapshot *snap;
	struct selfstats stats;
};

static uint8_t *vm_blk, *vcpu_blk, *vcpu_data;
static size_t vm_len, vcpu_len, data_len;

static int load_data(void **state)
{
	(void)state;
	vm_blk = tu_read_file(TU_VM_LAYOUT, &vm_len);
	vcpu_blk = tu_read_file(TU_VCPU_LAYOUT, &vcpu_len);
	vcpu_data = tu_read_file(TU_VCPU_DATA, &data_len);
	return 0;
}

static int free_data(void **state)
{
	(void)state;
	free(vm_blk);
	free(vcpu_blk);
	free(vcpu_data);
	return 0;
}

static uint32_t word_of(const struct schema *s, const char *desc)
{
	const struct schema_stat *st = tu_stat_by_desc(s, desc);

	if (!st)
		fail_msg("no stat %s", desc);
	return st->index;
}

static struct source *add_source(struct world *w, struct vm_meta *vm, struct schema *sc, int vcpu)
{
	struct source *s = NULL;

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

/*
 * VM "we"ird..." : VM stats (word i = i + 1), vCPU 0 (the captured sample
 * with known histogram values), vCPU 1 (exits 5, blocking), vCPU 2 (no
 * sample yet). VM "plain": VM stats (all 7) and vCPU 0 (exits 11).
 */
static int build_world(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	uint64_t vm_vals[TU_VM_DATA_WORDS], v[TU_VCPU_DATA_WORDS];
	uint32_t hw;
	struct source *s;

	assert_non_null(w);
	w->vm_schema = tu_parse(vm_blk, vm_len, SCOPE_VM);
	w->vcpu_schema = tu_parse(vcpu_blk, vcpu_len, SCOPE_VCPU);
	assert_int_equal(w->vm_schema->data_words, TU_VM_DATA_WORDS);
	assert_int_equal(w->vcpu_schema->data_words, TU_VCPU_DATA_WORDS);
	assert_int_equal(data_len, sizeof(v));
	assert_int_equal(vm_meta_new(&w->vms[0], 1, 4242, 1000, WEIRD_NAME, "kvm-4242",
				     "qemu-system-x86", "registered"),
			 0);
	assert_int_equal(
	    vm_meta_new(&w->vms[1], 2, 5151, 1000, "plain", "kvm-5151", "vmm", "registered"), 0);

	for (uint32_t i = 0; i < TU_VM_DATA_WORDS; i++)
		vm_vals[i] = i + 1;
	commit(add_source(w, w->vms[0], w->vm_schema, -1), vm_vals);

	memcpy(v, vcpu_data, sizeof(v));
	hw = word_of(w->vcpu_schema, "halt_wait_hist");
	memset(v + hw, 0, 32 * sizeof(uint64_t));
	v[hw + 0] = 1;
	v[hw + 1] = 2;
	v[hw + 2] = 3;
	v[hw + 31] = 4;
	v[tu_stat_by_desc(w->vcpu_schema, "halt_wait_hist")->sum_index] = 1500000000;
	v[word_of(w->vcpu_schema, "exits")] = 123456789;
	commit(add_source(w, w->vms[0], w->vcpu_schema, 0), v);

	memset(v, 0, sizeof(v));
	v[word_of(w->vcpu_schema, "exits")] = 5;
	v[word_of(w->vcpu_schema, "blocking")] = 1;
	commit(add_source(w, w->vms[0], w->vcpu_schema, 1), v);

	add_source(w, w->vms[0], w->vcpu_schema, 2); /* never polled */

	for (uint32_t i = 0; i < TU_VM_DATA_WORDS; i++)
		vm_vals[i] = 7;
	commit(add_source(w, w->vms[1], w->vm_schema, -1), vm_vals);
	memset(v, 0, sizeof(v));
	v[word_of(w->vcpu_schema, "exits")] = 11;
	s = add_source(w, w->vms[1], w->vcpu_schema, 0);
	commit(s, v);

	assert_int_equal(snapshot_build(&w->snap, w->vms, 2, w->src, w->n_src, NULL), 0);
	stat_set(&w->stats.polls, 42);
	stat_set(&w->stats.rejected[REJ_BAD_FD], 3);
	w->stats.start_time = 1700000000;
	*state = w;
	return 0;
}

static int free_world(void **state)
{
	struct world *w = *state;

	snapshot_unref(w->snap);
	for (size_t i = 0; i < w->n_src; i++)
		source_unref(w->src[i]);
	vm_meta_unref(w->vms[0]);
	vm_meta_unref(w->vms[1]);
	schema_unref(w->vm_schema);
	schema_unref(w->vcpu_schema);
	free(w);
	return 0;
}

/* Render into a NUL-terminated malloc'd string. */
static char *render(const struct snapshot *snap, const struct selfstats *st, enum render_format fmt)
{
	struct buf b = { 0 };
	char *s;

	assert_int_equal(render_metrics(snap, st, fmt, NULL, &b, NULL), 0);
	assert_false(b.failed);
	s = malloc(b.len + 1);
	assert_non_null(s);
	if (b.len)
		memcpy(s, b.data, b.len);
	s[b.len] = '\0';
	buf_free(&b);
	return s;
}

/* ---- the structural check -------------------------------------------------- */

struct family_seen {
	char name[192];
	char type[16];
	bool help;
};

static bool ends_with(const char *s, size_t len, const char *sfx)
{
	size_t n = strlen(sfx);

	return len >= n && !memcmp(s + len - n, sfx, n);
}

/* Does sample name (len bytes) belong to family f of type t? */
static bool sample_of(const char *name, size_t len, const struct family_seen *f, bool om)
{
	size_t fl = strlen(f->name);
	const char *const *sfx;
	static const char *const counter_om[] = { "_total", "_created", NULL };
	static const char *const plain[] = { "", NULL };
	static const char *const hist[] = { "_bucket", "_count", "_sum", "_created", NULL };
	static const char *const info[] = { "_info", NULL };

	if (len < fl || memcmp(name, f->name, fl))
		return false;
	if (!strcmp(f->type, "counter"))
		sfx = om ? counter_om : plain;
	else if (!strcmp(f->type, "histogram"))
		sfx = hist;
	else if (!strcmp(f->type, "info"))
		sfx = info;
	else
		sfx = plain;
	for (; *sfx; sfx++)
		if (len == fl + strlen(*sfx) && ends_with(name, len, *sfx))
			return true;
	return false;
}

static void check_structure(const char *out, bool om)
{
	struct family_seen *fams = calloc(1024, sizeof(*fams));
	struct family_seen *cur = NULL;
	char bucket_key[1024] = "";
	uint64_t bucket_last = 0, inf = 0;
	bool have_inf = false;
	size_t n_fams = 0;
	const char *p = out;
	char line[2048] = "", prev[2048];

	assert_non_null(fams);
	assert_true(out[0] == '\0' || out[strlen(out) - 1] == '\n');
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = (size_t)(nl - p);
		assert_non_null(nl);
		assert_true(len < sizeof(line));
		memcpy(prev, line, sizeof(prev));
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl + 1;
		if (!strcmp(line, "# EOF")) {
			assert_true(om);
			assert_int_equal(*p, '\0'); /* the last line */
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			char name[192], type[16];

			assert_int_equal(sscanf(line, "# TYPE %191s %15s", name, type), 2);
			for (size_t i = 0; i < n_fams; i++)
				if (!strcmp(fams[i].name, name))
					fail_msg("second TYPE for %s", name);
			cur = &fams[n_fams++];
			snprintf(cur->name, sizeof(cur->name), "%s", name);
			snprintf(cur->type, sizeof(cur->type), "%s", type);
			/* the text format puts HELP right before TYPE */
			if (!om) {
				char help[256];

				snprintf(help, sizeof(help), "# HELP %s ", name);
				if (strncmp(prev, help, strlen(help)))
					fail_msg("TYPE %s not preceded by its HELP", name);
				cur->help = true;
			}
			continue;
		}
		if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# UNIT ", 7)) {
			char name[192];

			assert_int_equal(sscanf(line + 7, "%191s", name), 1);
			if (om) { /* belongs to the family just typed */
				assert_non_null(cur);
				assert_string_equal(name, cur->name);
				if (line[2] == 'H') {
					assert_false(cur->help);
					cur->help = true;
				}
			} else {
				assert_true(line[2] == 'H'); /* no UNIT in text 0.0.4 */
			}
			continue;
		}
		assert_true(line[0] != '#');
		{
			size_t nlen = strcspn(line, "{ ");
			const char *val = strrchr(line, ' ');
			uint64_t v;

			if (!cur || !sample_of(line, nlen, cur, om))
				fail_msg("sample outside its family (current %s): %s",
					 cur ? cur->name : "none", line);
			assert_non_null(val);
			if (ends_with(line, nlen, "_bucket")) {
				const char *le = strstr(line, ",le=\"");
				size_t klen;

				assert_non_null(le);
				klen = (size_t)(le - line);
				v = strtoull(val + 1, NULL, 10);
				if (strlen(bucket_key) != klen || memcmp(bucket_key, line, klen)) {
					memcpy(bucket_key, line, klen);
					bucket_key[klen] = '\0';
					bucket_last = 0;
				}
				if (v < bucket_last)
					fail_msg("buckets not cumulative: %s", line);
				bucket_last = v;
				if (!strncmp(le, ",le=\"+Inf\"}", 11)) {
					inf = v;
					have_inf = true;
				}
			} else if (ends_with(line, nlen, "_count") &&
				   !strcmp(cur->type, "histogram")) {
				assert_true(have_inf);
				assert_int_equal(strtoull(val + 1, NULL, 10), inf);
				have_inf = false;
			}
		}
	}
	if (om)
		assert_true(strlen(out) >= 6 && !strcmp(out + strlen(out) - 6, "# EOF\n"));
	free(fams);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_counter_gauge_and_boolean_lines_are_exact(void **state)
{
	struct world *w = *state;
	char *out = render(w->snap, NULL, FMT_TEXT_004);

	tu_assert_line(out, "kvm_vm_remote_tlb_flush_total{" WEIRD_LABEL "} 1");
	tu_assert_line(out, "kvm_vm_mmu_unsync{" WEIRD_LABEL "} 9");
	tu_assert_line(out, "kvm_vm_max_mmu_rmap_size{" WEIRD_LABEL "} 15");
	tu_assert_line(out, "kvm_vm_max_mmu_page_hash_collisions{" WEIRD_LABEL "} 14");
	tu_assert_line(out, "kvm_vm_remote_tlb_flush_total{vm=\"plain\"} 7");
	tu_assert_line(out, "kvm_vcpu_exits_total{" WEIRD_LABEL ",vcpu=\"0\"} 123456789");
	tu_assert_line(out, "kvm_vcpu_exits_total{" WEIRD_LABEL ",vcpu=\"1\"} 5");
	tu_assert_line(out, "kvm_vcpu_exits_total{vm=\"plain\",vcpu=\"0\"} 11");
	tu_assert_line(out, "kvm_vcpu_blocking{" WEIRD_LABEL ",vcpu=\"1\"} 1");
	tu_assert_line(out, "kvm_vcpu_blocking{" WEIRD_LABEL ",vcpu=\"0\"} 0");
	/* the captured sample's own values come through */
	tu_assert_line(out, "kvm_vcpu_halt_exits_total{" WEIRD_LABEL ",vcpu=\"0\"} 1");
	free(out);
}

static void test_histogram_buckets_are_cumulative_with_exact_le_and_sum(void **state)
{
	struct world *w = *state;
	char *out = render(w->snap, NULL, FMT_TEXT_004);
	const char *series = "kvm_vcpu_halt_wait_seconds_bucket{" WEIRD_LABEL ",vcpu=\"0\",le=";

	tu_assert_line(out, "%s\"0\"} 1", series);
	tu_assert_line(out, "%s\"0.000000001\"} 3", series);
	tu_assert_line(out, "%s\"0.000000003\"} 6", series);
	tu_assert_line(out, "%s\"0.000000007\"} 6", series);
	tu_assert_line(out, "%s\"1.073741823\"} 6", series);
	tu_assert_line(out, "%s\"+Inf\"} 10", series);
	tu_assert_line(out, "kvm_vcpu_halt_wait_seconds_count{" WEIRD_LABEL ",vcpu=\"0\"} 10");
	tu_assert_line(out, "kvm_vcpu_halt_wait_seconds_sum{" WEIRD_LABEL ",vcpu=\"0\"} 1.5");
	assert_int_equal(tu_count(out, series), 32);
	/* the _ns twin is the _sum, not a counter of its own */
	assert_null(strstr(out, "kvm_vcpu_halt_wait_seconds_total"));
	tu_assert_line(out, "kvm_vcpu_halt_wait_seconds_sum{vm=\"plain\",vcpu=\"0\"} 0");
	free(out);
}

static void test_text_headers_are_exact_and_once_per_family(void **state)
{
	struct world *w = *state;
	char *out = render(w->snap, &w->stats, FMT_TEXT_004);

	assert_non_null(strstr(out,
			       "# HELP kvm_vcpu_exits_total Exits from guest mode to KVM. (KVM "
			       "vCPU stat exits, cumulative count)\n"
			       "# TYPE kvm_vcpu_exits_total counter\n"));
	assert_non_null(strstr(out, "# HELP kvm_vcpu_halt_wait_seconds Durations of halt waits. "
				    "(KVM vCPU stat halt_wait_hist, logarithmic histogram, in "
				    "seconds, _sum from the matching cumulative stat)\n"
				    "# TYPE kvm_vcpu_halt_wait_seconds histogram\n"));
	assert_non_null(strstr(out, "# TYPE kvm_vm_mmu_unsync gauge\n"));
	assert_int_equal(tu_count(out, "# TYPE kvm_vcpu_exits_total "), 1);
	assert_int_equal(tu_count(out, "# HELP kvm_vcpu_exits_total "), 1);
	assert_null(strstr(out, "# UNIT"));
	assert_null(strstr(out, "# EOF"));
	check_structure(out, false);
	free(out);
}

static void test_openmetrics_headers_units_info_and_eof(void **state)
{
	struct world *w = *state;
	char *out = render(w->snap, &w->stats, FMT_OPENMETRICS_100);

	assert_non_null(strstr(out, "# TYPE kvm_vcpu_exits counter\n# HELP kvm_vcpu_exits Exits "
				    "from guest mode to KVM. (KVM vCPU stat exits, cumulative "
				    "count)\n"));
	assert_non_null(strstr(out, "# TYPE kvm_vcpu_halt_wait_seconds histogram\n"
				    "# UNIT kvm_vcpu_halt_wait_seconds seconds\n"
				    "# HELP kvm_vcpu_halt_wait_seconds "));
	tu_assert_line(out, "kvm_vcpu_exits_total{" WEIRD_LABEL ",vcpu=\"0\"} 123456789");
	tu_assert_line(out, "kvm_vcpu_halt_wait_seconds_sum{" WEIRD_LABEL ",vcpu=\"0\"} 1.5");
	assert_non_null(strstr(out, "# TYPE kvm_vm info\n"));
	assert_null(strstr(out, "# TYPE kvm_vm_info"));
	tu_assert_line(out, "kvm_vm_info{" WEIRD_LABEL ",kernel_id=\"kvm-4242\",vmm_pid=\"4242\","
			    "vmm_comm=\"qemu-system-x86\",source=\"registered\"} 1");
	assert_int_equal(tu_count(out, "# EOF"), 1);
	assert_true(strlen(out) > 6 && !strcmp(out + strlen(out) - 6, "# EOF\n"));
	check_structure(out, true);
	free(out);
}

static void test_text_format_has_kvm_vm_info_as_a_gauge(void **state)
{
	struct world *w = *state;
	char *out = render(w->snap, NULL, FMT_TEXT_004);

	assert_non_null(strstr(out, "# TYPE kvm_vm_info gauge\n"));
	tu_assert_line(out, "kvm_vm_info{" WEIRD_LABEL ",kernel_id=\"kvm-4242\",vmm_pid=\"4242\","
			    "vmm_comm=\"qemu-system-x86\",source=\"registered\"} 1");
	tu_assert_line(out, "kvm_vm_info{vm=\"plain\",kernel_id=\"kvm-5151\",vmm_pid=\"5151\","
			    "vmm_comm=\"vmm\",source=\"registered\"} 1");
	free(out);
}

static void test_source_without_a_sample_emits_no_lines(void **state)
{
	struct world *w = *state;
	char *text = render(w->snap, NULL, FMT_TEXT_004);
	char *om = render(w->snap, NULL, FMT_OPENMETRICS_100);

	assert_null(strstr(text, "vcpu=\"2\""));
	assert_null(strstr(om, "vcpu=\"2\""));
	free(text);
	free(om);
}

static void test_label_values_are_escaped_and_keep_utf8(void **state)
{
	struct world *w = *state;
	char *out = render(w->snap, NULL, FMT_OPENMETRICS_100);

	assert_string_equal(w->vms[0]->label, WEIRD_LABEL);
	/* no raw newline inside a sample line: every line parses */
	check_structure(out, true);
	assert_non_null(strstr(out, "\xc3\xbc\xf0\x9f\x98\x80"));
	free(out);
}

static void test_selfstats_lines_are_present(void **state)
{
	struct world *w = *state;
	char *text = render(w->snap, &w->stats, FMT_TEXT_004);
	char *om = render(w->snap, &w->stats, FMT_OPENMETRICS_100);

	tu_assert_line(text, "kvmstatd_sources{kind=\"vm\"} 2");
	tu_assert_line(text, "kvmstatd_sources{kind=\"vcpu\"} 4");
	tu_assert_line(text, "kvmstatd_polls_total 42");
	tu_assert_line(text, "kvmstatd_registrations_rejected_total{reason=\"bad_fd\"} 3");
	tu_assert_line(text, "kvmstatd_build_info{version=\"" KVMSTATD_VERSION "\"} 1");
	assert_non_null(strstr(text, "# TYPE kvmstatd_polls_total counter\n"));
	tu_assert_line(om, "kvmstatd_polls_total 42");
	assert_non_null(strstr(om, "# TYPE kvmstatd_polls counter\n"));
	assert_non_null(strstr(om, "# TYPE kvmstatd_build info\n"));
	tu_assert_line(om, "kvmstatd_start_time_seconds 1700000000");
	free(text);
	free(om);
}

static void test_nothing_registered_renders_only_selfstats(void **state)
{
	struct selfstats st;
	char *out;

	(void)state;
	memset(&st, 0, sizeof(st));
	out = render(NULL, NULL, FMT_TEXT_004);
	assert_string_equal(out, "");
	free(out);
	out = render(NULL, NULL, FMT_OPENMETRICS_100);
	assert_string_equal(out, "# EOF\n");
	free(out);
	out = render(NULL, &st, FMT_TEXT_004);
	tu_assert_line(out, "kvmstatd_sources{kind=\"vm\"} 0");
	assert_null(strstr(out, "kvm_vm_info"));
	check_structure(out, false);
	free(out);
	out = render(NULL, &st, FMT_OPENMETRICS_100);
	check_structure(out, true);
	free(out);
}

static void test_empty_snapshot_renders_no_kvm_families(void **state)
{
	struct snapshot *snap = NULL;
	char *out;

	(void)state;
	assert_int_equal(snapshot_build(&snap, NULL, 0, NULL, 0, NULL), 0);
	out = render(snap, NULL, FMT_OPENMETRICS_100);
	assert_string_equal(out, "# EOF\n");
	free(out);
	snapshot_unref(snap);
}

static void test_family_with_a_conflicting_type_is_rendered_once(void **state)
{
	struct world *w = *state;
	const struct tu_stat st[] = {
		{ "exits", KVM_STATS_TYPE_INSTANT, 0, 1, 0, 0 }, /* a gauge this time */
		{ "halt_exits", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 8, 0 },
	};
	size_t len;
	uint8_t *b = tu_build_block("kvm-9/vcpu-0", 48, st, 2, &len);
	struct schema *odd = tu_parse(b, len, SCOPE_VCPU);
	struct source *srcs[2] = { NULL, NULL };
	struct snapshot *snap = NULL;
	uint64_t vals[2] = { 3, 4 };
	char *out;

	srcs[0] = w->src[1]; /* the real vCPU 0 */
	assert_int_equal(source_new(&srcs[1], w->vms[1], odd, -1, 5, 4), 0);
	commit(srcs[1], vals);
	assert_int_equal(snapshot_build(&snap, w->vms, 2, srcs, 2, NULL), 0);
	assert_int_equal(snap->type_conflicts, 1);
	out = render(snap, NULL, FMT_TEXT_004);
	check_structure(out, false);
	assert_int_equal(tu_count(out, "# TYPE kvm_vcpu_exits"), 1);
	tu_assert_line(out, "kvm_vcpu_halt_exits_total{vm=\"plain\",vcpu=\"5\"} 4");
	free(out);
	out = render(snap, NULL, FMT_OPENMETRICS_100);
	check_structure(out, true);
	free(out);
	snapshot_unref(snap);
	source_unref(srcs[1]);
	free(b);
}

/* ---- http_wants_openmetrics ------------------------------------------------ */

static void test_prometheus_accept_header_gets_openmetrics(void **state)
{
	(void)state;
	assert_true(http_wants_openmetrics(
	    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
	    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
	assert_true(http_wants_openmetrics("application/openmetrics-text"));
	assert_true(http_wants_openmetrics("application/openmetrics-text; version=1.0.0; "
					   "charset=utf-8"));
	assert_true(http_wants_openmetrics("text/plain;q=0.5, application/openmetrics-text"));
	assert_true(http_wants_openmetrics("Application/OpenMetrics-Text"));
}

static void test_other_accept_headers_get_text(void **state)
{
	(void)state;
	assert_false(http_wants_openmetrics(NULL));
	assert_false(http_wants_openmetrics(""));
	assert_false(http_wants_openmetrics("text/plain"));
	assert_false(http_wants_openmetrics("*/*"));
	assert_false(http_wants_openmetrics("text/plain;version=0.0.4"));
	assert_false(http_wants_openmetrics("application/openmetrics-text;q=0"));
	assert_false(http_wants_openmetrics("application/openmetrics-text; q=0.0, text/plain"));
	assert_false(http_wants_openmetrics("application/openmetrics-text;q=0.5,text/plain"));
	assert_false(http_wants_openmetrics("application/openmetrics-textual"));
	assert_false(http_wants_openmetrics("application/json"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counter_gauge_and_boolean_lines_are_exact,
						build_world, free_world),
		cmocka_unit_test_setup_teardown(
		    test_histogram_buckets_are_cumulative_with_exact_le_and_sum, build_world,
		    free_world),
		cmocka_unit_test_setup_teardown(test_text_headers_are_exact_and_once_per_family,
						build_world, free_world),
		cmocka_unit_test_setup_teardown(test_openmetrics_headers_units_info_and_eof,
						build_world, free_world),
		cmocka_unit_test_setup_teardown(test_text_format_has_kvm_vm_info_as_a_gauge,
						build_world, free_world),
		cmocka_unit_test_setup_teardown(test_source_without_a_sample_emits_no_lines,
						build_world, free_world),
		cmocka_unit_test_setup_teardown(test_label_values_are_escaped_and_keep_utf8,
						build_world, free_world),
		cmocka_unit_test_setup_teardown(test_selfstats_lines_are_present, build_world,
						free_world),
		cmocka_unit_test(test_nothing_registered_renders_only_selfstats),
		cmocka_unit_test(test_empty_snapshot_renders_no_kvm_families),
		cmocka_unit_test_setup_teardown(
		    test_family_with_a_conflicting_type_is_rendered_once, build_world, free_world),
		cmocka_unit_test(test_prometheus_accept_header_gets_openmetrics),
		cmocka_unit_test(test_other_accept_headers_get_text),
	};

	return cmocka_run_group_tests(tests, load_data, free_data);
}
