/* SPDX-License-Identifier: MIT */
/*
 * test_schema - the schema reader against real kernel layouts and against
 * hostile blocks derived from them.
 *
 * The real blocks are tests/data/{vm,vcpu}-stats-layout.bin, captured from
 * the kernel by tools/capture-stats-layout. Every hostile block is a copy of
 * exactly its length, so ASan sees any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

static uint8_t *vm_blk, *vcpu_blk;
static size_t vm_len, vcpu_len;

static int load_layouts(void **state)
{
	(void)state;
	vm_blk = tu_read_file(TU_VM_LAYOUT, &vm_len);
	vcpu_blk = tu_read_file(TU_VCPU_LAYOUT, &vcpu_len);
	return 0;
}

static int free_layouts(void **state)
{
	(void)state;
	free(vm_blk);
	free(vcpu_blk);
	return 0;
}

/* Parse a private copy of exactly len bytes. */
static int parse_copy(const uint8_t *buf, size_t len, enum stat_scope scope, struct schema **out,
		      struct schema_error *err)
{
	uint8_t *c = tu_dup(buf, len);
	int rc;

	memset(err, 0, sizeof(*err));
	rc = schema_parse(c, len, scope, out, err);
	free(c);
	return rc;
}

static struct schema *parse_ok(const uint8_t *buf, size_t len, enum stat_scope scope)
{
	struct schema_error err;
	struct schema *s = NULL;
	int rc = parse_copy(buf, len, scope, &s, &err);

	if (rc != 0)
		fail_msg("schema_parse failed: %d %s", rc, err.why);
	assert_non_null(s);
	return s;
}

static void assert_refused(const uint8_t *buf, size_t len, enum stat_scope scope)
{
	struct schema_error err;
	struct schema *s = NULL;

	assert_int_equal(parse_copy(buf, len, scope, &s, &err), -EINVAL);
	assert_null(s);
	assert_true(err.why[0] != '\0');
}

/* Mutable copies of the real blocks. */
static uint8_t *vm_copy(void)
{
	return tu_dup(vm_blk, vm_len);
}

static uint8_t *vcpu_copy(void)
{
	return tu_dup(vcpu_blk, vcpu_len);
}

static uint32_t desc_index(uint8_t *buf, const char *name)
{
	int i = tu_find_desc(buf, name);

	if (i < 0)
		fail_msg("descriptor %s not in the captured layout", name);
	return (uint32_t)i;
}

/* ---- the real layouts ---------------------------------------------------- */

static void test_real_vm_block_exports_every_stat(void **state)
{
	struct schema *s = parse_ok(vm_blk, vm_len, SCOPE_VM);
	struct kvm_stats_header h = tu_header(vm_blk);

	(void)state;
	assert_int_equal(h.num_desc, TU_VM_NUM_DESC);
	assert_int_equal(h.name_size, TU_NAME_SIZE);
	assert_int_equal(s->scope, SCOPE_VM);
	assert_int_equal(s->n_stats, TU_VM_NUM_DESC);
	assert_int_equal(s->data_words, TU_VM_DATA_WORDS);
	assert_int_equal(s->data_offset, h.data_offset);
	assert_int_equal(s->skips.unknown, 0);
	assert_int_equal(s->skips.invalid, 0);
	assert_int_equal(s->skips.collision, 0);
	assert_int_equal(atomic_load(&s->refs), 1);
	schema_unref(s);
}

static void test_real_vcpu_block_folds_three_sum_twins_into_histograms(void **state)
{
	struct schema *s = parse_ok(vcpu_blk, vcpu_len, SCOPE_VCPU);

	(void)state;
	/* 45 descriptors, the three *_ns twins of the *_hist become _sum */
	assert_int_equal(s->n_stats, TU_VCPU_NUM_DESC - 3);
	assert_int_equal(s->data_words, TU_VCPU_DATA_WORDS);
	assert_int_equal(s->skips.unknown + s->skips.invalid + s->skips.collision, 0);
	schema_unref(s);
}

static void test_real_vm_remote_tlb_flush_is_a_counter(void **state)
{
	struct schema *s = parse_ok(vm_blk, vm_len, SCOPE_VM);
	const struct schema_stat *st = tu_stat_by_desc(s, "remote_tlb_flush");

	(void)state;
	assert_non_null(st);
	assert_string_equal(st->family, "kvm_vm_remote_tlb_flush");
	assert_int_equal(st->type, MT_COUNTER);
	assert_int_equal(st->index, 0);
	assert_int_equal(st->size, 1);
	assert_int_equal(st->sum_index, -1);
	assert_null(st->le);
	assert_non_null(strstr(st->head_text, "# TYPE kvm_vm_remote_tlb_flush_total counter\n"));
	assert_non_null(strstr(st->head_text, "# HELP kvm_vm_remote_tlb_flush_total "));
	assert_non_null(strstr(st->head_om, "# TYPE kvm_vm_remote_tlb_flush counter\n"));
	assert_null(strstr(st->head_om, "# UNIT"));
	schema_unref(s);
}

static void test_real_vm_instant_and_peak_stats_are_gauges(void **state)
{
	struct schema *s = parse_ok(vm_blk, vm_len, SCOPE_VM);
	const struct schema_stat *unsync = tu_stat_by_desc(s, "mmu_unsync");
	const struct schema_stat *rmap = tu_stat_by_desc(s, "max_mmu_rmap_size");
	const struct schema_stat *hash = tu_stat_by_desc(s, "max_mmu_page_hash_collisions");

	(void)state;
	assert_non_null(unsync);
	assert_non_null(rmap);
	assert_non_null(hash);
	assert_string_equal(unsync->family, "kvm_vm_mmu_unsync");
	assert_int_equal(unsync->type, MT_GAUGE);
	assert_int_equal(unsync->flags.type, KVM_STATS_TYPE_INSTANT);
	assert_string_equal(rmap->family, "kvm_vm_max_mmu_rmap_size");
	assert_int_equal(rmap->type, MT_GAUGE);
	assert_int_equal(rmap->flags.type, KVM_STATS_TYPE_PEAK);
	/* descriptors are not sorted by offset: these two are swapped */
	assert_int_equal(rmap->index, 14);
	assert_int_equal(hash->index, 13);
	assert_non_null(strstr(unsync->head_text, "# TYPE kvm_vm_mmu_unsync gauge\n"));
	schema_unref(s);
}

static void test_real_vcpu_exits_is_a_counter(void **state)
{
	struct schema *s = parse_ok(vcpu_blk, vcpu_len, SCOPE_VCPU);
	const struct schema_stat *st = tu_stat_by_family(s, "kvm_vcpu_exits");

	(void)state;
	assert_non_null(st);
	assert_string_equal(st->desc_name, "exits");
	assert_int_equal(st->type, MT_COUNTER);
	assert_int_equal(st->index, 904 / 8);
	assert_non_null(strstr(st->head_text, "# TYPE kvm_vcpu_exits_total counter\n"));
	assert_non_null(strstr(st->head_text, "Exits from guest mode to KVM."));
	schema_unref(s);
}

