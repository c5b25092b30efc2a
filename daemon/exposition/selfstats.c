/* SPDX-License-Identifier: MIT */
/* selfstats - see selfstats.h. Rendered with printf: a few dozen lines. */
#include "selfstats.h"

#include <stdio.h>

/* om: 0 for text 0.0.4, else OpenMetrics, with _created samples if OM_CREATED */
#define OM_CREATED 2

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

/*
 * One counter sample (labels may be ""), and in OpenMetrics its _created:
 * the start of whoever counts it (the worker, or the helper for the
 * totals it hands to each new worker).
 */
static void count(struct buf *b, int om, const char *name, const char *labels, double v,
		  double created)
{
	buf_printf(b, "%s_total%s %.17g\n", name, labels, v);
	if (om == OM_CREATED)
		buf_printf(b, "%s_created%s %.3f\n", name, labels, created);
}

static void counter(struct buf *b, int om, const char *name, const char *help, uint64_t v,
		    double created)
{
	head(b, om, name, "counter", NULL, help);
	count(b, om, name, "", (double)v, created);
}

static void seconds_counter(struct buf *b, int om, const char *name, const char *help, uint64_t ns,
			    double created)
{
	head(b, om, name, "counter", "seconds", help);
	count(b, om, name, "", (double)ns / 1e9, created);
}

static void gauge(struct buf *b, int om, const char *name, const char *unit, const char *help,
		  double v)
{
	head(b, om, name, "gauge", unit, help);
	buf_printf(b, "%s %.17g\n", name, v);
}

static void render_rejected(const struct selfstats *st, int om, struct buf *b)
{
	char labels[64];

	head(b, om, "kvmstatd_registrations_rejected", "counter", NULL,
	     "Registrations refused by the helper, by reason.");
	for (int r = 0; r < REJ__COUNT; r++) {
		snprintf(labels, sizeof(labels), "{reason=\"%s\"}", reject_reason_name(r));
		count(b, om, "kvmstatd_registrations_rejected", labels,
		      (double)stat_get(&st->rejected[r]), st->helper_start_time);
	}
}

static void render_skipped(const struct selfstats *st, int om, struct buf *b)
{
	static const char *const why[3] = { "{reason=\"unknown\"}", "{reason=\"invalid\"}",
					    "{reason=\"collision\"}" };
	const atomic_uint_fast64_t *c[3] = { &st->stats_skipped_unknown, &st->stats_skipped_invalid,
					     &st->stats_skipped_collision };

	head(b, om, "kvmstatd_stats_skipped", "counter", NULL,
	     "Descriptors skipped while reading schemas, by reason.");
	for (int i = 0; i < 3; i++)
		count(b, om, "kvmstatd_stats_skipped", why[i], (double)stat_get(c[i]),
		      st->start_time);
}

static void render_http(const struct selfstats *st, int om, struct buf *b)
{
	static const char *const refusals[HREF__COUNT] = {
		"per_client", "full", "room", "deadline", "query_args", "failed_checks", "busy",
	};
	static const char *const checks[HCHK__COUNT] = { "remembered", "passed", "failed" };
	char labels[64];

	head(b, om, "kvmstatd_http_refused", "counter", NULL,
	     "HTTP connections or requests turned away or cut, by reason.");
	for (int r = 0; r < HREF__COUNT; r++) {
		snprintf(labels, sizeof(labels), "{reason=\"%s\"}", refusals[r]);
		count(b, om, "kvmstatd_http_refused", labels,
		      (double)stat_get(&st->http_refused[r]), st->start_time);
	}
	head(b, om, "kvmstatd_http_password_checks", "counter", NULL,
	     "Basic auth passwords checked, by result: remembered (no bcrypt), passed, failed.");
	for (int r = 0; r < HCHK__COUNT; r++) {
		snprintf(labels, sizeof(labels), "{result=\"%s\"}", checks[r]);
		count(b, om, "kvmstatd_http_password_checks", labels,
		      (double)stat_get(&st->http_checks[r]), st->start_time);
	}
}

static void render_sources(const struct selfstats *st, unsigned n_vms, unsigned n_vcpus, int om,
			   struct buf *b)
{
	uint64_t starts = stat_get(&st->worker_starts);

