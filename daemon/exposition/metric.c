/* SPDX-License-Identifier: MIT */
/* metric - see metric.h. */
#include "metric.h"

#include <errno.h>
#include <linux/kvm.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int metric_decode_flags(uint32_t flags, struct stat_flags *out)
{
	out->type = (flags & KVM_STATS_TYPE_MASK) >> KVM_STATS_TYPE_SHIFT;
	out->unit = (flags & KVM_STATS_UNIT_MASK) >> KVM_STATS_UNIT_SHIFT;
	out->base = (flags & KVM_STATS_BASE_MASK) >> KVM_STATS_BASE_SHIFT;
	if (out->type > (KVM_STATS_TYPE_MAX >> KVM_STATS_TYPE_SHIFT) ||
	    out->unit > (KVM_STATS_UNIT_MAX >> KVM_STATS_UNIT_SHIFT) ||
	    out->base > (KVM_STATS_BASE_MAX >> KVM_STATS_BASE_SHIFT))
		return -EINVAL;
	return 0;
}

static bool is_hist(const struct stat_flags *f)
{
	return f->type == (KVM_STATS_TYPE_LINEAR_HIST >> KVM_STATS_TYPE_SHIFT) ||
	       f->type == (KVM_STATS_TYPE_LOG_HIST >> KVM_STATS_TYPE_SHIFT);
}

enum metric_type metric_type_of(const struct stat_flags *f)
{
	if (is_hist(f))
		return MT_HISTOGRAM;
	if (f->unit == (KVM_STATS_UNIT_BOOLEAN >> KVM_STATS_UNIT_SHIFT))
		return MT_GAUGE;
	if (f->type == (KVM_STATS_TYPE_CUMULATIVE >> KVM_STATS_TYPE_SHIFT))
		return MT_COUNTER;
	return MT_GAUGE;
}

const char *metric_unit_name(const struct stat_flags *f)
{
	switch (f->unit << KVM_STATS_UNIT_SHIFT) {
	case KVM_STATS_UNIT_SECONDS:
		return "seconds";
	case KVM_STATS_UNIT_BYTES:
		return "bytes";
	case KVM_STATS_UNIT_CYCLES:
		return "cycles";
	default:
		return NULL;
	}
}

/* Unit tokens a descriptor name may already end with, per unit. */
static const char *const seconds_tokens[] = { "_ns",   "_us",	"_ms",	    "_s",
					      "_sec",  "_secs", "_seconds", "_nsec",
					      "_usec", "_msec", NULL };
static const char *const bytes_tokens[] = { "_bytes", "_b",  "_kb",  "_kib", "_mb",
					    "_mib",   "_gb", "_gib", NULL };
static const char *const cycles_tokens[] = { "_cycles", NULL };

static const char *const *unit_tokens(const struct stat_flags *f)
{
	switch (f->unit << KVM_STATS_UNIT_SHIFT) {
	case KVM_STATS_UNIT_SECONDS:
		return seconds_tokens;
	case KVM_STATS_UNIT_BYTES:
		return bytes_tokens;
	case KVM_STATS_UNIT_CYCLES:
		return cycles_tokens;
	default:
		return NULL;
	}
}

/* Drop suffix from s[0..*len) if present and something is left before it. */
static bool strip_suffix(const char *s, size_t *len, const char *suffix)
{
	size_t n = strlen(suffix);

	if (*len <= n || memcmp(s + *len - n, suffix, n) != 0)
		return false;
	*len -= n;
	return true;
}

static int sanitise(const char *name, char *out, size_t out_size, size_t *len)
{
	size_t i;

	for (i = 0; name[i]; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x21 || c > 0x7e)
			return -EINVAL;
		if (i + 1 >= out_size)
			return -ENAMETOOLONG;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			c = '_';
		out[i] = (char)c;
	}
	if (i == 0)
		return -EINVAL;
	out[i] = '\0';
	*len = i;
	return 0;
}

int metric_family_name(enum stat_scope scope, const char *desc_name, const struct stat_flags *f,
		       char *out, size_t out_size)
{
	const char *prefix = scope == SCOPE_VM ? "kvm_vm_" : "kvm_vcpu_";
	const char *const *tok = unit_tokens(f);
	const char *unit = metric_unit_name(f);
	char base[METRIC_NAME_MAX];
	size_t len;
	int n, rc;

	rc = sanitise(desc_name, base, sizeof(base), &len);
	if (rc < 0)
		return rc;
	if (is_hist(f))
		strip_suffix(base, &len, "_hist");
	for (; tok && *tok; tok++)
		if (strip_suffix(base, &len, *tok))
			break;
	n = snprintf(out, out_size, "%s%.*s%s%s", prefix, (int)len, base, unit ? "_" : "",
		     unit ? unit : "");
	if (n < 0 || (size_t)n >= out_size)
		return -ENAMETOOLONG;
	return n;
}

/* "00".."99": two digits per division, half the divisions of one at a time. */
const char metric_digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
				     "25262728293031323334353637383940414243444546474849"
				     "50515253545556575859606162636465666768697071727374"
				     "75767778798081828384858687888990919293949596979899";

int metric_format_u64(uint64_t v, char *out)
{
	int n = metric_u64_text(v, out);

	out[n] = '\0';
	return n;
}

/* raw * 10^-e as an exact decimal with no trailing zeros. */
static int format_pow10_negative(uint64_t raw, int e, char *out)
{
	char digits[24];
	int len = metric_format_u64(raw, digits), n = 0, i, end;

	if (raw == 0)
		return metric_format_u64(0, out);
	if (len > e) {
		memcpy(out, digits, (size_t)(len - e));
		n = len - e;
		out[n++] = '.';
		memcpy(out + n, digits + len - e, (size_t)e);
		n += e;
	} else {
		out[n++] = '0';
		out[n++] = '.';
		for (i = 0; i < e - len; i++)
			out[n++] = '0';
		memcpy(out + n, digits, (size_t)len);
		n += len;
	}
	end = n;
	while (out[end - 1] == '0')
		end--;
	if (out[end - 1] == '.')
		end--;
	out[end] = '\0';
	return end;
}

int metric_format_scaled(uint64_t raw, struct metric_scale scale, char *out)
{
	int n;

	if (scale.base2) {
		n = snprintf(out, METRIC_NUM_MAX, "%.17g", ldexp((double)raw, scale.exponent));
		return n;
	}
	if (scale.exponent == 0 || raw == 0)
		return metric_format_u64(raw, out);
	if (scale.exponent < 0)
		return format_pow10_negative(raw, -scale.exponent, out);
	n = metric_format_u64(raw, out);
	memset(out + n, '0', (size_t)scale.exponent);
	n += scale.exponent;
	out[n] = '\0';
	return n;
}