static void test_real_halt_wait_is_a_seconds_histogram_with_its_ns_twin_as_sum(void **state)
{
	uint8_t *b = vcpu_copy();
	struct schema *s = parse_ok(vcpu_blk, vcpu_len, SCOPE_VCPU);
	const struct schema_stat *st = tu_stat_by_family(s, "kvm_vcpu_halt_wait_seconds");
	struct kvm_stats_desc ns = tu_desc(b, desc_index(b, "halt_wait_ns"));
	struct kvm_stats_desc hist = tu_desc(b, desc_index(b, "halt_wait_hist"));
	size_t same_family = 0;

	(void)state;
	assert_non_null(st);
	assert_string_equal(st->desc_name, "halt_wait_hist");
	assert_int_equal(st->type, MT_HISTOGRAM);
	assert_int_equal(st->size, 32);
	assert_int_equal(st->index, hist.offset / 8);
	assert_int_equal(st->scale.base2, 0);
	assert_int_equal(st->scale.exponent, -9);
	assert_int_equal(st->sum_index, (int32_t)(ns.offset / 8));
	assert_int_equal(st->sum_scale.base2, 0);
	assert_int_equal(st->sum_scale.exponent, -9);
	/* the twin is not exported as a counter of its own */
	assert_null(tu_stat_by_desc(s, "halt_wait_ns"));
	for (size_t i = 0; i < s->n_stats; i++)
		same_family += !strcmp(s->stats[i].family, "kvm_vcpu_halt_wait_seconds");
	assert_int_equal(same_family, 1);
	assert_non_null(strstr(st->head_text, "# TYPE kvm_vcpu_halt_wait_seconds histogram\n"));
	assert_non_null(strstr(st->head_om, "# TYPE kvm_vcpu_halt_wait_seconds histogram\n"));
	assert_non_null(strstr(st->head_om, "# UNIT kvm_vcpu_halt_wait_seconds seconds\n"));
	schema_unref(s);
	free(b);
}

static void test_real_halt_poll_histograms_take_their_ns_twins_as_sums(void **state)
{
	uint8_t *b = vcpu_copy();
	struct schema *s = parse_ok(vcpu_blk, vcpu_len, SCOPE_VCPU);
	const struct schema_stat *ok = tu_stat_by_family(s, "kvm_vcpu_halt_poll_success_seconds");
	const struct schema_stat *bad = tu_stat_by_family(s, "kvm_vcpu_halt_poll_fail_seconds");

	(void)state;
	assert_non_null(ok);
	assert_non_null(bad);
	assert_int_equal(ok->type, MT_HISTOGRAM);
	assert_int_equal(bad->type, MT_HISTOGRAM);
	assert_int_equal(ok->sum_index,
			 tu_desc(b, desc_index(b, "halt_poll_success_ns")).offset / 8);
	assert_int_equal(bad->sum_index, tu_desc(b, desc_index(b, "halt_poll_fail_ns")).offset / 8);
	assert_null(tu_stat_by_desc(s, "halt_poll_success_ns"));
	assert_null(tu_stat_by_desc(s, "halt_poll_fail_ns"));
	schema_unref(s);
	free(b);
}

static void test_real_boolean_stats_are_unitless_gauges(void **state)
{
	static const char *const names[] = { "blocking", "guest_mode" };
	struct schema *s = parse_ok(vcpu_blk, vcpu_len, SCOPE_VCPU);

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		const struct schema_stat *st = tu_stat_by_desc(s, names[i]);
		char fam[64];

		assert_non_null(st);
		snprintf(fam, sizeof(fam), "kvm_vcpu_%s", names[i]);
		assert_string_equal(st->family, fam);
		assert_int_equal(st->type, MT_GAUGE);
		assert_int_equal(st->flags.unit, KVM_STATS_UNIT_BOOLEAN >> KVM_STATS_UNIT_SHIFT);
		assert_null(strstr(st->head_om, "# UNIT"));
		assert_non_null(strstr(st->head_text, " gauge\n"));
	}
	schema_unref(s);
}

static void test_real_log_histogram_le_bounds_are_exact_decimals(void **state)
{
	struct schema *s = parse_ok(vcpu_blk, vcpu_len, SCOPE_VCPU);
	const struct schema_stat *st = tu_stat_by_family(s, "kvm_vcpu_halt_wait_seconds");

	(void)state;
	assert_non_null(st);
	assert_non_null(st->le);
	/* bucket i of a log histogram holds values with fls64(v) == i */
	assert_string_equal(st->le[0], "0");
	assert_string_equal(st->le[1], "0.000000001");
	assert_string_equal(st->le[2], "0.000000003");
	assert_string_equal(st->le[3], "0.000000007");
	assert_string_equal(st->le[10], "0.000001023");
	assert_string_equal(st->le[20], "0.001048575");
	assert_string_equal(st->le[29], "0.536870911");
	assert_string_equal(st->le[30], "1.073741823"); /* the last finite bound; +Inf follows */
	schema_unref(s);
}

/* Every exported range and every _sum inside data_words, none overlapping. */
static void check_data_words(const struct schema *s)
{
	uint8_t *used = calloc(s->data_words ? s->data_words : 1, 1);
	uint32_t max_end = 0;

	assert_non_null(used);
	for (size_t i = 0; i < s->n_stats; i++) {
		const struct schema_stat *st = &s->stats[i];

		assert_true((uint64_t)st->index + st->size <= s->data_words);
		if (st->index + st->size > max_end)
			max_end = st->index + st->size;
		for (uint32_t w = st->index; w < st->index + st->size; w++) {
			assert_int_equal(used[w], 0);
			used[w] = 1;
		}
		if (st->sum_index >= 0) {
			assert_true((uint32_t)st->sum_index < s->data_words);
			assert_int_equal(used[st->sum_index], 0);
			used[st->sum_index] = 1;
			if ((uint32_t)st->sum_index + 1 > max_end)
				max_end = (uint32_t)st->sum_index + 1;
		}
	}
	assert_int_equal(max_end, s->data_words);
	free(used);
}

static void test_real_data_words_match_the_descriptors(void **state)
{
	struct schema *vm = parse_ok(vm_blk, vm_len, SCOPE_VM);
	struct schema *vcpu = parse_ok(vcpu_blk, vcpu_len, SCOPE_VCPU);

	(void)state;
	check_data_words(vm);
	check_data_words(vcpu);
	schema_unref(vm);
	schema_unref(vcpu);
}

static void check_family_names(const struct schema *s, const char *prefix)
{
	for (size_t i = 0; i < s->n_stats; i++) {
		const char *f = s->stats[i].family;

		assert_int_equal(strncmp(f, prefix, strlen(prefix)), 0);
		assert_int_equal(strspn(f, "abcdefghijklmnopqrstuvwxyz0123456789_"), strlen(f));
		assert_non_null(s->stats[i].head_text);
		assert_non_null(s->stats[i].head_om);
		for (size_t j = i + 1; j < s->n_stats; j++)
			assert_string_not_equal(f, s->stats[j].family);
	}
}