	head(b, om, "kvmstatd_sources", "gauge", NULL, "Stats fds polled, by kind.");
	buf_printf(b, "kvmstatd_sources{kind=\"vm\"} %u\nkvmstatd_sources{kind=\"vcpu\"} %u\n",
		   n_vms, n_vcpus);
	render_rejected(st, om, b);
	render_skipped(st, om, b);
	counter(b, om, "kvmstatd_sources_refused",
		"Stats fds refused by the worker because their layout failed validation.",
		stat_get(&st->sources_refused), st->start_time);
	counter(b, om, "kvmstatd_vms_exited", "VMs whose VMM exited or unregistered them.",
		stat_get(&st->vms_exited), st->start_time);
	counter(b, om, "kvmstatd_vms_discovered",
		"VMs found by the helper's /proc scan rather than registered.",
		stat_get(&st->vms_discovered), st->helper_start_time);
	counter(b, om, "kvmstatd_worker_restarts",
		"Workers the helper started to replace one that died.", starts ? starts - 1 : 0,
		st->helper_start_time);
}

static void render_poll(const struct selfstats *st, int om, struct buf *b)
{
	counter(b, om, "kvmstatd_polls", "Poll ticks completed.", stat_get(&st->polls),
		st->start_time);
	counter(b, om, "kvmstatd_poll_missed_ticks",
		"Ticks skipped because a poll took longer than the interval.",
		stat_get(&st->missed_ticks), st->start_time);
	counter(b, om, "kvmstatd_read_errors", "Failed or short preads of stats fds.",
		stat_get(&st->read_errors), st->start_time);
	gauge(b, om, "kvmstatd_last_poll_duration_seconds", "seconds",
	      "Wall time of the last poll tick.", (double)stat_get(&st->poll_wall_ns_last) / 1e9);
	gauge(b, om, "kvmstatd_last_poll_cpu_seconds", "seconds",
	      "CPU time of the poller thread in the last tick.",
	      (double)stat_get(&st->poll_cpu_ns_last) / 1e9);
	seconds_counter(b, om, "kvmstatd_poll_duration_seconds",
			"Wall time spent polling, summed over ticks.",
			stat_get(&st->poll_wall_ns_sum), st->start_time);
	seconds_counter(b, om, "kvmstatd_poll_cpu_seconds",
			"CPU time of the poller thread spent polling, summed over ticks.",
			stat_get(&st->poll_cpu_ns_sum), st->start_time);
	gauge(b, om, "kvmstatd_history_bytes", "bytes",
	      "Memory held by the sources' histories of recent samples ([poll] history_s).",
	      (double)stat_get(&st->history_bytes));
	gauge(b, om, "kvmstatd_history_seconds", "seconds",
	      "Window of recent samples each source keeps for rates and sparklines.",
	      st->history_s);
	gauge(b, om, "kvmstatd_history_limit_bytes", "bytes",
	      "The [poll] history_max_mib cap on all histories together.",
	      (double)st->history_limit_bytes);
	counter(b, om, "kvmstatd_history_refused",
		"Sources polled without a history because history_max_mib was reached.",
		stat_get(&st->history_refused), st->start_time);
}

static void render_pages(const struct selfstats *st, const struct page_counts *page, int om,
			 struct buf *b)
{
	double t0 = st->start_time;

	counter(b, om, "kvmstatd_scrapes", "Requests for /metrics answered with a page.",
		stat_get(&st->scrapes), t0);
	seconds_counter(b, om, "kvmstatd_scrape_duration_seconds",
			"Time from a /metrics request to its page (rendered or cached), summed.",
			stat_get(&st->scrape_ns_sum), t0);
	counter(b, om, "kvmstatd_renders",
		"Pages rendered: at most one per format and poll tick, shared by its scrapes.",
		stat_get(&st->renders), t0);
	seconds_counter(b, om, "kvmstatd_render_duration_seconds",
			"Time spent rendering pages, summed.", stat_get(&st->render_ns_sum), t0);
	counter(b, om, "kvmstatd_compressions",
		"Pages gzip-compressed: at most one per format and poll tick.",
		stat_get(&st->compressions), t0);
	seconds_counter(b, om, "kvmstatd_compress_duration_seconds",
			"Time spent compressing pages, summed.", stat_get(&st->compress_ns_sum),
			t0);
	gauge(b, om, "kvmstatd_series", NULL,
	      "KVM sample lines in this page, exit telemetry included.", (double)page->series);
	gauge(b, om, "kvmstatd_series_limit", NULL,
	      "The [metrics] max_series cap on KVM sample lines per page, exit telemetry "
	      "included (0: none).",
	      (double)st->max_series);
	counter(b, om, "kvmstatd_series_dropped",
		"KVM sample lines left out of pages because of max_series, summed over renders.",
		stat_get(&st->series_dropped) + page->dropped, t0);
}

void selfstats_render(const struct selfstats *st, unsigned n_vms, unsigned n_vcpus,
		      const struct page_counts *page, int om, struct buf *b)
{
	om = !om ? 0 : page->created ? OM_CREATED : 1;
	render_sources(st, n_vms, n_vcpus, om, b);
	render_poll(st, om, b);
	render_pages(st, page, om, b);
	render_http(st, om, b);
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
