/* SPDX-License-Identifier: MIT */
/*
 * test_api - the JSON API against golden text: rates over a window of the
 * history, grouping, ranking, limits and the truncated flag, sparklines,
 * escaping; the query parser's bounds; rate and quantile arithmetic.
 *
 * Sources use a small synthetic schema (testutil's block builder) so the
 * answers are short enough to state whole: a counter "exits", a gauge
 * "blocking", a nanosecond counter "wait_ns" and a histogram that the
 * history does not keep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "api.h"
#include "json.h"
#include "poller.h"
#include "snapshot.h"
#include "testutil.h"

#define CUM (KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)
#define INST (KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)
#define CUM_NS (KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10)
#define HIST (KVM_STATS_TYPE_LINEAR_HIST | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)

/* word order in the data block: exits, blocking, wait_ns, hist[4] */
static const struct tu_stat vcpu_stats[] = {
	{ "exits", CUM, 0, 1, 0, 0 },
	{ "blocking", INST, 0, 1, 8, 0 },
	{ "wait_ns", CUM_NS, -9, 1, 16, 0 },
	{ "sizes_hist", HIST, 0, 4, 24, 10 },
};
#define WORDS 7

struct world {
	struct schema *schema;
	struct vm_meta *vms[2];
	struct source *src[3];
	struct snapshot *snap;
};

static const struct api_env env = { 1700000000.5, 1000, 60, false, NULL };

static struct source *vcpu(struct world *w, struct vm_meta *vm, int index)
{
	struct source *s = NULL;

	assert_int_equal(source_new(&s, vm, schema_ref(w->schema), -1, index, 4), 0);
	assert_int_equal(source_set_history(s, 8), 0);
	return s;
}

/* One poll of s at t seconds: the ring and its history, as the poller does. */
static void sample(struct source *s, uint64_t t, uint64_t exits, uint64_t blocking,
		   uint64_t wait_ns)
{
	uint64_t *v = ring_begin_write(s->ring);

	memset(v, 0, WORDS * sizeof(*v));
	v[0] = exits;
	v[1] = blocking;
	v[2] = wait_ns;
	v[3] = 99; /* a histogram bucket: never in the history */
	ring_commit(s->ring, t * 1000000000ull);
	poller_keep_history(s->hist, s->schema->scalar_index, s->schema->n_scalar, v,
			    t * 1000000000ull);
}

/*
 * VM "web-1" vCPU 0: exits 100, 110, 130, 160 at t = 1..4; vCPU 1: exits
 * 0, 0, 0, 1000. VM "db" vCPU 0: exits 5 at t = 4 only.
 */
static int build_world(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	uint8_t *blk;
	size_t len;

	assert_non_null(w);
	blk = tu_build_block("kvm-1/vcpu-0", 32, vcpu_stats, 4, &len);
	w->schema = tu_parse(blk, len, SCOPE_VCPU);
	free(blk);
	assert_int_equal(w->schema->n_scalar, 3);
	assert_int_equal(
	    vm_meta_new(&w->vms[0], 1, 4242, 1000, "web-1", "kvm-4242", "qemu", "registered"), 0);
	assert_int_equal(
	    vm_meta_new(&w->vms[1], 2, 5151, 1000, "db", "kvm-5151", "vmm", "discovered"), 0);
	vm_meta_set_created(w->vms[0], 1699999000ull * 1000000000ull);
	vm_meta_set_created(w->vms[1], 1699999500ull * 1000000000ull);
	w->src[0] = vcpu(w, w->vms[0], 0);
	w->src[1] = vcpu(w, w->vms[0], 1);
	w->src[2] = vcpu(w, w->vms[1], 0);
	/* the ids the worker copies from the stats fds; db's vCPU has none */
	snprintf(w->src[0]->id, sizeof(w->src[0]->id), "kvm-4243/vcpu-0");
	snprintf(w->src[1]->id, sizeof(w->src[1]->id), "kvm-4244/vcpu-1");
	for (uint64_t t = 1; t <= 4; t++) {
		static const uint64_t e0[] = { 100, 110, 130, 160 };

		sample(w->src[0], t, e0[t - 1], t & 1, t * 500000000ull);
		sample(w->src[1], t, t == 4 ? 1000 : 0, 0, 0);
	}
	sample(w->src[2], 4, 5, 1, 0);
	assert_int_equal(snapshot_build(&w->snap, w->vms, 2, w->src, 3, NULL), 0);
	*state = w;
	return 0;
}