static void test_real_family_names_are_prefixed_sanitised_and_unique(void **state)
{
	struct schema *vm = parse_ok(vm_blk, vm_len, SCOPE_VM);
	struct schema *vcpu = parse_ok(vcpu_blk, vcpu_len, SCOPE_VCPU);

	(void)state;
	check_family_names(vm, "kvm_vm_");
	check_family_names(vcpu, "kvm_vcpu_");
	schema_unref(vm);
	schema_unref(vcpu);
}

static void test_parse_id_returns_the_kernel_ids(void **state)
{
	struct schema_error err = { { 0 } };
	char id[SCHEMA_ID_MAX];
	unsigned pid, vcpu;
	char tail;

	(void)state;
	assert_int_equal(schema_parse_id(vm_blk, vm_len, id, &err), 0);
	assert_int_equal(sscanf(id, "kvm-%u%c", &pid, &tail), 1);
	assert_int_equal(schema_parse_id(vcpu_blk, vcpu_len, id, &err), 0);
	assert_int_equal(sscanf(id, "kvm-%u/vcpu-%u%c", &pid, &vcpu, &tail), 2);
	assert_int_equal(vcpu, 0);
}

static void test_parse_id_refuses_unterminated_or_unprintable_ids(void **state)
{
	struct kvm_stats_header h = tu_header(vm_blk);
	struct schema_error err = { { 0 } };
	char id[SCHEMA_ID_MAX];
	uint8_t *b = vm_copy();

	(void)state;
	memset(b + h.id_offset, 'k', h.name_size); /* no NUL */
	assert_int_equal(schema_parse_id(b, vm_len, id, &err), -EINVAL);
	memcpy(b + h.id_offset, "kvm\n1", 6);
	assert_int_equal(schema_parse_id(b, vm_len, id, &err), -EINVAL);
	b[h.id_offset] = '\0'; /* empty */
	assert_int_equal(schema_parse_id(b, vm_len, id, &err), -EINVAL);
	free(b);
}

/* ---- schema_read: pread only, exact extent ------------------------------- */

static int memfd_with(const void *p, size_t len)
{
	int fd = memfd_create("stats", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	return fd;
}

static void test_read_takes_exactly_the_layout_with_pread(void **state)
{
	struct schema_error err = { { 0 } };
	uint8_t data[1024] = { 0 }, *buf = NULL;
	size_t len = 0;
	int fd = memfd_with(vcpu_blk, vcpu_len);

	(void)state;
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	/* the file offset is the VMM's business: leave it anywhere */
	assert_int_equal(lseek(fd, 17, SEEK_SET), 17);
	assert_int_equal(schema_read(fd, &buf, &len, &err), 0);
	assert_int_equal(len, vcpu_len);
	assert_memory_equal(buf, vcpu_blk, vcpu_len);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 17);
	free(buf);
	close(fd);
}

static void test_read_refuses_short_files_and_pipes(void **state)
{
	struct schema_error err = { { 0 } };
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd = memfd_with(vm_blk, vm_len - 1), p[2];

	(void)state;
	assert_true(schema_read(fd, &buf, &len, &err) < 0);
	assert_null(buf);
	close(fd);
	fd = memfd_with(vm_blk, 10);
	assert_int_equal(schema_read(fd, &buf, &len, &err), -EIO);
	close(fd);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], vm_blk, 64), 64);
	assert_int_equal(schema_read(p[0], &buf, &len, &err), -ESPIPE);
	assert_null(buf);
	close(p[0]);
	close(p[1]);
}

static void test_read_refuses_a_bad_header_before_allocating(void **state)
{
	struct kvm_stats_header h = tu_header(vm_blk);
	struct schema_error err = { { 0 } };
	uint8_t *b = vm_copy(), *buf = NULL;
	size_t len = 0;
	int fd;

	(void)state;
	h.num_desc = 1000000;
	tu_set_header(b, &h);
	fd = memfd_with(b, vm_len);
	assert_int_equal(schema_read(fd, &buf, &len, &err), -EINVAL);
	assert_null(buf);
	close(fd);
	free(b);
}

static void test_read_and_parse_real_kvm_stats_fds(void **state)
{
	struct schema_error err = { { 0 } };
	int kvm, vm, vcpu, fds[2];
	char id[SCHEMA_ID_MAX];

	(void)state;
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		print_message("skipped: /dev/kvm: %s\n", strerror(errno));
		skip();
	}
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0) {
		close(kvm);
		print_message("skipped: no KVM_CAP_BINARY_STATS_FD\n");
		skip();
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	assert_true(vcpu >= 0);
	fds[0] = ioctl(vm, KVM_GET_STATS_FD, NULL);
	fds[1] = ioctl(vcpu, KVM_GET_STATS_FD, NULL);
	assert_true(fds[0] >= 0 && fds[1] >= 0);
	for (int i = 0; i < 2; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		struct schema *s = NULL;

		assert_int_equal(schema_read(fds[i], &buf, &len, &err), 0);
		assert_int_equal(schema_parse_id(buf, len, id, &err), 0);
		assert_int_equal(strncmp(id, "kvm-", 4), 0);
		assert_int_equal(schema_parse(buf, len, i ? SCOPE_VCPU : SCOPE_VM, &s, &err), 0);
		assert_true(s->n_stats > 0);
		assert_int_equal(s->skips.unknown + s->skips.invalid + s->skips.collision, 0);
		schema_unref(s);
		free(buf);
		close(fds[i]);
	}
	close(vcpu);
	close(vm);
	close(kvm);
}

/* ---- interning ----------------------------------------------------------- */

static void test_cache_returns_the_same_schema_for_the_same_block(void **state)
{
	struct schema_cache c = { 0 };
	struct schema_error err = { { 0 } };
	struct schema *a = NULL, *b = NULL;
	bool created = false;

	(void)state;
	assert_int_equal(schema_cache_get(&c, vcpu_blk, vcpu_len, SCOPE_VCPU, &a, &created, &err),
			 0);
	assert_true(created);
	assert_int_equal(schema_cache_get(&c, vcpu_blk, vcpu_len, SCOPE_VCPU, &b, &created, &err),
			 0);
	assert_false(created);
	assert_ptr_equal(a, b);
	assert_int_equal(c.n, 1);
	assert_int_equal(atomic_load(&a->refs), 3); /* cache + two callers */
	schema_unref(a);
	schema_unref(b);
	schema_cache_fini(&c);
}

static void test_cache_shares_a_schema_between_different_id_strings(void **state)
{
	struct kvm_stats_header h = tu_header(vcpu_blk);
	struct schema_cache c = { 0 };
	struct schema_error err = { { 0 } };
	struct schema *a = NULL, *b = NULL;
	uint8_t *other = vcpu_copy();
	bool created = true;

	(void)state;
	memset(other + h.id_offset, 0, h.name_size);
	strcpy((char *)other + h.id_offset, "kvm-99999/vcpu-17");
	assert_int_equal(schema_cache_get(&c, vcpu_blk, vcpu_len, SCOPE_VCPU, &a, NULL, &err), 0);
	assert_int_equal(schema_cache_get(&c, other, vcpu_len, SCOPE_VCPU, &b, &created, &err), 0);
	assert_false(created);
	assert_ptr_equal(a, b);
	schema_unref(a);
	schema_unref(b);
	schema_cache_fini(&c);
	free(other);
}

