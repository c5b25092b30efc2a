/* SPDX-License-Identifier: MIT */
/*
 * test_metric - the metric-name contract (DESIGN.md "Metric names") and the
 * exact formatting of scaled values. Dashboards depend on these strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metric.h"

#define T(x) (KVM_STATS_TYPE_##x >> KVM_STATS_TYPE_SHIFT)
#define U(x) (KVM_STATS_UNIT_##x >> KVM_STATS_UNIT_SHIFT)
#define B(x) (KVM_STATS_BASE_##x >> KVM_STATS_BASE_SHIFT)

static struct stat_flags flags(unsigned type, unsigned unit)
{
	return (struct stat_flags){ type, unit, B(POW10) };
}

/* metric_family_name into a METRIC_NAME_MAX buffer; checks the length. */
static void assert_family(enum stat_scope scope, const char *desc, unsigned type, unsigned unit,
			  const char *expect)
{
	struct stat_flags f = flags(type, unit);
	char out[METRIC_NAME_MAX];
	int n = metric_family_name(scope, desc, &f, out, sizeof(out));

	if (n < 0)
		fail_msg("%s: error %d, expected %s", desc, n, expect);
	assert_string_equal(out, expect);
	assert_int_equal(n, strlen(expect));
}

static int family_rc(const char *desc, unsigned unit, size_t out_size)
{
	struct stat_flags f = flags(T(CUMULATIVE), unit);
	char out[METRIC_NAME_MAX * 2];

	return metric_family_name(SCOPE_VCPU, desc, &f, out, out_size);
}

static void test_family_names_for_every_type_and_unit(void **state)
{
	static const struct {
		unsigned unit;
		const char *suffix;
	} units[] = {
		{ U(NONE), "" },	  { U(BYTES), "_bytes" }, { U(SECONDS), "_seconds" },
		{ U(CYCLES), "_cycles" }, { U(BOOLEAN), "" },
	};
	static const unsigned types[] = { T(CUMULATIVE), T(INSTANT), T(PEAK), T(LINEAR_HIST),
					  T(LOG_HIST) };

	(void)state;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
			char vm[64], vcpu[64];

			snprintf(vm, sizeof(vm), "kvm_vm_stat%s", units[u].suffix);
			snprintf(vcpu, sizeof(vcpu), "kvm_vcpu_stat%s", units[u].suffix);
			assert_family(SCOPE_VM, "stat", types[t], units[u].unit, vm);
			assert_family(SCOPE_VCPU, "stat", types[t], units[u].unit, vcpu);
		}
}

static void test_metric_type_for_every_type_and_unit(void **state)
{
	static const unsigned units[] = { U(NONE), U(BYTES), U(SECONDS), U(CYCLES) };

	(void)state;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		struct stat_flags f;

		f = flags(T(CUMULATIVE), units[u]);
		assert_int_equal(metric_type_of(&f), MT_COUNTER);
		f = flags(T(INSTANT), units[u]);
		assert_int_equal(metric_type_of(&f), MT_GAUGE);
		f = flags(T(PEAK), units[u]);
		assert_int_equal(metric_type_of(&f), MT_GAUGE);
		f = flags(T(LINEAR_HIST), units[u]);
		assert_int_equal(metric_type_of(&f), MT_HISTOGRAM);
		f = flags(T(LOG_HIST), units[u]);
		assert_int_equal(metric_type_of(&f), MT_HISTOGRAM);
	}
}

static void test_boolean_stats_are_gauges_even_when_cumulative(void **state)
{
	struct stat_flags f;

	(void)state;
	f = flags(T(CUMULATIVE), U(BOOLEAN));
	assert_int_equal(metric_type_of(&f), MT_GAUGE);
	f = flags(T(INSTANT), U(BOOLEAN));
	assert_int_equal(metric_type_of(&f), MT_GAUGE);
	f = flags(T(PEAK), U(BOOLEAN));
	assert_int_equal(metric_type_of(&f), MT_GAUGE);
}

static void test_unit_names_are_the_openmetrics_units(void **state)
{
	struct stat_flags f;

	(void)state;
	f = flags(T(INSTANT), U(NONE));
	assert_null(metric_unit_name(&f));
	f = flags(T(INSTANT), U(BOOLEAN));
	assert_null(metric_unit_name(&f));
	f = flags(T(INSTANT), U(BYTES));
	assert_string_equal(metric_unit_name(&f), "bytes");
	f = flags(T(INSTANT), U(SECONDS));
	assert_string_equal(metric_unit_name(&f), "seconds");
	f = flags(T(INSTANT), U(CYCLES));
	assert_string_equal(metric_unit_name(&f), "cycles");
}

