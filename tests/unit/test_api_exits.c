/* SPDX-License-Identifier: MIT */
/*
 * test_api_exits - /api/v1/exits against golden text: exit reasons from
 * the BPF slots (a memfd stands in for the frozen map, as in
 * test_render_bpf), summed per VM and ranked across VMs, round-trip
 * quantiles interpolated inside the histogram's buckets, run delay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api.h"
#include "bpf_layout.h"
#include "bpfview.h"
#include "snapshot.h"
#include "testutil.h"

#define N_SLOTS 4
#define VMX_IO 30  /* io_instruction */
#define VMX_EPT 48 /* ept_violation */

struct world {
	struct schema *schema;
	struct vm_meta *vms[2];
	struct source *src[3];
	struct snapshot *snap;
	struct kx_slot *slots; /* the test's writable view of the slots memfd */
	struct bpfview *view;
	struct api_env env;
	size_t slots_len;
	int slots_fd, meta_fd;
};

static int memfd_of(size_t len)
{
	int fd = memfd_create("kx", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
		abort();
	return fd;
}

static void uexit(struct kx_slot *s, unsigned reason, uint64_t count)
{
	s->c.uexit_mask |= 1ull << reason;
	s->c.uexit[reason] = count;
}

static void hw(struct kx_slot *s, uint32_t reason, uint64_t count)
{
	struct kx_hw *e = &s->c.hw[s->c.n_hw++];

	e->isa = KX_ISA_VMX;
	e->reason = reason;
	e->count = count;
}

static void hist(struct kx_slot *s, uint32_t kind, uint32_t reason, uint64_t sum_ns,
		 const uint64_t *buckets)
{
	struct kx_hist *h = &s->c.hist[s->c.n_hist++];

	h->kind = kind;
	h->reason = reason;
	h->sum_ns = sum_ns;
	memcpy(h->bucket, buckets, 6 * sizeof(uint64_t));
}

/*
 * a/0: io 5, hlt 3, io_instruction 4; round trips userspace io
 * {b0: 1, b3: 2} 1000 ns, hardware io_instruction {b1: 4} 400 ns.
 * a/1: io 7, mmio 1, io_instruction 6, ept_violation 2; userspace io
 * {b0: 2, b5: 1} 2000 ns. b/0: io 11.
 */
static void fill(struct kx_slot *slots)
{
	static const uint64_t io0[6] = { 1, 0, 0, 2 }, hw0[6] = { 0, 4 },
			      io1[6] = { 2, 0, 0, 0, 0, 1 };

	for (int i = 0; i < 3; i++) {
		slots[i].owner_tid = 100u + (unsigned)i;
		snprintf(slots[i].vm_id, KX_ID_LEN, "kvm-%d", i < 2 ? 10 : 20);
		snprintf(slots[i].vcpu_id, KX_ID_LEN, "kvm-%d/vcpu-%d", 100 + i, i == 1);
	}
	uexit(&slots[0], 2, 5);
	uexit(&slots[0], 5, 3);
	hw(&slots[0], VMX_IO, 4);
	hist(&slots[0], KX_KIND_USER, 2, 1000, io0);
	hist(&slots[0], KX_KIND_HW | KX_ISA_VMX << 8, VMX_IO, 400, hw0);
	uexit(&slots[1], 2, 7);
	uexit(&slots[1], 6, 1);
	hw(&slots[1], VMX_IO, 6);
	hw(&slots[1], VMX_EPT, 2);
	hist(&slots[1], KX_KIND_USER, 2, 2000, io1);
	uexit(&slots[2], 2, 11);
}

static struct source *vcpu_source(struct world *w, int i, struct vm_meta *vm, int vcpu,
				  uint64_t delay_ns)
{
	struct source *s = NULL;

	assert_int_equal(source_new(&s, vm, schema_ref(w->schema), -1, vcpu, 4), 0);
	snprintf(s->id, sizeof(s->id), "kvm-%d/vcpu-%d", 100 + i, vcpu);
	atomic_store(&s->sched_delay_ns, delay_ns);
	atomic_store(&s->sched_run_ns, 2 * delay_ns);
	atomic_store(&s->sched_ok, true);
	w->src[i] = s;
	return s;
}

static int build_world(void **state)
{
	static const struct tu_stat st[] = { { "exits", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 0, 0 } };
	struct world *w = calloc(1, sizeof(*w));
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len;
	uint8_t *blk;

	assert_non_null(w);
	w->slots_len = (N_SLOTS * sizeof(struct kx_slot) + page - 1) / page * page;
	w->slots_fd = memfd_of(w->slots_len);
	w->meta_fd = memfd_of(page);
	w->slots = mmap(NULL, w->slots_len, PROT_READ | PROT_WRITE, MAP_SHARED, w->slots_fd, 0);
	assert_true(w->slots != MAP_FAILED);
	assert_int_equal(bpfview_new(&w->view), 0);
	assert_int_equal(
	    bpfview_map(w->view, w->slots_fd, w->meta_fd, N_SLOTS, sizeof(struct kx_slot)), 0);
	w->env = (struct api_env){ 1700000000.5, 1000, 60, true, w->view };
	blk = tu_build_block("kvm-100/vcpu-0", 48, st, 1, &len);
	w->schema = tu_parse(blk, len, SCOPE_VCPU);
	free(blk);
	assert_int_equal(vm_meta_new(&w->vms[0], 1, 10, 1000, "a", "kvm-10", "vmm", "registered"),
			 0);
	assert_int_equal(vm_meta_new(&w->vms[1], 2, 20, 1000, "b", "kvm-20", "vmm", "registered"),
			 0);
	fill(w->slots);
	vcpu_source(w, 0, w->vms[0], 0, 1000000000);
	vcpu_source(w, 1, w->vms[0], 1, 500000000);
	vcpu_source(w, 2, w->vms[1], 0, 250000000);
	bpfview_join(w->view, w->src, 3, true);
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
	bpfview_free(w->view);
	munmap(w->slots, w->slots_len);
	close(w->slots_fd);
	close(w->meta_fd);
	free(w);
	return 0;
}

static void assert_answer(struct world *w, const char *const *kv, size_t n, const char *want)
{
	struct api_query q;
	struct buf b = { 0 };
	char why[160];

	api_query_init(&q, API_EXITS);
	for (size_t i = 0; i + 1 < n; i += 2)
		assert_int_equal(api_query_set(&q, kv[i], kv[i + 1], why, sizeof(why)), 0);
	assert_int_equal(api_render(w->snap, &q, &w->env, &b), 200);
	buf_putc(&b, '\0');
	assert_string_equal(b.data, want);
	buf_free(&b);
}

#define HEAD                                                                                       \
	"{\"status\":\"success\",\"version\":1,\"data\":{\"time\":1700000000.500,\"interval_s\":"  \
	"1.000,\"history_s\":60,\"bpf\":true,"
#define NO_RT "\"roundtrips\":0,\"mean_s\":null,\"p50_s\":null,\"p90_s\":null,\"p99_s\":null}"

static void test_reasons_are_summed_per_vm_and_ranked_across_vms(void **state)
{
	static const char *const q[] = { "group", "vm" };

	/*
	 * a's userspace io: 6 round trips in buckets 0 (3: up to 255 ns), 3
	 * (2: 1024..2047) and 5 (1: 4096..8191); the median is the third
	 * (255 ns), p90 is 0.4 into bucket 5: 4095 + 0.4 * 4096 ns.
	 */
	assert_answer(
	    *state, q, 2,
	    HEAD
	    "\"group\":\"vm\",\"rows\":["
	    "{\"kind\":\"userspace\",\"reason\":\"io\",\"vm\":\"a\",\"vcpus\":2,\"count\":12,"
	    "\"roundtrips\":6,\"mean_s\":5e-07,\"p50_s\":2.55e-07,\"p90_s\":5.7334e-06,"
	    "\"p99_s\":7.94524e-06},"
	    "{\"kind\":\"userspace\",\"reason\":\"io\",\"vm\":\"b\",\"vcpus\":1,\"count\":11," NO_RT
	    ",{\"kind\":\"hardware\",\"reason\":\"io_instruction\",\"vm\":\"a\",\"vcpus\":2,"
	    "\"count\":10,\"roundtrips\":4,\"mean_s\":1e-07,\"p50_s\":3.83e-07,"
	    "\"p90_s\":4.854e-07,\"p99_s\":5.0844e-07},"
	    "{\"kind\":\"userspace\",\"reason\":\"hlt\",\"vm\":\"a\",\"vcpus\":1,\"count\":3," NO_RT
	    ",{\"kind\":\"hardware\",\"reason\":\"ept_violation\",\"vm\":\"a\",\"vcpus\":1,"
	    "\"count\":2," NO_RT ",{\"kind\":\"userspace\",\"reason\":\"mmio\",\"vm\":\"a\","
	    "\"vcpus\":1,\"count\":1," NO_RT "],\"total\":6,\"truncated\":false,"
	    "\"sched\":[{\"vm\":\"a\",\"vcpus\":2,\"run_delay_s\":1.500000000,\"cpu_s\":3."
	    "000000000},"
	    "{\"vm\":\"b\",\"vcpus\":1,\"run_delay_s\":0.250000000,\"cpu_s\":0.500000000}],"
	    "\"sched_total\":2,\"sched_truncated\":false}}\n");
}

/* a/1's io: buckets 0 (2) and 5 (1): p50 is 0.75 into bucket 0 (191.25 ns) */
static void test_one_vcpu_a_reason_regex_and_a_limit(void **state)
{
	static const char *const q[] = {
		"vm", "a", "vcpu", "1", "match", "io.*|mmio", "limit", "1"
	};

	assert_answer(*state, q, 8,
		      HEAD
		      "\"group\":\"vcpu\",\"rows\":["
		      "{\"kind\":\"userspace\",\"reason\":\"io\",\"vm\":\"a\",\"vcpu\":1,"
		      "\"count\":7,\"roundtrips\":3,\"mean_s\":6.66666666666667e-07,"
		      "\"p50_s\":1.9125e-07,\"p90_s\":6.9622e-06,\"p99_s\":8.06812e-06}],"
		      "\"total\":3,\"truncated\":true,"
		      "\"sched\":[{\"vm\":\"a\",\"vcpu\":1,\"run_delay_s\":0.500000000,"
		      "\"cpu_s\":1.000000000}],\"sched_total\":1,\"sched_truncated\":false}}\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reasons_are_summed_per_vm_and_ranked_across_vms),
		cmocka_unit_test(test_one_vcpu_a_reason_regex_and_a_limit),
	};

	return cmocka_run_group_tests(tests, build_world, free_world);
}