/*
 * The key holds the header except id_offset, and the descriptors: two blocks
 * with the id string at different places but the same descriptors and data
 * offset share a schema; a different data_offset does not.
 */
static void test_cache_ignores_where_the_id_lives_but_not_the_data_offset(void **state)
{
	struct kvm_stats_header h = tu_header(vm_blk);
	struct schema_cache c = { 0 };
	struct schema_error err = { { 0 } };
	struct schema *a = NULL, *b = NULL, *orig = NULL;
	size_t len = vm_len + h.name_size;
	uint8_t *id_first = calloc(1, len), *id_last = calloc(1, len);
	bool created = false;

	(void)state;
	assert_non_null(id_first);
	assert_non_null(id_last);
	memcpy(id_first, vm_blk, vm_len);
	memcpy(id_last, vm_blk, vm_len);
	h.data_offset += h.name_size;
	tu_set_header(id_first, &h);
	memset(id_last + h.id_offset, 0, h.name_size);
	h.id_offset = (uint32_t)vm_len; /* after the descriptors, before the data */
	tu_set_header(id_last, &h);
	strcpy((char *)id_last + h.id_offset, "kvm-1");

	assert_int_equal(schema_cache_get(&c, id_first, len, SCOPE_VM, &a, &created, &err), 0);
	assert_true(created);
	assert_int_equal(schema_cache_get(&c, id_last, len, SCOPE_VM, &b, &created, &err), 0);
	assert_false(created);
	assert_ptr_equal(a, b);
	assert_int_equal(a->data_offset, h.data_offset);
	assert_int_equal(schema_cache_get(&c, vm_blk, vm_len, SCOPE_VM, &orig, &created, &err), 0);
	assert_true(created);
	assert_ptr_not_equal(orig, a);
	assert_int_equal(orig->data_offset, h.data_offset - h.name_size);
	schema_unref(a);
	schema_unref(b);
	schema_unref(orig);
	schema_cache_fini(&c);
	free(id_first);
	free(id_last);
}

static void test_cache_never_shares_between_vm_and_vcpu_scope(void **state)
{
	struct schema_cache c = { 0 };
	struct schema_error err = { { 0 } };
	struct schema *vm = NULL, *as_vcpu = NULL;
	bool created = false;

	(void)state;
	assert_int_equal(schema_cache_get(&c, vm_blk, vm_len, SCOPE_VM, &vm, &created, &err), 0);
	assert_true(created);
	assert_int_equal(schema_cache_get(&c, vm_blk, vm_len, SCOPE_VCPU, &as_vcpu, &created, &err),
			 0);
	assert_true(created);
	assert_ptr_not_equal(vm, as_vcpu);
	assert_non_null(tu_stat_by_family(vm, "kvm_vm_remote_tlb_flush"));
	assert_non_null(tu_stat_by_family(as_vcpu, "kvm_vcpu_remote_tlb_flush"));
	schema_unref(vm);
	schema_unref(as_vcpu);
	schema_cache_fini(&c);
}

static void test_cache_tells_apart_blocks_differing_in_one_descriptor(void **state)
{
	struct schema_cache c = { 0 };
	struct schema_error err = { { 0 } };
	struct schema *a = NULL, *b = NULL;
	uint8_t *other = vcpu_copy();
	uint32_t i = desc_index(other, "halt_wait_ns");
	struct kvm_stats_desc d = tu_desc(other, i);
	bool created = false;

	(void)state;
	d.exponent = -6;
	tu_set_desc(other, i, &d);
	assert_int_equal(schema_cache_get(&c, vcpu_blk, vcpu_len, SCOPE_VCPU, &a, NULL, &err), 0);
	assert_int_equal(schema_cache_get(&c, other, vcpu_len, SCOPE_VCPU, &b, &created, &err), 0);
	assert_true(created);
	assert_ptr_not_equal(a, b);
	assert_int_equal(tu_stat_by_family(b, "kvm_vcpu_halt_wait_seconds")->sum_scale.exponent,
			 -6);
	schema_unref(a);
	schema_unref(b);
	schema_cache_fini(&c);
	free(other);
}

static void test_cache_trim_frees_only_schemas_nobody_holds(void **state)
{
	struct schema_cache c = { 0 };
	struct schema_error err = { { 0 } };
	struct schema *vm = NULL, *vcpu = NULL;

	(void)state;
	assert_int_equal(schema_cache_get(&c, vm_blk, vm_len, SCOPE_VM, &vm, NULL, &err), 0);
	assert_int_equal(schema_cache_get(&c, vcpu_blk, vcpu_len, SCOPE_VCPU, &vcpu, NULL, &err),
			 0);
	assert_int_equal(c.n, 2);
	schema_unref(vm);
	schema_cache_trim(&c);
	assert_int_equal(c.n, 1);
	assert_ptr_equal(c.v[0], vcpu);
	assert_int_equal(atomic_load(&vcpu->refs), 2);
	schema_unref(vcpu);
	schema_cache_trim(&c);
	assert_int_equal(c.n, 0);
	schema_cache_fini(&c);
}

static void test_cache_does_not_keep_refused_blocks(void **state)
{
	struct kvm_stats_header h = tu_header(vm_blk);
	struct schema_cache c = { 0 };
	struct schema_error err = { { 0 } };
	struct schema *s = NULL;
	uint8_t *b = vm_copy();
	bool created = true;

	(void)state;
	h.flags = 1;
	tu_set_header(b, &h);
	assert_int_equal(schema_cache_get(&c, b, vm_len, SCOPE_VM, &s, &created, &err), -EINVAL);
	assert_false(created);
	assert_int_equal(c.n, 0);
	schema_cache_fini(&c);
	free(b);
}

/* ---- hostile layouts: the whole block is refused ------------------------- */

static void truncate_everywhere(const uint8_t *full, size_t len, enum stat_scope scope)
{
	struct schema_cache c = { 0 };

	for (size_t n = 0; n < len; n++) {
		struct schema_error err = { { 0 } };
		struct schema *s = NULL;
		char id[SCHEMA_ID_MAX];
		uint8_t *b = tu_dup(full, n);

		if (schema_parse(b, n, scope, &s, &err) != -EINVAL || s)
			fail_msg("%zu of %zu bytes accepted", n, len);
		assert_true(err.why[0] != '\0');
		assert_int_equal(schema_parse_id(b, n, id, &err), -EINVAL);
		assert_int_equal(schema_cache_get(&c, b, n, scope, &s, NULL, &err), -EINVAL);
		free(b);
	}
	assert_int_equal(c.n, 0);
	schema_cache_fini(&c);
}

static void test_truncated_block_is_refused_at_every_length(void **state)
{
	(void)state;
	truncate_everywhere(vm_blk, vm_len, SCOPE_VM);
	truncate_everywhere(vcpu_blk, vcpu_len, SCOPE_VCPU);
}

