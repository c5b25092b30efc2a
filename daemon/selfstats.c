/* SPDX-License-Identifier: MIT */
/* selfstats - see selfstats.h. Rendered with printf: a few dozen lines. */
#include "selfstats.h"

#include <stdio.h>

static const char *const reason_names[REJ__COUNT] = {
	"bad_message", "bad_fd",    "fd_count",	   "not_owner", "limit",
	"unknown_vm",  "duplicate", "not_allowed", "rate",
};

const char *reject_reason_name(enum reject_reason r)
{
	return (unsigned)r < REJ__COUNT ? reason_names[r] : "unknown";
}

/* Header of a family; counters get _total in the text format's names. */
static void head(struct buf *b, int om, const char *name, const char *type, const char *unit,
		 const char *help)
{
	int counter = type[0] == 'c';

	if (om) {
		buf_printf(b, "# TYPE %s %s\n", name, type);
		if (unit)
			buf_printf(b, "# UNIT %s %s\n", name, unit);
		buf_printf(b, "# HELP %s %s\n", name, help);
	} else {
		buf_printf(b, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, counter ? "_total" : "",
			   help, name, counter ? "_total" : "", type);
	}
}

static void counter(struct buf *b, int om, const char *name, const char *unit, const char *help,
		    uint64_t v)
{
	head(b, om, name, "counter", unit, help);
	buf_printf(b, "%s_total %llu\n", name, (unsigned long long)v);
}

static void gauge(struct buf *b, int om, const char *name, const char *unit, const char *help,
		  double v)
{
	head(b, om, name, "gauge", unit, help);
	buf_printf(b, "%s %.17g\n", name, v);
}

static void render_sources(const struct selfstats *st, unsigned n_vms, unsigned n_vcpus, int om,
			   struct buf *b)
{
	head(b, om, "kvmstatd_sources", "gauge", NULL, "Stats fds polled, by kind.");
	buf_printf(b, "kvmstatd_sources{kind=\"vm\"} %u\nkvmstatd_sources{kind=\"vcpu\"} %u\n",
		   n_vms, n_vcpus);
	head(b, om, "kvmstatd_registrations_rejected", "counter", NULL,
	     "Registrations refused by the helper, by reason.");
	for (int r = 0; r < REJ__COUNT; r++)
		buf_printf(b, "kvmstatd_registrations_rejected_total{reason=\"%s\"} %llu\n",
			   reason_names[r], (unsigned long long)stat_get(&st->rejected[r]));
	head(b, om, "kvmstatd_stats_skipped", "counter", NULL,
	     "Descriptors skipped while reading schemas, by reason.");
	buf_printf(b,
		   "kvmstatd_stats_skipped_total{reason=\"unknown\"} %llu\n"
		   "kvmstatd_stats_skipped_total{reason=\"invalid\"} %llu\n"
		   "kvmstatd_stats_skipped_total{reason=\"collision\"} %llu\n",
		   (unsigned long long)stat_get(&st->stats_skipped_unknown),
		   (unsigned long long)stat_get(&st->stats_skipped_invalid),
		   (unsigned long long)stat_get(&st->stats_skipped_collision));
	counter(b, om, "kvmstatd_sources_refused", NULL,
		"Stats fds refused by the worker because their layout failed validation.",
		stat_get(&st->sources_refused));
	counter(b, om, "kvmstatd_vms_exited", NULL, "VMs whose VMM exited or unregistered them.",
		stat_get(&st->vms_exited));
	counter(b, om, "kvmstatd_vms_discovered", NULL,
		"VMs found by the helper's /proc scan rather than registered.",
		stat_get(&st->vms_discovered));
	counter(b, om, "kvmstatd_worker_restarts", NULL,
		"Workers the helper started to replace one that died.",
		stat_get(&st->worker_starts) ? stat_get(&st->worker_starts) - 1 : 0);
}

void selfstats_render(const struct selfstats *st, unsigned n_vms, unsigned n_vcpus, int om,
		      struct buf *b)
{
	uint64_t polls = stat_get(&st->polls);

	render_sources(st, n_vms, n_vcpus, om, b);
	counter(b, om, "kvmstatd_polls", NULL, "Poll ticks completed.", polls);
	counter(b, om, "kvmstatd_poll_missed_ticks", NULL,
		"Ticks skipped because a poll took longer than the interval.",
		stat_get(&st->missed_ticks));
	counter(b, om, "kvmstatd_read_errors", NULL, "Failed or short preads of stats fds.",
		stat_get(&st->read_errors));
	gauge(b, om, "kvmstatd_last_poll_duration_seconds", "seconds",
	      "Wall time of the last poll tick.", (double)stat_get(&st->poll_wall_ns_last) / 1e9);
	gauge(b, om, "kvmstatd_last_poll_cpu_seconds", "seconds",
	      "CPU time of the poller thread in the last tick.",
	      (double)stat_get(&st->poll_cpu_ns_last) / 1e9);
	head(b, om, "kvmstatd_poll_duration_seconds", "counter", "seconds",
	     "Wall time spent polling, summed over ticks.");
	buf_printf(b, "kvmstatd_poll_duration_seconds_total %.9f\n",
		   (double)stat_get(&st->poll_wall_ns_sum) / 1e9);
	head(b, om, "kvmstatd_poll_cpu_seconds", "counter", "seconds",
	     "CPU time of the poller thread spent polling, summed over ticks.");
	buf_printf(b, "kvmstatd_poll_cpu_seconds_total %.9f\n",
		   (double)stat_get(&st->poll_cpu_ns_sum) / 1e9);
	counter(b, om, "kvmstatd_scrapes", NULL, "Metrics pages rendered.", stat_get(&st->scrapes));
	head(b, om, "kvmstatd_scrape_duration_seconds", "counter", "seconds",
	     "Time spent rendering metrics pages, summed over scrapes.");
	buf_printf(b, "kvmstatd_scrape_duration_seconds_total %.9f\n",
		   (double)stat_get(&st->scrape_ns_sum) / 1e9);
	gauge(b, om, "kvmstatd_start_time_seconds", "seconds", "Start time of the worker.",
	      st->start_time);
	if (om)
		buf_printf(
		    b,
		    "# TYPE kvmstatd_build info\n# HELP kvmstatd_build Version of kvmstatd.\n"
		    "kvmstatd_build_info{version=\"%s\"} 1\n",
		    KVMSTATD_VERSION);
	else
		buf_printf(b,
			   "# HELP kvmstatd_build_info Version of kvmstatd.\n# TYPE "
			   "kvmstatd_build_info gauge\n"
			   "kvmstatd_build_info{version=\"%s\"} 1\n",
			   KVMSTATD_VERSION);
}
