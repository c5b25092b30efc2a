/* SPDX-License-Identifier: MIT */
/*
 * metric - the metric-name contract and exact number formatting.
 *
 * Pure functions, no state: a KVM stats descriptor (scope, name, type, unit,
 * base, exponent) in, a Prometheus family name, type and value formatter
 * out. The rules are those of README.md "Metric names"; they are a contract
 * with users' dashboards, so tests pin every case.
 */
#ifndef KVMSTATD_METRIC_H
#define KVMSTATD_METRIC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define METRIC_NAME_MAX 160
#define METRIC_NUM_MAX 72 /* longest formatted number, NUL included */

enum stat_scope { SCOPE_VM, SCOPE_VCPU };
enum metric_type { MT_COUNTER, MT_GAUGE, MT_HISTOGRAM };

/* Decoded descriptor flags (linux/kvm.h KVM_STATS_*), already range-checked. */
struct stat_flags {
	unsigned type; /* KVM_STATS_TYPE_* >> SHIFT */
	unsigned unit; /* KVM_STATS_UNIT_* >> SHIFT */
	unsigned base; /* KVM_STATS_BASE_* >> SHIFT */
};

/*
 * How a raw u64 becomes a value in base units. pow10 scales are printed as
 * exact decimals (digits and a moved decimal point); pow2 scales go through
 * a double, exact while the result fits in 53 bits.
 */
struct metric_scale {
	uint8_t base2;	  /* 0: power of 10, 1: power of 2 */
	int16_t exponent; /* |exponent| <= METRIC_MAX_EXPONENT */
};

#define METRIC_MAX_EXPONENT 40

/* Returns -EINVAL for a type, unit or base this code does not know. */
int metric_decode_flags(uint32_t flags, struct stat_flags *out);

/*
 * Family name: "kvm_vm_" / "kvm_vcpu_" + sanitised name, "_hist" and a unit
 * token stripped, base-unit suffix appended. Counters' "_total" is NOT
 * part of the family. Returns the length, -EINVAL for an empty or invalid
 * name (anything outside printable ASCII), -ENAMETOOLONG.
 */
int metric_family_name(enum stat_scope scope, const char *desc_name, const struct stat_flags *f,
		       char *out, size_t out_size);

enum metric_type metric_type_of(const struct stat_flags *f);

/* "seconds", "bytes", "cycles" or NULL: the OpenMetrics UNIT of a family. */
const char *metric_unit_name(const struct stat_flags *f);

/*
 * Format raw * base^exponent into out (>= METRIC_NUM_MAX bytes), no NUL
 * needed by callers: returns the length and NUL-terminates.
 */
int metric_format_scaled(uint64_t raw, struct metric_scale scale, char *out);

/* Plain unsigned decimal; returns the length, NUL-terminates. */
int metric_format_u64(uint64_t v, char *out);

extern const char metric_digit_pairs[201];

/*
 * The same without the NUL, inline: the renderer's hot path (one call per
 * sample line). Two digits per division, and one store for the most common
 * value of all, an idle vCPU's 0.
 */
static inline int metric_u64_text(uint64_t v, char *out)
{
	int n = 1, i;

	if (v < 10) {
		out[0] = (char)('0' + v);
		return 1;
	}
	for (uint64_t t = v; t >= 10; t /= 10)
		n++;
	for (i = n; v >= 100; v /= 100) {
		i -= 2;
		memcpy(out + i, metric_digit_pairs + (v % 100) * 2, 2);
	}
	if (v >= 10)
		memcpy(out + i - 2, metric_digit_pairs + v * 2, 2);
	else
		out[i - 1] = (char)('0' + v);
	return n;
}

#endif