static void test_header_flags_other_than_zero_are_refused(void **state)
{
	struct kvm_stats_header h = tu_header(vm_blk);
	uint8_t *b = vm_copy();

	(void)state;
	h.flags = 1;
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	h.flags = 0x80000000u;
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	free(b);
}

static void test_name_size_zero_or_huge_is_refused(void **state)
{
	static const uint32_t sizes[] = { 0, SCHEMA_MAX_NAME_SIZE + 1, 0x10000, UINT32_MAX };
	struct kvm_stats_header h = tu_header(vm_blk);
	uint8_t *b = vm_copy();

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		h.name_size = sizes[i];
		tu_set_header(b, &h);
		assert_refused(b, vm_len, SCOPE_VM);
	}
	free(b);
}

static void test_num_desc_zero_or_a_million_is_refused(void **state)
{
	static const uint32_t counts[] = { 0, SCHEMA_MAX_DESCS + 1, 1000000, UINT32_MAX };
	struct kvm_stats_header h = tu_header(vm_blk);
	uint8_t *b = vm_copy();

	(void)state;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		h.num_desc = counts[i];
		tu_set_header(b, &h);
		assert_refused(b, vm_len, SCOPE_VM);
	}
	free(b);
}

static void test_fewer_descriptors_than_present_is_accepted(void **state)
{
	struct kvm_stats_header h = tu_header(vm_blk);
	uint8_t *b = vm_copy();
	struct schema *s;

	(void)state;
	h.num_desc = 1; /* data_offset then lies beyond the descriptors: allowed */
	tu_set_header(b, &h);
	s = parse_ok(b, vm_len, SCOPE_VM);
	assert_int_equal(s->n_stats, 1);
	assert_int_equal(s->data_words, 1);
	schema_unref(s);
	free(b);
}

static void test_offsets_inside_the_header_are_refused(void **state)
{
	struct kvm_stats_header orig = tu_header(vm_blk), h;
	uint8_t *b = vm_copy();

	(void)state;
	h = orig;
	h.id_offset = 0;
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	h = orig;
	h.desc_offset = SCHEMA_HEADER_SIZE - 8;
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	h = orig;
	h.data_offset = 0;
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	free(b);
}

static void test_id_overlapping_the_descriptors_is_refused(void **state)
{
	struct kvm_stats_header orig = tu_header(vm_blk), h;
	uint8_t *b = vm_copy();

	(void)state;
	h = orig;
	h.id_offset = orig.desc_offset + 8; /* inside the first descriptor */
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	h = orig;
	h.id_offset = orig.desc_offset - 1; /* straddles the start */
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	h = orig;
	h.id_offset = (uint32_t)vm_len - 10; /* straddles the end (and the data) */
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	free(b);
}

static void test_descriptors_beyond_the_buffer_are_refused(void **state)
{
	struct kvm_stats_header orig = tu_header(vm_blk), h;
	struct schema_error err = { { 0 } };
	struct schema *s = NULL;
	uint8_t *b = vm_copy();

	(void)state;
	h = orig;
	h.desc_offset = (uint32_t)vm_len;
	h.data_offset = (uint32_t)vm_len + (1u << 20);
	tu_set_header(b, &h);
	assert_int_equal(parse_copy(b, vm_len, SCOPE_VM, &s, &err), -EINVAL);
	assert_non_null(strstr(err.why, "beyond"));
	h.desc_offset = UINT32_MAX - 100;
	h.data_offset = UINT32_MAX;
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	h = orig;
	h.id_offset = UINT32_MAX - 10; /* id beyond the buffer, after the data */
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	free(b);
}

static void test_data_offset_inside_the_descriptors_is_refused(void **state)
{
	struct kvm_stats_header orig = tu_header(vm_blk), h;
	struct schema_error err = { { 0 } };
	struct schema *s = NULL;
	uint8_t *b = vm_copy();

	(void)state;
	h = orig;
	h.data_offset = orig.desc_offset + 100;
	tu_set_header(b, &h);
	assert_int_equal(parse_copy(b, vm_len, SCOPE_VM, &s, &err), -EINVAL);
	assert_non_null(strstr(err.why, "overlaps"));
	h.data_offset = orig.id_offset + 1; /* inside the id */
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	h.data_offset = orig.data_offset - 1; /* one byte short */
	tu_set_header(b, &h);
	assert_refused(b, vm_len, SCOPE_VM);
	free(b);
}

static void set_offset(uint8_t *b, const char *name, uint32_t offset, uint16_t size)
{
	uint32_t i = desc_index(b, name);
	struct kvm_stats_desc d = tu_desc(b, i);

	d.offset = offset;
	if (size)
		d.size = size;
	tu_set_desc(b, i, &d);
}

static void test_stat_beyond_max_data_words_refuses_the_schema(void **state)
{
	uint8_t *b = vm_copy();
	struct schema *s;

	(void)state;
	set_offset(b, "mmu_flooded", SCHEMA_MAX_DATA_WORDS * 8u, 0);
	assert_refused(b, vm_len, SCOPE_VM);
	set_offset(b, "mmu_flooded", UINT32_MAX & ~7u, 0);
	assert_refused(b, vm_len, SCOPE_VM);
	/* the last word that still fits is accepted */
	set_offset(b, "mmu_flooded", (SCHEMA_MAX_DATA_WORDS - 1) * 8u, 0);
	s = parse_ok(b, vm_len, SCOPE_VM);
	assert_int_equal(s->data_words, SCHEMA_MAX_DATA_WORDS);
	schema_unref(s);
	free(b);
}

static void test_histogram_crossing_max_data_words_refuses_the_schema(void **state)
{
	uint8_t *b = vcpu_copy();

	(void)state;
	set_offset(b, "halt_wait_hist", (SCHEMA_MAX_DATA_WORDS - 31) * 8u, 0);
	assert_refused(b, vcpu_len, SCOPE_VCPU);
	free(b);
}

static void test_misaligned_data_offset_refuses_the_schema(void **state)
{
	uint8_t *b = vm_copy();

	(void)state;
	set_offset(b, "mmu_flooded", 4, 0);
	assert_refused(b, vm_len, SCOPE_VM);
	set_offset(b, "mmu_flooded", 8 * 20 + 1, 0);
	assert_refused(b, vm_len, SCOPE_VM);
	free(b);
}

static void test_overlapping_data_ranges_refuse_the_schema(void **state)
{
	uint8_t *vm = vm_copy(), *vcpu = vcpu_copy();
	struct kvm_stats_desc hist;
	struct schema_error err = { { 0 } };
	struct schema *s = NULL;

	(void)state;
	/* two scalars on the same word */
	set_offset(vm, "mmu_flooded", 0, 0);
	assert_int_equal(parse_copy(vm, vm_len, SCOPE_VM, &s, &err), -EINVAL);
	assert_non_null(strstr(err.why, "overlap"));
	/* a scalar inside a histogram's buckets */
	hist = tu_desc(vcpu, desc_index(vcpu, "halt_wait_hist"));
	set_offset(vcpu, "exits", hist.offset + 8 * 31, 0);
	assert_refused(vcpu, vcpu_len, SCOPE_VCPU);
	/* two histograms overlapping by one bucket */
	free(vcpu);
	vcpu = vcpu_copy();
	set_offset(vcpu, "halt_poll_fail_hist", hist.offset - 8 * 31, 0);
	assert_refused(vcpu, vcpu_len, SCOPE_VCPU);
	free(vm);
	free(vcpu);
}