static int free_world(void **state)
{
	struct world *w = *state;

	snapshot_unref(w->snap);
	for (int i = 0; i < 3; i++)
		source_unref(w->src[i]);
	vm_meta_unref(w->vms[0]);
	vm_meta_unref(w->vms[1]);
	schema_unref(w->schema);
	free(w);
	return 0;
}

/* Answer a query string "k=v&k=v" (no escapes) and compare with want. */
static void assert_answer(struct world *w, enum api_endpoint ep, const char *params,
			  unsigned want_status, const char *want)
{
	char copy[512], why[160], *save = NULL;
	struct api_query q;
	struct buf b = { 0 };

	api_query_init(&q, ep);
	snprintf(copy, sizeof(copy), "%s", params);
	for (char *kv = strtok_r(copy, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');

		if (eq)
			*eq++ = '\0';
		if (api_query_set(&q, kv, eq, why, sizeof(why)) < 0)
			fail_msg("%s: %s", kv, why);
	}
	assert_int_equal(api_render(w->snap, &q, &env, &b), want_status);
	buf_putc(&b, '\0');
	assert_false(b.failed);
	assert_string_equal(b.data, want);
	buf_free(&b);
}

#define HEAD                                                                                       \
	"{\"status\":\"success\",\"version\":1,\"data\":{\"time\":1700000000.500,\"interval_s\":"  \
	"1.000,\"history_s\":60,"

static void test_vms_lists_every_vm_with_its_vcpus(void **state)
{
	assert_answer(*state, API_VMS, "", 200,
		      HEAD "\"vms\":["
			   "{\"vm\":\"web-1\",\"kernel_id\":\"kvm-4242\",\"vmm_pid\":4242,"
			   "\"vmm_comm\":\"qemu\",\"source\":\"registered\",\"vcpus\":2,"
			   "\"created\":1699999000.000,\"vcpu_threads\":"
			   "[{\"vcpu\":0,\"tid\":4243},{\"vcpu\":1,\"tid\":4244}]},"
			   "{\"vm\":\"db\",\"kernel_id\":\"kvm-5151\",\"vmm_pid\":5151,"
			   "\"vmm_comm\":\"vmm\",\"source\":\"discovered\",\"vcpus\":1,"
			   "\"created\":1699999500.000,\"vcpu_threads\":[]}],"
			   "\"total\":2,\"truncated\":false}}\n");
}

static void test_vms_limit_cuts_and_says_truncated(void **state)
{
	assert_answer(*state, API_VMS, "limit=1&vm=d.*", 200,
		      HEAD "\"vms\":["
			   "{\"vm\":\"db\",\"kernel_id\":\"kvm-5151\",\"vmm_pid\":5151,"
			   "\"vmm_comm\":\"vmm\",\"source\":\"discovered\",\"vcpus\":1,"
			   "\"created\":1699999500.000,\"vcpu_threads\":[]}],"
			   "\"total\":1,\"truncated\":false}}\n");
	assert_answer(*state, API_VMS, "limit=1", 200,
		      HEAD "\"vms\":["
			   "{\"vm\":\"web-1\",\"kernel_id\":\"kvm-4242\",\"vmm_pid\":4242,"
			   "\"vmm_comm\":\"qemu\",\"source\":\"registered\",\"vcpus\":2,"
			   "\"created\":1699999000.000,\"vcpu_threads\":"
			   "[{\"vcpu\":0,\"tid\":4243},{\"vcpu\":1,\"tid\":4244}]}],"
			   "\"total\":2,\"truncated\":true}}\n");
}

static void test_stats_rate_over_the_last_interval_per_vcpu(void **state)
{
	assert_answer(*state, API_STATS, "match=exits&limit=2", 200,
		      HEAD "\"window_s\":0,\"group\":\"vcpu\",\"rows\":["
			   "{\"scope\":\"vcpu\",\"vm\":\"web-1\",\"vcpu\":1,\"stat\":\"exits\","
			   "\"metric\":\"kvm_vcpu_exits_total\",\"kind\":\"counter\",\"unit\":null,"
			   "\"value\":1000,\"rate\":1000},"
			   "{\"scope\":\"vcpu\",\"vm\":\"web-1\",\"vcpu\":0,\"stat\":\"exits\","
			   "\"metric\":\"kvm_vcpu_exits_total\",\"kind\":\"counter\",\"unit\":null,"
			   "\"value\":160,\"rate\":30}],"
			   "\"total\":3,\"truncated\":true}}\n");
}

static void test_stats_rate_over_a_window_and_summed_per_vm(void **state)
{
	/* web-1 over 3 s: vCPU 0 (160-100)/3 = 20, vCPU 1 1000/3; db has one sample */
	assert_answer(
	    *state, API_STATS, "match=exits&window=3&group=vm", 200,
	    HEAD
	    "\"window_s\":3,\"group\":\"vm\",\"rows\":["
	    "{\"scope\":\"vcpu\",\"vm\":\"web-1\",\"sources\":2,\"vcpus\":2,\"stat\":\"exits\","
	    "\"metric\":\"kvm_vcpu_exits_total\",\"kind\":\"counter\",\"unit\":null,"
	    "\"value\":1160,\"rate\":353.333333333333},"
	    "{\"scope\":\"vcpu\",\"vm\":\"db\",\"sources\":1,\"vcpus\":1,\"stat\":\"exits\","
	    "\"metric\":\"kvm_vcpu_exits_total\",\"kind\":\"counter\",\"unit\":null,"
	    "\"value\":5,\"rate\":null}],"
	    "\"total\":2,\"truncated\":false}}\n");
}

static void test_stats_a_window_longer_than_the_history_uses_the_oldest_sample(void **state)
{
	assert_answer(*state, API_STATS, "match=exits&window=3600&group=host", 200,
		      HEAD "\"window_s\":3600,\"group\":\"host\",\"rows\":["
			   "{\"scope\":\"vcpu\",\"sources\":3,\"vcpus\":3,\"stat\":\"exits\","
			   "\"metric\":\"kvm_vcpu_exits_total\",\"kind\":\"counter\",\"unit\":null,"
			   "\"value\":1165,\"rate\":353.333333333333}],"
			   "\"total\":1,\"truncated\":false}}\n");
}

static void test_stats_scaled_units_gauges_and_sparklines(void **state)
{
	assert_answer(
	    *state, API_STATS, "vm=web-1&vcpu=0&match=blocking|wait_ns&spark=3&sort=name", 200,
	    HEAD "\"window_s\":0,\"group\":\"vcpu\",\"rows\":["
		 "{\"scope\":\"vcpu\",\"vm\":\"web-1\",\"vcpu\":0,\"stat\":\"blocking\","
		 "\"metric\":\"kvm_vcpu_blocking\",\"kind\":\"gauge\",\"unit\":null,"
		 "\"value\":0,\"rate\":null,\"spark\":[0,1,0]},"
		 "{\"scope\":\"vcpu\",\"vm\":\"web-1\",\"vcpu\":0,\"stat\":\"wait_ns\","
		 "\"metric\":\"kvm_vcpu_wait_seconds_total\",\"kind\":\"counter\","
		 "\"unit\":\"seconds\",\"value\":2,\"rate\":0.5,\"spark\":[0.5,0.5,0.5]}],"
		 "\"total\":2,\"truncated\":false}}\n");
}

static void test_stats_sparkline_of_a_young_source_starts_with_nulls(void **state)
{
	assert_answer(*state, API_STATS, "vm=db&match=exits&spark=2", 200,
		      HEAD "\"window_s\":0,\"group\":\"vcpu\",\"rows\":["
			   "{\"scope\":\"vcpu\",\"vm\":\"db\",\"vcpu\":0,\"stat\":\"exits\","
			   "\"metric\":\"kvm_vcpu_exits_total\",\"kind\":\"counter\",\"unit\":null,"
			   "\"value\":5,\"rate\":null,\"spark\":[null,null]}],"
			   "\"total\":1,\"truncated\":false}}\n");
}

static void test_stats_nonzero_leaves_out_zero_rows(void **state)
{
	assert_answer(*state, API_STATS, "vm=web-1&vcpu=1&nonzero=1", 200,
		      HEAD "\"window_s\":0,\"group\":\"vcpu\",\"rows\":["
			   "{\"scope\":\"vcpu\",\"vm\":\"web-1\",\"vcpu\":1,\"stat\":\"exits\","
			   "\"metric\":\"kvm_vcpu_exits_total\",\"kind\":\"counter\",\"unit\":null,"
			   "\"value\":1000,\"rate\":1000}],"
			   "\"total\":1,\"truncated\":false}}\n");
}

static void test_exits_without_telemetry_are_empty_and_say_so(void **state)
{
	assert_answer(*state, API_EXITS, "group=vm", 200,
		      HEAD "\"bpf\":false,\"group\":\"vm\",\"rows\":[],\"total\":0,"
			   "\"truncated\":false,\"sched\":[],\"sched_total\":0,"
			   "\"sched_truncated\":false}}\n");
}

static void test_run_delay_is_summed_per_vm(void **state)
{
	struct world *w = *state;

	atomic_store(&w->src[0]->sched_delay_ns, 1500000000);
	atomic_store(&w->src[0]->sched_run_ns, 2000000000);
	atomic_store(&w->src[1]->sched_delay_ns, 500000000);
	atomic_store(&w->src[0]->sched_ok, true);
	atomic_store(&w->src[1]->sched_ok, true);
	assert_answer(w, API_EXITS, "group=vm", 200,
		      HEAD "\"bpf\":false,\"group\":\"vm\",\"rows\":[],\"total\":0,"
			   "\"truncated\":false,\"sched\":[{\"vm\":\"web-1\",\"vcpus\":2,"
			   "\"run_delay_s\":2.000000000,\"cpu_s\":2.000000000}],\"sched_total\":1,"
			   "\"sched_truncated\":false}}\n");
	atomic_store(&w->src[0]->sched_ok, false);
	atomic_store(&w->src[1]->sched_ok, false);
}

static void test_a_bad_regex_is_a_400_with_a_reason(void **state)
{
	struct api_query q;
	struct buf b = { 0 };
	char why[160];

	api_query_init(&q, API_STATS);
	assert_int_equal(api_query_set(&q, "vm", "(", why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "vm: expected an extended regular expression on VM names (at "
				 "most 256 bytes, 8 of *+?, no {} or back-references)");
	assert_string_equal(q.vm, "");
	/* a pattern that passes the parser's check but not regcomp still answers */
	snprintf(q.match, sizeof(q.match), "a[");
	assert_int_equal(api_render(((struct world *)*state)->snap, &q, &env, &b), 400);
	buf_putc(&b, '\0');
	assert_non_null(strstr(b.data, "\"status\":\"error\",\"errorType\":\"bad_data\""));
	buf_free(&b);
}

static void test_query_values_are_bounded_and_unknown_keys_refused(void **state)
{
	static const char *const bad[][2] = {
		{ "limit", "0" },   { "limit", "1001" },	{ "limit", "-1" },
		{ "limit", "1e3" }, { "window", "3601" },	{ "window", "" },
		{ "spark", "121" }, { "vcpu", "65536" },	{ "vcpu", " 1" },
		{ "group", "vms" }, { "sort", "RATE" },		{ "nonzero", "2" },
		{ "limit", NULL },  { "limit", "99999999999" },
	};
	struct api_query q, before;
	char why[160], longpat[API_PATTERN_MAX + 2];

	(void)state;
	api_query_init(&q, API_STATS);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		before = q;
		assert_int_equal(api_query_set(&q, bad[i][0], bad[i][1], why, sizeof(why)),
				 -EINVAL);
		assert_memory_equal(&q, &before, sizeof(q));
		assert_non_null(strstr(why, bad[i][0]));
	}
	assert_int_equal(api_query_set(&q, "format", "json", why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "unknown parameter \"format\"");
	memset(longpat, 'a', sizeof(longpat) - 1);
	longpat[sizeof(longpat) - 1] = '\0';
	assert_int_equal(api_query_set(&q, "match", longpat, why, sizeof(why)), -EINVAL);
	/* what would make regcomp or regexec expensive */
	assert_int_equal(api_query_set(&q, "vm", "a++", why, sizeof(why)), -EINVAL);
	assert_int_equal(api_query_set(&q, "vm", "a*?", why, sizeof(why)), -EINVAL);
	assert_int_equal(api_query_set(&q, "vm", "(a)\\1", why, sizeof(why)), -EINVAL);
	assert_int_equal(api_query_set(&q, "vm", "a{1,255}", why, sizeof(why)), -EINVAL);
	assert_int_equal(api_query_set(&q, "vm", "a*b*c*d*e*f*g*h*i*", why, sizeof(why)), -EINVAL);
	assert_int_equal(api_query_set(&q, "vm", "a*b*c*d*e*f*g*h*", why, sizeof(why)), 0);
	assert_int_equal(api_query_set(&q, "vm", "web-(1|2)\\+.*", why, sizeof(why)), 0);
	assert_int_equal(api_query_set(&q, "limit", "1000", why, sizeof(why)), 0);
	assert_int_equal(q.limit, 1000);
	assert_int_equal(api_query_set(&q, "group", "host", why, sizeof(why)), 0);
	assert_int_equal(q.group, API_GROUP_HOST);
}

static void test_endpoints_are_exact_paths(void **state)
{
	enum api_endpoint ep;

	(void)state;
	assert_int_equal(api_endpoint_of("/api/v1/stats", &ep), 0);
	assert_int_equal(ep, API_STATS);
	assert_int_equal(api_endpoint_of("/api/v1/stats/", &ep), -ENOENT);
	assert_int_equal(api_endpoint_of("/api/v2/stats", &ep), -ENOENT);
	assert_int_equal(api_endpoint_of("/api/v1/", &ep), -ENOENT);
}

static void test_rate_is_unknown_across_a_reset_or_without_time(void **state)
{
	(void)state;
	assert_true(api_rate(150, 3000000000, 100, 1000000000, 1) == 25);
	assert_true(api_rate(2000000000, 2000000000, 1000000000, 1000000000, 1e-9) == 1);
	assert_true(isnan(api_rate(5, 3000000000, 100, 1000000000, 1)));
	assert_true(isnan(api_rate(150, 1000000000, 100, 1000000000, 1)));
}

static void test_quantile_interpolates_inside_a_bucket_and_stops_at_the_open_one(void **state)
{
	const double bound[] = { 10, 20, 40, INFINITY };
	const uint64_t even[] = { 0, 10, 0, 0 }, tail[] = { 1, 0, 0, 9 }, none[4] = { 0 };

	(void)state;
	assert_true(api_quantile(even, bound, 4, 0.5) == 15);
	assert_true(api_quantile(even, bound, 4, 1.0) == 20);
	assert_true(api_quantile(tail, bound, 4, 0.05) == 5);
	assert_true(api_quantile(tail, bound, 4, 0.99) == 40); /* open bucket: its lower bound */
	assert_true(isnan(api_quantile(none, bound, 4, 0.5)));
}

static void test_json_strings_stay_valid_whatever_the_bytes(void **state)
{
	struct buf b = { 0 };

	(void)state;
	json_str(&b, "a\"b\\c\n\x01\x7f-\xc3\xbc");
	json_str(&b, "bad \xff utf8");
	json_num(&b, NAN);
	buf_putc(&b, ' ');
	json_num(&b, -0.0);
	buf_putc(&b, '\0');
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\u000a\\u0001\\u007f-\\u00c3\\u00bc\""
				    "\"bad \\u00ff utf8\"null 0");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vms_lists_every_vm_with_its_vcpus),
		cmocka_unit_test(test_vms_limit_cuts_and_says_truncated),
		cmocka_unit_test(test_stats_rate_over_the_last_interval_per_vcpu),
		cmocka_unit_test(test_stats_rate_over_a_window_and_summed_per_vm),
		cmocka_unit_test(
		    test_stats_a_window_longer_than_the_history_uses_the_oldest_sample),
		cmocka_unit_test(test_stats_scaled_units_gauges_and_sparklines),
		cmocka_unit_test(test_stats_sparkline_of_a_young_source_starts_with_nulls),
		cmocka_unit_test(test_stats_nonzero_leaves_out_zero_rows),
		cmocka_unit_test(test_exits_without_telemetry_are_empty_and_say_so),
		cmocka_unit_test(test_run_delay_is_summed_per_vm),
		cmocka_unit_test(test_a_bad_regex_is_a_400_with_a_reason),
	};
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_query_values_are_bounded_and_unknown_keys_refused),
		cmocka_unit_test(test_endpoints_are_exact_paths),
		cmocka_unit_test(test_rate_is_unknown_across_a_reset_or_without_time),
		cmocka_unit_test(
		    test_quantile_interpolates_inside_a_bucket_and_stops_at_the_open_one),
		cmocka_unit_test(test_json_strings_stay_valid_whatever_the_bytes),
	};

	return cmocka_run_group_tests(tests, build_world, free_world) |
	       cmocka_run_group_tests(pure, NULL, NULL);
}
