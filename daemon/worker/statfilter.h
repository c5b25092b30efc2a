/* SPDX-License-Identifier: MIT */
/*
 * statfilter - which KVM stats become families: [metrics] include,
 * exclude and histograms.
 *
 * Patterns are POSIX extended regular expressions matched against the
 * whole name (anchored, as in Prometheus relabelling), where a stat's name
 * is its family name or, for a counter, that name with "_total": both
 * "kvm_vcpu_exits" and "kvm_vcpu_exits_total" select the same counter.
 * A stat is kept when include (if set) matches, exclude (if set) does not,
 * and it is not a histogram while histograms are off.
 */
#ifndef KVMSTATD_STATFILTER_H
#define KVMSTATD_STATFILTER_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

struct schema_stat;

struct stat_filter {
	bool has_include, has_exclude;
	regex_t include, exclude;
	bool no_histograms;
};

/*
 * Compile the patterns (empty: not set). On error returns -EINVAL and
 * writes which pattern and why into err.
 */
int stat_filter_init(struct stat_filter *f, const char *include, const char *exclude,
		     bool histograms, char *err, size_t err_size);
void stat_filter_free(struct stat_filter *f);

/* f may be NULL: every stat is kept. */
bool stat_filter_keeps(const struct stat_filter *f, const struct schema_stat *st);

/* The same decision for a family that has no schema_stat (exit telemetry). */
bool stat_filter_keeps_family(const struct stat_filter *f, const char *family, bool counter,
			      bool histogram);

#endif