/* ---- hostile descriptors: one stat is skipped ---------------------------- */

/* Parse b (a mutated VM block) and check that exactly name was skipped. */
static struct schema *parse_without(const uint8_t *b, size_t len, enum stat_scope scope,
				    size_t expect_stats, const char *gone)
{
	struct schema *s = parse_ok(b, len, scope);

	assert_int_equal(s->n_stats, expect_stats);
	if (gone)
		assert_null(tu_stat_by_desc(s, gone));
	return s;
}

static void test_unterminated_name_skips_only_that_stat(void **state)
{
	uint8_t *b = vm_copy();
	uint32_t i = desc_index(b, "mmu_flooded");
	struct schema *s;

	(void)state;
	memset(tu_desc_name(b, i), 'a', TU_NAME_SIZE);
	s = parse_without(b, vm_len, SCOPE_VM, TU_VM_NUM_DESC - 1, NULL);
	assert_int_equal(s->skips.invalid, 1);
	assert_int_equal(s->skips.unknown, 0);
	assert_non_null(tu_stat_by_desc(s, "mmu_recycled")); /* the next one is intact */
	schema_unref(s);
	free(b);
}

static void test_bad_names_skip_the_stat(void **state)
{
	static const char *const bad[] = { "caf\xc3\xa9", "two words", "tab\there", "",
					   "\x7f",	  "bell\a" };
	uint8_t *b = vm_copy();
	uint32_t i = desc_index(b, "mmu_flooded");

	(void)state;
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct schema *s;

		memset(tu_desc_name(b, i), 0, TU_NAME_SIZE);
		strcpy(tu_desc_name(b, i), bad[k]);
		s = parse_without(b, vm_len, SCOPE_VM, TU_VM_NUM_DESC - 1, bad[k]);
		assert_int_equal(s->skips.invalid, 1);
		schema_unref(s);
	}
	free(b);
}

/* Mutate one descriptor of the VM block: that stat alone is skipped, counted as given. */
static void assert_mutation_skips(const char *stat, void (*mutate)(struct kvm_stats_desc *, long),
				  long arg, unsigned unknown, unsigned invalid)
{
	uint8_t *b = vm_copy();
	uint32_t i = desc_index(b, stat);
	struct kvm_stats_desc d = tu_desc(b, i);
	struct schema *s;

	mutate(&d, arg);
	tu_set_desc(b, i, &d);
	s = parse_without(b, vm_len, SCOPE_VM, TU_VM_NUM_DESC - 1, stat);
	assert_int_equal(s->skips.unknown, unknown);
	assert_int_equal(s->skips.invalid, invalid);
	schema_unref(s);
	free(b);
}

static void set_size(struct kvm_stats_desc *d, long v)
{
	d->size = (uint16_t)v;
}

static void set_flags(struct kvm_stats_desc *d, long v)
{
	d->flags = (uint32_t)v;
}

static void test_zero_size_skips_the_stat(void **state)
{
	(void)state;
	assert_mutation_skips("mmu_flooded", set_size, 0, 0, 1);
}

static void test_scalar_with_several_items_skips_the_stat(void **state)
{
	(void)state;
	assert_mutation_skips("pages_1g", set_size, 2, 0, 1);
}

static void test_unknown_type_unit_or_base_skips_the_stat(void **state)
{
	static const uint32_t flags[] = {
		KVM_STATS_TYPE_MAX + 1,
		0xf,
		KVM_STATS_UNIT_MAX + (1u << KVM_STATS_UNIT_SHIFT),
		KVM_STATS_UNIT_MASK,
		KVM_STATS_BASE_MAX + (1u << KVM_STATS_BASE_SHIFT),
		KVM_STATS_BASE_MASK,
	};

	(void)state;
	for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
		assert_mutation_skips("mmu_flooded", set_flags, (long)flags[k], 1, 0);
}

static void test_exponent_beyond_forty_skips_the_stat(void **state)
{
	static const int16_t bad[] = { METRIC_MAX_EXPONENT + 1, -METRIC_MAX_EXPONENT - 1, INT16_MAX,
				       INT16_MIN };
	uint8_t *b = vm_copy();
	uint32_t i = desc_index(b, "mmu_flooded");
	struct kvm_stats_desc d = tu_desc(b, i);
	struct schema *s;

	(void)state;
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		d.exponent = bad[k];
		tu_set_desc(b, i, &d);
		s = parse_without(b, vm_len, SCOPE_VM, TU_VM_NUM_DESC - 1, "mmu_flooded");
		assert_int_equal(s->skips.unknown, 1);
		schema_unref(s);
	}
	d.exponent = METRIC_MAX_EXPONENT;
	tu_set_desc(b, i, &d);
	s = parse_without(b, vm_len, SCOPE_VM, TU_VM_NUM_DESC, NULL);
	assert_int_equal(tu_stat_by_desc(s, "mmu_flooded")->scale.exponent, METRIC_MAX_EXPONENT);
	schema_unref(s);
	d.exponent = -METRIC_MAX_EXPONENT;
	tu_set_desc(b, i, &d);
	s = parse_without(b, vm_len, SCOPE_VM, TU_VM_NUM_DESC, NULL);
	schema_unref(s);
	free(b);
}

static void test_linear_histogram_with_zero_bucket_size_is_invalid(void **state)
{
	const struct tu_stat st[] = {
		{ "ok", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 0, 0 },
		{ "lin_hist", KVM_STATS_TYPE_LINEAR_HIST, 0, 4, 8, 0 },
	};
	size_t len;
	uint8_t *b = tu_build_block("kvm-1/vcpu-0", 32, st, 2, &len);
	struct schema *s = parse_without(b, len, SCOPE_VCPU, 1, "lin_hist");

	(void)state;
	assert_int_equal(s->skips.invalid, 1);
	schema_unref(s);
	free(b);
}

static void test_histogram_sizes_outside_two_to_sixty_four_are_invalid(void **state)
{
	struct tu_stat st[] = {
		{ "ok", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 0, 0 },
		{ "h_hist", KVM_STATS_TYPE_LOG_HIST, 0, 1, 8, 0 },
	};
	static const uint16_t bad[] = { 1, 65, UINT16_MAX };
	size_t len;

	(void)state;
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		uint8_t *b;
		struct schema *s;

		st[1].size = bad[k];
		b = tu_build_block("kvm-1/vcpu-0", 32, st, 2, &len);
		s = parse_without(b, len, SCOPE_VCPU, 1, "h_hist");
		assert_int_equal(s->skips.invalid, 1);
		schema_unref(s);
		free(b);
	}
	st[1].size = 64;
	{
		uint8_t *b = tu_build_block("kvm-1/vcpu-0", 32, st, 2, &len);
		struct schema *s = parse_without(b, len, SCOPE_VCPU, 2, NULL);
		const struct schema_stat *h = tu_stat_by_desc(s, "h_hist");

		assert_int_equal(s->data_words, 1 + 64);
		assert_string_equal(h->le[62], "4611686018427387903"); /* 2^62 - 1 */
		schema_unref(s);
		free(b);
	}
}