static void test_unit_tokens_are_replaced_by_the_base_unit_suffix(void **state)
{
	(void)state;
	assert_family(SCOPE_VCPU, "halt_wait_ns", T(CUMULATIVE), U(SECONDS),
		      "kvm_vcpu_halt_wait_seconds");
	assert_family(SCOPE_VCPU, "halt_wait_hist", T(LOG_HIST), U(SECONDS),
		      "kvm_vcpu_halt_wait_seconds");
	assert_family(SCOPE_VCPU, "foo_hist", T(LINEAR_HIST), U(SECONDS), "kvm_vcpu_foo_seconds");
	assert_family(SCOPE_VCPU, "foo_ns_hist", T(LOG_HIST), U(SECONDS), "kvm_vcpu_foo_seconds");
	assert_family(SCOPE_VCPU, "x_us", T(CUMULATIVE), U(SECONDS), "kvm_vcpu_x_seconds");
	assert_family(SCOPE_VCPU, "x_ms", T(INSTANT), U(SECONDS), "kvm_vcpu_x_seconds");
	assert_family(SCOPE_VCPU, "x_s", T(INSTANT), U(SECONDS), "kvm_vcpu_x_seconds");
	assert_family(SCOPE_VCPU, "x_nsec", T(INSTANT), U(SECONDS), "kvm_vcpu_x_seconds");
	assert_family(SCOPE_VCPU, "x_seconds", T(INSTANT), U(SECONDS), "kvm_vcpu_x_seconds");
	assert_family(SCOPE_VM, "y_bytes", T(INSTANT), U(BYTES), "kvm_vm_y_bytes");
	assert_family(SCOPE_VM, "z_kib", T(INSTANT), U(BYTES), "kvm_vm_z_bytes");
	assert_family(SCOPE_VM, "z_mb", T(PEAK), U(BYTES), "kvm_vm_z_bytes");
	assert_family(SCOPE_VCPU, "c_cycles", T(CUMULATIVE), U(CYCLES), "kvm_vcpu_c_cycles");
	assert_family(SCOPE_VCPU, "c", T(CUMULATIVE), U(CYCLES), "kvm_vcpu_c_cycles");
}

static void test_only_the_stats_own_unit_token_is_stripped(void **state)
{
	(void)state;
	/* a token of another unit is part of the name */
	assert_family(SCOPE_VCPU, "x_ns", T(CUMULATIVE), U(NONE), "kvm_vcpu_x_ns");
	assert_family(SCOPE_VCPU, "y_bytes", T(CUMULATIVE), U(SECONDS), "kvm_vcpu_y_bytes_seconds");
	/* _hist only goes for histograms */
	assert_family(SCOPE_VCPU, "foo_hist", T(CUMULATIVE), U(NONE), "kvm_vcpu_foo_hist");
	assert_family(SCOPE_VCPU, "foo_hist", T(LOG_HIST), U(NONE), "kvm_vcpu_foo");
	/* one token only, and only at the end */
	assert_family(SCOPE_VCPU, "x_ms_ns", T(CUMULATIVE), U(SECONDS), "kvm_vcpu_x_ms_seconds");
	assert_family(SCOPE_VCPU, "ns_count", T(CUMULATIVE), U(SECONDS),
		      "kvm_vcpu_ns_count_seconds");
	/* a name that is only a token keeps it */
	assert_family(SCOPE_VCPU, "ns", T(CUMULATIVE), U(SECONDS), "kvm_vcpu_ns_seconds");
	/* no _total: counters get it when rendered */
	assert_family(SCOPE_VM, "remote_tlb_flush", T(CUMULATIVE), U(NONE),
		      "kvm_vm_remote_tlb_flush");
}

