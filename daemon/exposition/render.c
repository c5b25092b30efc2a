/* SPDX-License-Identifier: MIT */
/* render - see render.h. */
#include "render.h"

#include <errno.h>

#include "render_bpf.h"
#include "render_schedstat.h"
#include "render_stats.h"

/* The KVM parts of the page, in page order. */
static int render_kvm(const struct snapshot *snap, const struct render_config *rc,
		      struct render_page *pg)
{
	int err = render_stats(snap, pg);

	if (err == 0 && rc->schedstat)
		render_schedstat(snap, rc->filter, pg);
	if (err == 0 && rc->bpf)
		render_bpf_kvm(rc->bpf, rc->view, rc->filter, snap, pg);
	return err;
}

int render_metrics(const struct snapshot *snap, const struct selfstats *stats,
		   enum render_format fmt, const struct render_config *rc, struct buf *out,
		   struct render_result *res)
{
	static const struct render_config defaults = { .filter = NULL };
	struct render_page pg = { .om = fmt == FMT_OPENMETRICS_100, .b = out };
	int err = 0;

	if (!rc)
		rc = &defaults;
	pg.o = rc->opts;
	pg.created = pg.om && !pg.o.no_created;
	if (snap && snap->n_vms)
		err = render_kvm(snap, rc, &pg);
	if (err == 0 && stats) {
		struct page_counts page = { pg.res.series, pg.res.dropped, pg.created };

		selfstats_render(stats, snap ? (unsigned)(snap->n_sources - snap->n_vcpus) : 0,
				 snap ? (unsigned)snap->n_vcpus : 0, &page, pg.om, out);
		render_bpf_self(rc->view, pg.om, pg.created, stats->start_time, out);
	}
	if (err == 0 && pg.om)
		buf_put(out, "# EOF\n", 6);
	if (err == 0 && out->failed)
		err = -ENOMEM;
	if (res)
		*res = pg.res;
	return err;
}