static void test_boolean_histogram_is_invalid(void **state)
{
	const struct tu_stat st[] = {
		{ "ok", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 0, 0 },
		{ "b_hist", KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_BOOLEAN, 0, 4, 8, 0 },
	};
	size_t len;
	uint8_t *b = tu_build_block("kvm-1/vcpu-0", 32, st, 2, &len);
	struct schema *s = parse_without(b, len, SCOPE_VCPU, 1, "b_hist");

	(void)state;
	assert_int_equal(s->skips.invalid, 1);
	schema_unref(s);
	free(b);
}

static void test_two_stats_with_one_family_name_keep_the_first(void **state)
{
	uint8_t *b = vm_copy();
	uint32_t i = desc_index(b, "mmu_flooded");
	struct schema *s;

	(void)state;
	/* sanitised and lower-cased it is remote_tlb_flush again */
	memset(tu_desc_name(b, i), 0, TU_NAME_SIZE);
	strcpy(tu_desc_name(b, i), "Remote-TLB-Flush");
	s = parse_without(b, vm_len, SCOPE_VM, TU_VM_NUM_DESC - 1, "Remote-TLB-Flush");
	assert_int_equal(s->skips.collision, 1);
	assert_non_null(tu_stat_by_desc(s, "remote_tlb_flush"));
	assert_int_equal(tu_stat_by_family(s, "kvm_vm_remote_tlb_flush")->index, 0);
	schema_unref(s);
	free(b);
}

static void test_gauge_named_like_a_counters_total_collides(void **state)
{
	const struct tu_stat st[] = {
		{ "foo", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 0, 0 },
		{ "foo_total", KVM_STATS_TYPE_INSTANT, 0, 1, 8, 0 },
		{ "bar_bucket", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 16, 0 },
		{ "bar_hist", KVM_STATS_TYPE_LOG_HIST, 0, 4, 24, 0 },
	};
	size_t len;
	uint8_t *b = tu_build_block("kvm-1", 32, st, 4, &len);
	struct schema *s = parse_ok(b, len, SCOPE_VM);

	(void)state;
	/* kvm_vm_foo_total and kvm_vm_bar_bucket are each claimed twice */
	assert_int_equal(s->n_stats, 2);
	assert_int_equal(s->skips.collision, 2);
	assert_non_null(tu_stat_by_desc(s, "foo"));
	assert_non_null(tu_stat_by_desc(s, "bar_bucket"));
	schema_unref(s);
	free(b);
}

static void test_vm_stat_named_info_is_dropped_for_kvm_vm_info(void **state)
{
	uint8_t *b = vm_copy();
	uint32_t i = desc_index(b, "mmu_unsync");
	struct schema *s;

	(void)state;
	memset(tu_desc_name(b, i), 0, TU_NAME_SIZE);
	strcpy(tu_desc_name(b, i), "info");
	s = parse_without(b, vm_len, SCOPE_VM, TU_VM_NUM_DESC - 1, "info");
	assert_int_equal(s->skips.collision, 1);
	assert_null(tu_stat_by_family(s, "kvm_vm_info"));
	schema_unref(s);
	/* a vCPU may have one: kvm_vcpu_info is nobody's */
	s = parse_without(b, vm_len, SCOPE_VCPU, TU_VM_NUM_DESC, NULL);
	assert_non_null(tu_stat_by_family(s, "kvm_vcpu_info"));
	schema_unref(s);
	free(b);
}

static void test_cumulative_seconds_without_histogram_stays_a_counter(void **state)
{
	const struct tu_stat st[] = {
		{ "steal_ns", KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS, -9, 1, 0, 0 },
		{ "lone_hist", KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS, -9, 8, 8, 0 },
	};
	size_t len;
	uint8_t *b = tu_build_block("kvm-1/vcpu-0", 48, st, 2, &len);
	struct schema *s = parse_ok(b, len, SCOPE_VCPU);
	const struct schema_stat *steal = tu_stat_by_desc(s, "steal_ns");
	const struct schema_stat *lone = tu_stat_by_desc(s, "lone_hist");

	(void)state;
	assert_int_equal(s->n_stats, 2);
	assert_non_null(steal);
	assert_string_equal(steal->family, "kvm_vcpu_steal_seconds");
	assert_int_equal(steal->type, MT_COUNTER);
	assert_non_null(strstr(steal->head_text, "# TYPE kvm_vcpu_steal_seconds_total counter\n"));
	assert_non_null(lone);
	assert_string_equal(lone->family, "kvm_vcpu_lone_seconds");
	assert_int_equal(lone->sum_index, -1);
	schema_unref(s);
	free(b);
}

static void test_linear_histogram_bounds_are_bucket_ends(void **state)
{
	const struct tu_stat st[] = {
		{ "lin_hist", KVM_STATS_TYPE_LINEAR_HIST, 0, 4, 0, 5 },
		{ "lat_hist", KVM_STATS_TYPE_LINEAR_HIST | KVM_STATS_UNIT_SECONDS, -3, 3, 32, 5 },
	};
	size_t len;
	uint8_t *b = tu_build_block("kvm-1/vcpu-0", 32, st, 2, &len);
	struct schema *s = parse_ok(b, len, SCOPE_VCPU);
	const struct schema_stat *lin = tu_stat_by_desc(s, "lin_hist");
	const struct schema_stat *lat = tu_stat_by_desc(s, "lat_hist");

	(void)state;
	assert_non_null(lin);
	assert_string_equal(lin->family, "kvm_vcpu_lin");
	assert_int_equal(lin->type, MT_HISTOGRAM);
	assert_int_equal(lin->bucket_size, 5);
	/* buckets [0,4] [5,9] [10,14] [15,+Inf) */
	assert_string_equal(lin->le[0], "4");
	assert_string_equal(lin->le[1], "9");
	assert_string_equal(lin->le[2], "14");
	assert_non_null(lat);
	assert_string_equal(lat->family, "kvm_vcpu_lat_seconds");
	assert_string_equal(lat->le[0], "0.004");
	assert_string_equal(lat->le[1], "0.009");
	assert_int_equal(s->data_words, 4 + 3);
	schema_unref(s);
	free(b);
}