static void test_names_are_lowercased_and_sanitised(void **state)
{
	(void)state;
	assert_family(SCOPE_VCPU, "Halt-Wait.NS", T(CUMULATIVE), U(SECONDS),
		      "kvm_vcpu_halt_wait_seconds");
	assert_family(SCOPE_VM, "MMU:Cache/Miss", T(CUMULATIVE), U(NONE), "kvm_vm_mmu_cache_miss");
	assert_family(SCOPE_VM, "pages_1G", T(INSTANT), U(NONE), "kvm_vm_pages_1g");
	assert_family(SCOPE_VM, "a~!@#$%^&*()+={}[]|\\\"'<>,?`z", T(INSTANT), U(NONE),
		      "kvm_vm_a__________________________z");
}

static void test_empty_or_unprintable_names_are_rejected(void **state)
{
	static const char *const bad[] = { "",	   " ",	   "a b",	  "tab\t", "nl\n",
					   "\x01", "\x7f", "caf\xc3\xa9", "\xff" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(family_rc(bad[i], U(NONE), METRIC_NAME_MAX), -EINVAL);
}

static void test_too_long_names_are_refused_with_enametoolong(void **state)
{
	char name[5001];

	(void)state;
	/* "kvm_vcpu_" (9) + 150 + NUL fills METRIC_NAME_MAX exactly */
	memset(name, 'a', sizeof(name));
	name[150] = '\0';
	assert_int_equal(family_rc(name, U(NONE), METRIC_NAME_MAX), 159);
	name[150] = 'a';
	name[151] = '\0';
	assert_int_equal(family_rc(name, U(NONE), METRIC_NAME_MAX), -ENAMETOOLONG);
	/* the unit suffix counts too */
	name[142] = '\0';
	assert_int_equal(family_rc(name, U(SECONDS), METRIC_NAME_MAX), 159);
	name[142] = 'a';
	name[143] = '\0';
	assert_int_equal(family_rc(name, U(SECONDS), METRIC_NAME_MAX), -ENAMETOOLONG);
	name[143] = 'a';
	name[5000] = '\0';
	assert_int_equal(family_rc(name, U(NONE), METRIC_NAME_MAX), -ENAMETOOLONG);
	assert_int_equal(family_rc("exits", U(NONE), 8), -ENAMETOOLONG);
	assert_int_equal(family_rc("exits", U(NONE), 15), 14);
}

static void test_decode_flags_accepts_known_values_and_refuses_others(void **state)
{
	struct stat_flags f;

	(void)state;
	assert_int_equal(metric_decode_flags(KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS |
						 KVM_STATS_BASE_POW2,
					     &f),
			 0);
	assert_int_equal(f.type, T(LOG_HIST));
	assert_int_equal(f.unit, U(SECONDS));
	assert_int_equal(f.base, B(POW2));
	assert_int_equal(metric_decode_flags(0, &f), 0);
	assert_int_equal(metric_decode_flags(KVM_STATS_UNIT_BOOLEAN, &f), 0);
	assert_int_equal(metric_decode_flags(KVM_STATS_TYPE_MAX + 1, &f), -EINVAL);
	assert_int_equal(metric_decode_flags(KVM_STATS_UNIT_MAX + (1 << KVM_STATS_UNIT_SHIFT), &f),
			 -EINVAL);
	assert_int_equal(metric_decode_flags(KVM_STATS_BASE_MAX + (1 << KVM_STATS_BASE_SHIFT), &f),
			 -EINVAL);
}

/* Format into a heap buffer of exactly METRIC_NUM_MAX (ASan sees overruns). */
static void assert_scaled(uint64_t raw, int base2, int exponent, const char *expect)
{
	struct metric_scale sc = { (uint8_t)base2, (int16_t)exponent };
	char *out = malloc(METRIC_NUM_MAX);
	int n;

	assert_non_null(out);
	n = metric_format_scaled(raw, sc, out);
	assert_string_equal(out, expect);
	assert_int_equal(n, strlen(expect));
	free(out);
}

static void test_pow10_nano_values_are_exact_decimals(void **state)
{
	(void)state;
	assert_scaled(1, 0, -9, "0.000000001");
	assert_scaled(1500000000, 0, -9, "1.5");
	assert_scaled(1000000000, 0, -9, "1");
	assert_scaled(0, 0, -9, "0");
	assert_scaled(10, 0, -9, "0.00000001");
	assert_scaled(123456789012, 0, -9, "123.456789012");
	assert_scaled(UINT64_MAX, 0, -9, "18446744073.709551615");
	assert_scaled(UINT64_MAX - 15, 0, -9, "18446744073.7095516");
}

static void test_pow10_milli_and_unscaled_values(void **state)
{
	(void)state;
	assert_scaled(1, 0, -3, "0.001");
	assert_scaled(1000, 0, -3, "1");
	assert_scaled(1234, 0, -3, "1.234");
	assert_scaled(1230, 0, -3, "1.23");
	assert_scaled(42, 0, 0, "42");
	assert_scaled(0, 0, 0, "0");
	assert_scaled(UINT64_MAX, 0, 0, "18446744073709551615");
}

static void test_positive_pow10_exponents_append_zeros(void **state)
{
	(void)state;
	assert_scaled(5, 0, 3, "5000");
	assert_scaled(0, 0, 3, "0");
	assert_scaled(12, 0, 1, "120");
}

static void test_extreme_exponents_fit_in_metric_num_max(void **state)
{
	char zeros40[41];
	char expect[METRIC_NUM_MAX];

	(void)state;
	memset(zeros40, '0', 40);
	zeros40[40] = '\0';
	snprintf(expect, sizeof(expect), "18446744073709551615%s", zeros40);
	assert_scaled(UINT64_MAX, 0, 40, expect);
	snprintf(expect, sizeof(expect), "0.%.20s18446744073709551615", zeros40);
	assert_scaled(UINT64_MAX, 0, -40, expect);
	snprintf(expect, sizeof(expect), "0.%.39s1", zeros40);
	assert_scaled(1, 0, -40, expect);
	/* every exponent and base with awkward values stays inside the buffer */
	for (int e = -METRIC_MAX_EXPONENT; e <= METRIC_MAX_EXPONENT; e++)
		for (int b2 = 0; b2 < 2; b2++) {
			static const uint64_t raws[] = { 0, 1, 9, 10, 999999999, UINT64_MAX };

			for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
				struct metric_scale sc = { (uint8_t)b2, (int16_t)e };
				char *out = malloc(METRIC_NUM_MAX);
				int n;

				assert_non_null(out);
				n = metric_format_scaled(raws[i], sc, out);
				assert_true(n > 0 && n < METRIC_NUM_MAX);
				assert_int_equal(strlen(out), n);
				free(out);
			}
		}
}

