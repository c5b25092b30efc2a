/* SPDX-License-Identifier: MIT */
/* render_schedstat - see render_schedstat.h. */
#include "render_schedstat.h"

#include <stdatomic.h>
#include <stdint.h>

#include "metric.h"

static void sched_head(struct render_page *pg, const char *name, bool delay)
{
	if (pg->om)
		buf_printf(pg->b, "# TYPE %s counter\n# UNIT %s seconds\n# HELP %s ", name, name,
			   name);
	else
		buf_printf(pg->b, "# HELP %s_total ", name);
	buf_puts(pg->b, delay ? "Time the vCPU thread waited on a run queue for a CPU "
				"(schedstat run delay)."
			      : "CPU time of the vCPU thread, guest and host side (schedstat).");
	if (!pg->om)
		buf_printf(pg->b, "\n# TYPE %s_total counter", name);
	buf_putc(pg->b, '\n');
}

static void put_sched(struct render_page *pg, const char *name, const struct render_labels *l,
		      uint64_t ns)
{
	const struct metric_scale scale = { 0, -9 };
	char num[METRIC_NUM_MAX] = "";

	if (!render_admit(pg, 1u + pg->created))
		return;
	buf_puts(pg->b, name);
	buf_puts(pg->b, "_total{");
	buf_put(pg->b, l->s, l->len);
	buf_puts(pg->b, "} ");
	buf_put(pg->b, num, (size_t)metric_format_scaled(ns, scale, num));
	buf_putc(pg->b, '\n');
	if (pg->created) {
		buf_puts(pg->b, name);
		buf_puts(pg->b, "_created{");
		buf_put(pg->b, l->s, l->len);
		buf_putc(pg->b, '}');
		buf_put(pg->b, l->created->text, l->created->len);
	}
}

/* One VM's vCPUs src[0, n): per vCPU, or summed per VM. */
static void sched_vm(struct render_page *pg, const char *name, bool delay,
		     struct source *const *src, size_t n)
{
	struct render_labels l;
	uint64_t sum = 0;
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		const struct source *s = src[i];
		uint64_t ns;

		if (!atomic_load_explicit(&s->sched_ok, memory_order_acquire))
			continue;
		ns = atomic_load_explicit(delay ? &s->sched_delay_ns : &s->sched_run_ns,
					  memory_order_relaxed);
		sum += ns;
		any = true;
		if (!pg->o.vcpu_sum) {
			l = render_source_labels(s);
			put_sched(pg, name, &l, ns);
		}
	}
	if (any && pg->o.vcpu_sum) {
		l = render_vm_labels(src[0]->vm);
		put_sched(pg, name, &l, sum);
	}
}

static void render_family(struct render_page *pg, const struct snapshot *snap,
			  const struct stat_filter *filter, bool delay)
{
	const char *name = delay ? "kvm_vcpu_run_delay_seconds" : "kvm_vcpu_thread_cpu_seconds";

	if (!stat_filter_keeps_family(filter, name, true, false))
		return;
	sched_head(pg, name, delay);
	for (size_t i = 0, j; render_next_vcpu_run(snap, &i, &j); i = j)
		sched_vm(pg, name, delay, snap->sources + i, j - i);
}

void render_schedstat(const struct snapshot *snap, const struct stat_filter *filter,
		      struct render_page *pg)
{
	render_family(pg, snap, filter, true);
	render_family(pg, snap, filter, false);
}