static void test_pow2_base_scales_by_powers_of_two(void **state)
{
	const struct tu_stat st[] = {
		{ "mem_kib", KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BYTES | KVM_STATS_BASE_POW2,
		  10, 1, 0, 0 },
		{ "frac_hist",
		  KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW2, -10, 4, 8,
		  0 },
	};
	size_t len;
	uint8_t *b = tu_build_block("kvm-1", 32, st, 2, &len);
	struct schema *s = parse_ok(b, len, SCOPE_VM);
	const struct schema_stat *mem = tu_stat_by_desc(s, "mem_kib");
	const struct schema_stat *frac = tu_stat_by_desc(s, "frac_hist");

	(void)state;
	assert_non_null(mem);
	assert_string_equal(mem->family, "kvm_vm_mem_bytes");
	assert_int_equal(mem->scale.base2, 1);
	assert_int_equal(mem->scale.exponent, 10);
	assert_non_null(strstr(mem->head_om, "# UNIT kvm_vm_mem_bytes bytes\n"));
	assert_non_null(frac);
	assert_string_equal(frac->family, "kvm_vm_frac_seconds");
	assert_string_equal(frac->le[0], "0");
	assert_string_equal(frac->le[1], "0.0009765625"); /* 1/1024 */
	assert_string_equal(frac->le[2], "0.0029296875"); /* 3/1024 */
	schema_unref(s);
	free(b);
}

static void test_all_stats_skipped_leaves_an_empty_schema(void **state)
{
	const struct tu_stat st[] = {
		{ "a", KVM_STATS_TYPE_MAX + 1, 0, 1, 0, 0 },
		{ "b", KVM_STATS_TYPE_CUMULATIVE, 0, 0, 8, 0 },
	};
	size_t len;
	uint8_t *b = tu_build_block("kvm-1", 32, st, 2, &len);
	struct schema *s = parse_ok(b, len, SCOPE_VM);

	(void)state;
	assert_int_equal(s->n_stats, 0);
	assert_int_equal(s->data_words, 0);
	assert_int_equal(s->skips.unknown, 1);
	assert_int_equal(s->skips.invalid, 1);
	schema_unref(s);
	free(b);
}

static void test_name_too_long_for_a_family_skips_the_stat(void **state)
{
	char longname[200];
	struct tu_stat st[] = {
		{ "ok", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 0, 0 },
		{ longname, KVM_STATS_TYPE_CUMULATIVE, 0, 1, 8, 0 },
	};
	size_t len;
	uint8_t *b;
	struct schema *s;

	(void)state;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	b = tu_build_block("kvm-1", SCHEMA_MAX_NAME_SIZE, st, 2, &len);
	s = parse_without(b, len, SCOPE_VM, 1, longname);
	assert_int_equal(s->skips.invalid, 1);
	schema_unref(s);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_vm_block_exports_every_stat),
		cmocka_unit_test(test_real_vcpu_block_folds_three_sum_twins_into_histograms),
		cmocka_unit_test(test_real_vm_remote_tlb_flush_is_a_counter),
		cmocka_unit_test(test_real_vm_instant_and_peak_stats_are_gauges),
		cmocka_unit_test(test_real_vcpu_exits_is_a_counter),
		cmocka_unit_test(
		    test_real_halt_wait_is_a_seconds_histogram_with_its_ns_twin_as_sum),
		cmocka_unit_test(test_real_halt_poll_histograms_take_their_ns_twins_as_sums),
		cmocka_unit_test(test_real_boolean_stats_are_unitless_gauges),
		cmocka_unit_test(test_real_log_histogram_le_bounds_are_exact_decimals),
		cmocka_unit_test(test_real_data_words_match_the_descriptors),
		cmocka_unit_test(test_real_family_names_are_prefixed_sanitised_and_unique),
		cmocka_unit_test(test_parse_id_returns_the_kernel_ids),
		cmocka_unit_test(test_parse_id_refuses_unterminated_or_unprintable_ids),
		cmocka_unit_test(test_read_takes_exactly_the_layout_with_pread),
		cmocka_unit_test(test_read_refuses_short_files_and_pipes),
		cmocka_unit_test(test_read_refuses_a_bad_header_before_allocating),
		cmocka_unit_test(test_read_and_parse_real_kvm_stats_fds),
		cmocka_unit_test(test_cache_returns_the_same_schema_for_the_same_block),
		cmocka_unit_test(test_cache_shares_a_schema_between_different_id_strings),
		cmocka_unit_test(test_cache_ignores_where_the_id_lives_but_not_the_data_offset),
		cmocka_unit_test(test_cache_never_shares_between_vm_and_vcpu_scope),
		cmocka_unit_test(test_cache_tells_apart_blocks_differing_in_one_descriptor),
		cmocka_unit_test(test_cache_trim_frees_only_schemas_nobody_holds),
		cmocka_unit_test(test_cache_does_not_keep_refused_blocks),
		cmocka_unit_test(test_truncated_block_is_refused_at_every_length),
		cmocka_unit_test(test_header_flags_other_than_zero_are_refused),
		cmocka_unit_test(test_name_size_zero_or_huge_is_refused),
		cmocka_unit_test(test_num_desc_zero_or_a_million_is_refused),
		cmocka_unit_test(test_fewer_descriptors_than_present_is_accepted),
		cmocka_unit_test(test_offsets_inside_the_header_are_refused),
		cmocka_unit_test(test_id_overlapping_the_descriptors_is_refused),
		cmocka_unit_test(test_descriptors_beyond_the_buffer_are_refused),
		cmocka_unit_test(test_data_offset_inside_the_descriptors_is_refused),
		cmocka_unit_test(test_stat_beyond_max_data_words_refuses_the_schema),
		cmocka_unit_test(test_histogram_crossing_max_data_words_refuses_the_schema),
		cmocka_unit_test(test_misaligned_data_offset_refuses_the_schema),
		cmocka_unit_test(test_overlapping_data_ranges_refuse_the_schema),
		cmocka_unit_test(test_unterminated_name_skips_only_that_stat),
		cmocka_unit_test(test_bad_names_skip_the_stat),
		cmocka_unit_test(test_zero_size_skips_the_stat),
		cmocka_unit_test(test_scalar_with_several_items_skips_the_stat),
		cmocka_unit_test(test_unknown_type_unit_or_base_skips_the_stat),
		cmocka_unit_test(test_exponent_beyond_forty_skips_the_stat),
		cmocka_unit_test(test_linear_histogram_with_zero_bucket_size_is_invalid),
		cmocka_unit_test(test_histogram_sizes_outside_two_to_sixty_four_are_invalid),
		cmocka_unit_test(test_boolean_histogram_is_invalid),
		cmocka_unit_test(test_two_stats_with_one_family_name_keep_the_first),
		cmocka_unit_test(test_gauge_named_like_a_counters_total_collides),
		cmocka_unit_test(test_vm_stat_named_info_is_dropped_for_kvm_vm_info),
		cmocka_unit_test(test_cumulative_seconds_without_histogram_stays_a_counter),
		cmocka_unit_test(test_linear_histogram_bounds_are_bucket_ends),
		cmocka_unit_test(test_pow2_base_scales_by_powers_of_two),
		cmocka_unit_test(test_all_stats_skipped_leaves_an_empty_schema),
		cmocka_unit_test(test_name_too_long_for_a_family_skips_the_stat),
	};

	return cmocka_run_group_tests(tests, load_layouts, free_layouts);
}