static void test_pow2_exponents_scale_by_powers_of_two(void **state)
{
	(void)state;
	assert_scaled(1u << 10, 1, -10, "1");
	assert_scaled(1, 1, -1, "0.5");
	assert_scaled(3, 1, 10, "3072");
	assert_scaled(0, 1, 10, "0");
	assert_scaled(1, 1, 0, "1");
	assert_scaled((UINT64_C(1) << 52) + 1, 1, 0, "4503599627370497");
	assert_scaled(5, 1, -2, "1.25");
}

static void test_format_u64_is_plain_decimal(void **state)
{
	char out[24];

	(void)state;
	assert_int_equal(metric_format_u64(0, out), 1);
	assert_string_equal(out, "0");
	assert_int_equal(metric_format_u64(UINT64_MAX, out), 20);
	assert_string_equal(out, "18446744073709551615");
	assert_int_equal(metric_format_u64(1000, out), 4);
	assert_string_equal(out, "1000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_names_for_every_type_and_unit),
		cmocka_unit_test(test_metric_type_for_every_type_and_unit),
		cmocka_unit_test(test_boolean_stats_are_gauges_even_when_cumulative),
		cmocka_unit_test(test_unit_names_are_the_openmetrics_units),
		cmocka_unit_test(test_unit_tokens_are_replaced_by_the_base_unit_suffix),
		cmocka_unit_test(test_only_the_stats_own_unit_token_is_stripped),
		cmocka_unit_test(test_names_are_lowercased_and_sanitised),
		cmocka_unit_test(test_empty_or_unprintable_names_are_rejected),
		cmocka_unit_test(test_too_long_names_are_refused_with_enametoolong),
		cmocka_unit_test(test_decode_flags_accepts_known_values_and_refuses_others),
		cmocka_unit_test(test_pow10_nano_values_are_exact_decimals),
		cmocka_unit_test(test_pow10_milli_and_unscaled_values),
		cmocka_unit_test(test_positive_pow10_exponents_append_zeros),
		cmocka_unit_test(test_extreme_exponents_fit_in_metric_num_max),
		cmocka_unit_test(test_pow2_exponents_scale_by_powers_of_two),
		cmocka_unit_test(test_format_u64_is_plain_decimal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
