/* SPDX-License-Identifier: MIT */
/* render_bpf - see render_bpf.h. */
#include "render_bpf.h"

#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf_layout.h"
#include "bpfview.h"
#include "exit_reasons.h"
#include "metric.h"
#include "statfilter.h"

#define MAX_KEYS 128 /* distinct reasons ranked per VM and family */

enum fam_kind { F_USER, F_HW, F_HIST };

static const struct fam {
	const char *name;
	enum fam_kind kind;
	const char *help;
} fams[] = {
	{ "kvm_vcpu_exits_by_reason", F_HW,
	  "Hardware exits of the vCPU to KVM, by VMX or SVM exit reason (BPF, kvm_exit)." },
	{ "kvm_vcpu_userspace_exits", F_USER,
	  "Returns of KVM_RUN to the VMM, by KVM_EXIT_* reason (BPF, kvm_userspace_exit)." },
	{ "kvm_vcpu_exit_roundtrip_seconds", F_HIST,
	  "Time from an exit to the vCPU's next entry, by kind (hardware: kvm_exit to "
	  "kvm_entry; userspace: exit to the next KVM_RUN) and reason (BPF)." },
};

static struct {
	bool ready;
	struct stat_filter families;
	regex_t inc, exc;
	bool has_inc, has_exc;
	unsigned top;
	char le[KX_HIST_BUCKETS][METRIC_NUM_MAX];
} C;

static int compile(regex_t *re, const char *pattern, const char *what, char *why, size_t size)
{
	char anchored[CONFIG_PATTERN_MAX + 8];
	int rc;

	snprintf(anchored, sizeof(anchored), "^(%s)$", pattern);
	rc = regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		char err[96];

		regerror(rc, re, err, sizeof(err));
		snprintf(why, size, "%s: %s", what, err);
		return -EINVAL;
	}
	return 0;
}

static void unconfigure(void)
{
	if (!C.ready)
		return;
	stat_filter_free(&C.families);
	if (C.has_inc)
		regfree(&C.inc);
	if (C.has_exc)
		regfree(&C.exc);
	memset(&C, 0, sizeof(C));
}

int render_bpf_configure(const struct config *cfg, char *why, size_t why_size)
{
	const struct metric_scale ns = { 0, -9 };
	int rc;

	unconfigure();
	if (!cfg)
		return 0;
	rc = stat_filter_init(&C.families, cfg->metrics_include, cfg->metrics_exclude,
			      cfg->histograms, why, why_size);
	if (rc < 0)
		return rc;
	C.ready = true;
	if (cfg->reasons_include[0] &&
	    (rc = compile(&C.inc, cfg->reasons_include, "reasons_include", why, why_size)) < 0)
		goto fail;
	C.has_inc = cfg->reasons_include[0];
	if (cfg->reasons_exclude[0] &&
	    (rc = compile(&C.exc, cfg->reasons_exclude, "reasons_exclude", why, why_size)) < 0)
		goto fail;
	C.has_exc = cfg->reasons_exclude[0];
	C.top = cfg->reasons_top;
	/* bucket b holds round trips of bit length <= KX_HIST_MIN_BITS + b ns */
	for (unsigned b = 0; b + 1 < KX_HIST_BUCKETS; b++)
		metric_format_scaled((1ull << (KX_HIST_MIN_BITS + b)) - 1, ns, C.le[b]);
	snprintf(C.le[KX_HIST_BUCKETS - 1], METRIC_NUM_MAX, "+Inf");
	return 0;
fail:
	unconfigure();
	return rc;
}

/* One reason of one vCPU in one family. */
struct item {
	uint64_t key; /* ranks and merges: reason, with isa or kind above bit 32 */
	uint64_t count;
	const struct kx_hist *hist; /* F_HIST */
	char kind[12];		    /* F_HIST: "hardware" / "userspace" */
	char reason[EXIT_REASON_NAME_MAX];
};

/* What one vCPU's slot holds for a family; n_items clamped to the layout. */
struct vcpu_part {
	union {
		struct {
			uint64_t mask;
			uint64_t v[KX_UEXIT_REASONS];
		} user;
		struct {
			uint32_t n, pad;
			uint64_t overflow;
			struct kx_hw e[KX_HW_ENTRIES];
		} hw;
		struct {
			uint32_t n;
			struct kx_hist e[KX_HIST_ENTRIES];
		} hist;
	} u;
	struct item items[KX_UEXIT_REASONS + KX_HW_ENTRIES];
	size_t n_items;
	uint64_t other; /* counted but not named (overflow, reasons >= 63) */
};

static bool reason_allowed(const char *name)
{
	if (C.has_inc && regexec(&C.inc, name, 0, NULL, 0))
		return false;
	return !(C.has_exc && !regexec(&C.exc, name, 0, NULL, 0));
}

static void add_item(struct vcpu_part *p, uint64_t key, uint64_t count, const char *known,
		     uint32_t reason)
{
	struct item *it = &p->items[p->n_items];

	exit_reason_label(known, reason, it->reason, sizeof(it->reason));
	if (!reason_allowed(it->reason))
		return;
	it->key = key;
	it->count = count;
	it->hist = NULL;
	it->kind[0] = '\0';
	p->n_items++;
}

static int read_user(const struct source *s, struct vcpu_part *p)
{
	int rc = bpfview_read(s, offsetof(struct kx_counts, uexit_mask), sizeof(uint64_t),
			      &p->u.user.mask);

	if (rc == 0)
		rc = bpfview_read(s, offsetof(struct kx_counts, uexit), sizeof(p->u.user.v),
				  p->u.user.v);
	for (unsigned r = 0; rc == 0 && r < KX_UEXIT_REASONS; r++) {
		if (!(p->u.user.mask >> r & 1))
			continue;
		if (r == KX_UEXIT_OTHER)
			p->other += p->u.user.v[r];
		else
			add_item(p, r, p->u.user.v[r], exit_reason_user(r), r);
	}
	return rc;
}

static int read_hw(const struct source *s, struct vcpu_part *p)
{
	int rc = bpfview_read(s, offsetof(struct kx_counts, n_hw), sizeof(uint32_t), &p->u.hw.n);

	if (rc == 0)
		rc = bpfview_read(s, offsetof(struct kx_counts, hw_overflow), sizeof(uint64_t),
				  &p->u.hw.overflow);
	if (rc == 0)
		rc = bpfview_read(s, offsetof(struct kx_counts, hw), sizeof(p->u.hw.e), p->u.hw.e);
	if (rc < 0)
		return rc;
	p->other = p->u.hw.overflow;
	for (uint32_t i = 0; i < p->u.hw.n && i < KX_HW_ENTRIES; i++) {
		const struct kx_hw *e = &p->u.hw.e[i];

		add_item(p, (uint64_t)e->isa << 32 | e->reason, e->count,
			 exit_reason_hw(e->isa, e->reason), e->reason);
	}
	return 0;
}

static int read_hist(const struct source *s, struct vcpu_part *p)
{
	int rc =
	    bpfview_read(s, offsetof(struct kx_counts, n_hist), sizeof(uint32_t), &p->u.hist.n);

	if (rc == 0)
		rc = bpfview_read(s, offsetof(struct kx_counts, hist), sizeof(p->u.hist.e),
				  p->u.hist.e);
	for (uint32_t i = 0; rc == 0 && i < p->u.hist.n && i < KX_HIST_ENTRIES; i++) {
		const struct kx_hist *e = &p->u.hist.e[i];
		uint32_t kind = e->kind & 0xff, isa = e->kind >> 8 & 0xff;
		uint64_t n = 0;
		size_t before = p->n_items;

		if (kind != KX_KIND_HW && kind != KX_KIND_USER)
			continue;
		for (unsigned b = 0; b < KX_HIST_BUCKETS; b++)
			n += e->bucket[b];
		add_item(p, (uint64_t)e->kind << 32 | e->reason, n,
			 kind == KX_KIND_USER ? exit_reason_user(e->reason)
					      : exit_reason_hw(isa, e->reason),
			 e->reason);
		if (p->n_items > before) {
			p->items[before].hist = e;
			snprintf(p->items[before].kind, sizeof(p->items[before].kind), "%s",
				 kind == KX_KIND_USER ? "userspace" : "hardware");
		}
	}
	return rc;
}

static int read_part(const struct source *s, enum fam_kind k, struct vcpu_part *p)
{
	p->n_items = 0;
	p->other = 0;
	if (k == F_USER)
		return read_user(s, p);
	if (k == F_HW)
		return read_hw(s, p);
	return read_hist(s, p);
}

/* The reasons of a VM ranked by count: keys[0..n) hold the top ones. */
struct ranking {
	uint64_t key[MAX_KEYS], total[MAX_KEYS];
	size_t n;
	bool all; /* no top-N: every reason is kept */
};

static void rank_add(struct ranking *r, uint64_t key, uint64_t count)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->key[i] == key) {
			r->total[i] += count;
			return;
		}
	if (r->n < MAX_KEYS) {
		r->key[r->n] = key;
		r->total[r->n++] = count;
	}
}

static void rank_cut(struct ranking *r, size_t top)
{
	/* selection of the top: n <= MAX_KEYS, top small */
	for (size_t i = 0; i < r->n && i < top; i++) {
		size_t best = i;

		for (size_t j = i + 1; j < r->n; j++)
			if (r->total[j] > r->total[best] ||
			    (r->total[j] == r->total[best] && r->key[j] < r->key[best]))
				best = j;
		uint64_t k = r->key[i], t = r->total[i];

		r->key[i] = r->key[best];
		r->total[i] = r->total[best];
		r->key[best] = k;
		r->total[best] = t;
	}
	if (r->n > top)
		r->n = top;
}

static bool rank_keeps(const struct ranking *r, uint64_t key)
{
	if (r->all)
		return true;
	for (size_t i = 0; i < r->n; i++)
		if (r->key[i] == key)
			return true;
	return false;
}

struct out {
	struct buf *b;
	bool om, created;
	size_t lines;
};

static void put_labels(struct out *o, const struct source *s, const struct item *it)
{
	buf_putc(o->b, '{');
	buf_put(o->b, s->labels, s->labels_len);
	if (it->kind[0]) {
		buf_puts(o->b, ",kind=\"");
		buf_puts(o->b, it->kind);
		buf_putc(o->b, '"');
	}
	buf_puts(o->b, ",reason=\"");
	buf_puts(o->b, it->reason);
	buf_putc(o->b, '"');
}

static void put_u64(struct buf *b, uint64_t v)
{
	char num[METRIC_NUM_MAX] = "";

	buf_put(b, num, (size_t)metric_format_u64(v, num));
}

static void put_created(struct out *o, const char *name, const struct source *s,
			const struct item *it)
{
	if (!o->created)
		return;
	buf_puts(o->b, name);
	buf_puts(o->b, "_created");
	put_labels(o, s, it);
	buf_putc(o->b, '}');
	buf_put(o->b, s->created.text, s->created.len);
	o->lines++;
}

static void put_counter(struct out *o, const struct fam *f, const struct source *s,
			const struct item *it)
{
	buf_puts(o->b, f->name);
	buf_puts(o->b, "_total");
	put_labels(o, s, it);
	buf_puts(o->b, "} ");
	put_u64(o->b, it->count);
	buf_putc(o->b, '\n');
	o->lines++;
	put_created(o, f->name, s, it);
}

static void put_hist(struct out *o, const struct fam *f, const struct source *s,
		     const struct item *it, const __u64 *bucket, uint64_t sum_ns)
{
	const struct metric_scale ns = { 0, -9 };
	char num[METRIC_NUM_MAX] = "";
	uint64_t cum = 0;

	for (unsigned b = 0; b < KX_HIST_BUCKETS; b++) {
		cum += bucket[b];
		buf_puts(o->b, f->name);
		buf_puts(o->b, "_bucket");
		put_labels(o, s, it);
		buf_puts(o->b, ",le=\"");
		buf_puts(o->b, C.le[b]);
		buf_puts(o->b, "\"} ");
		put_u64(o->b, cum);
		buf_putc(o->b, '\n');
	}
	buf_puts(o->b, f->name);
	buf_puts(o->b, "_count");
	put_labels(o, s, it);
	buf_puts(o->b, "} ");
	put_u64(o->b, cum);
	buf_putc(o->b, '\n');
	buf_puts(o->b, f->name);
	buf_puts(o->b, "_sum");
	put_labels(o, s, it);
	buf_puts(o->b, "} ");
	buf_put(o->b, num, (size_t)metric_format_scaled(sum_ns, ns, num));
	buf_putc(o->b, '\n');
	o->lines += KX_HIST_BUCKETS + 2;
	put_created(o, f->name, s, it);
}

/* Everything the top-N cut left out of one vCPU, per kind for histograms. */
struct rest {
	uint64_t count;
	__u64 bucket[2][KX_HIST_BUCKETS];
	uint64_t sum_ns[2];
	bool any[2];
};

static void emit_vcpu(struct out *o, const struct fam *f, const struct source *s,
		      struct vcpu_part *p, const struct ranking *r)
{
	struct rest rest;
	struct item other = { .reason = "other" };

	memset(&rest, 0, sizeof(rest));
	rest.count = p->other;
	for (size_t i = 0; i < p->n_items; i++) {
		const struct item *it = &p->items[i];

		if (rank_keeps(r, it->key)) {
			if (f->kind == F_HIST)
				put_hist(o, f, s, it, it->hist->bucket, it->hist->sum_ns);
			else
				put_counter(o, f, s, it);
			continue;
		}
		if (f->kind != F_HIST) {
			rest.count += it->count;
			continue;
		}
		int k = it->kind[0] == 'u';

		rest.any[k] = true;
		rest.sum_ns[k] += it->hist->sum_ns;
		for (unsigned b = 0; b < KX_HIST_BUCKETS; b++)
			rest.bucket[k][b] += it->hist->bucket[b];
	}
	if (f->kind != F_HIST) {
		other.count = rest.count;
		if (rest.count)
			put_counter(o, f, s, &other);
		return;
	}
	for (int k = 0; k < 2; k++) {
		if (!rest.any[k])
			continue;
		snprintf(other.kind, sizeof(other.kind), "%s", k ? "userspace" : "hardware");
		put_hist(o, f, s, &other, rest.bucket[k], rest.sum_ns[k]);
	}
}

static void head(struct out *o, const struct fam *f)
{
	const char *type = f->kind == F_HIST ? "histogram" : "counter";
	const char *total = f->kind == F_HIST ? "" : "_total";

	if (o->om)
		buf_printf(o->b, "# TYPE %s %s\n%s%s%s# HELP %s %s\n", f->name, type,
			   f->kind == F_HIST ? "# UNIT " : "", f->kind == F_HIST ? f->name : "",
			   f->kind == F_HIST ? " seconds\n" : "", f->name, f->help);
	else
		buf_printf(o->b, "# HELP %s%s %s\n# TYPE %s%s %s\n", f->name, total, f->help,
			   f->name, total, type);
}

/* One VM's vCPUs: sources[first, end) of the snapshot. */
static void render_vm(struct out *o, const struct fam *f, struct source *const *src, size_t n,
		      struct vcpu_part *p)
{
	struct ranking *r = calloc(1, sizeof(*r));

	if (!r)
		return;
	r->all = C.top == 0;
	if (!r->all) {
		for (size_t i = 0; i < n; i++)
			if (read_part(src[i], f->kind, p) == 0)
				for (size_t j = 0; j < p->n_items; j++)
					rank_add(r, p->items[j].key, p->items[j].count);
		rank_cut(r, C.top);
	}
	for (size_t i = 0; i < n; i++)
		if (read_part(src[i], f->kind, p) == 0)
			emit_vcpu(o, f, src[i], p, r);
	free(r);
}

static void render_fam(struct out *o, const struct fam *f, const struct snapshot *snap,
		       struct vcpu_part *p)
{
	size_t i = 0;

	head(o, f);
	while (i < snap->n_sources) {
		size_t j = i;

		if (snap->sources[i]->vcpu < 0) {
			i++;
			continue;
		}
		while (j < snap->n_sources && snap->sources[j]->vm == snap->sources[i]->vm &&
		       snap->sources[j]->vcpu >= 0)
			j++;
		render_vm(o, f, snap->sources + i, j - i, p);
		i = j;
	}
}

static void render_sched(struct out *o, const struct snapshot *snap, bool delay)
{
	const struct metric_scale ns = { 0, -9 };
	const char *name = delay ? "kvm_vcpu_run_delay_seconds" : "kvm_vcpu_thread_cpu_seconds";
	char num[METRIC_NUM_MAX] = "";

	if (!stat_filter_keeps_family(&C.families, name, true, false))
		return;
	if (o->om)
		buf_printf(o->b, "# TYPE %s counter\n# UNIT %s seconds\n# HELP %s ", name, name,
			   name);
	else
		buf_printf(o->b, "# HELP %s_total ", name);
	buf_puts(o->b, delay ? "Time the vCPU thread waited on a run queue for a CPU "
			       "(schedstat run delay)."
			     : "CPU time of the vCPU thread, guest and host side (schedstat).");
	if (!o->om)
		buf_printf(o->b, "\n# TYPE %s_total counter", name);
	buf_putc(o->b, '\n');
	for (size_t i = 0; i < snap->n_sources; i++) {
		const struct source *s = snap->sources[i];

		if (s->vcpu < 0 || !atomic_load_explicit(&s->sched_ok, memory_order_acquire))
			continue;
		buf_printf(o->b, "%s_total{%s} ", name, s->labels);
		buf_put(o->b, num,
			(size_t)metric_format_scaled(
			    atomic_load_explicit(delay ? &s->sched_delay_ns : &s->sched_run_ns,
						 memory_order_relaxed),
			    ns, num));
		buf_putc(o->b, '\n');
		o->lines++;
		if (o->created) {
			buf_printf(o->b, "%s_created{%s}", name, s->labels);
			buf_put(o->b, s->created.text, s->created.len);
		}
	}
}

size_t render_bpf_kvm(const struct snapshot *snap, bool om, bool created, struct buf *b)
{
	struct out o = { .b = b, .om = om, .created = created };
	struct vcpu_part *p;

	if (!snap || !C.ready)
		return 0;
	render_sched(&o, snap, true);
	render_sched(&o, snap, false);
	if (!bpfview_enabled())
		return o.lines;
	p = malloc(sizeof(*p));
	if (!p)
		return o.lines;
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++)
		if (stat_filter_keeps_family(&C.families, fams[f].name, fams[f].kind != F_HIST,
					     fams[f].kind == F_HIST))
			render_fam(&o, &fams[f], snap, p);
	free(p);
	return o.lines;
}

void render_bpf_self(bool om, bool created, double created_s, struct buf *b)
{
	struct bpfview_meta m = { 0 };
	bool on = bpfview_meta(&m) == 0;
	static const char *const help[2] = {
		"vCPU threads that found no free BPF slot (see [daemon] bpf_slots).",
		"KVM_RUN entries where the BPF program did not find the running vCPU.",
	};
	const char *names[2] = { "kvmstatd_bpf_slots_full", "kvmstatd_bpf_vcpu_not_found" };
	uint64_t v[2] = { m.slots_full, m.no_vcpu };

	if (om)
		buf_printf(b, "# TYPE kvmstatd_bpf_enabled gauge\n# HELP kvmstatd_bpf_enabled %s\n",
			   "Whether exit telemetry (BPF) is on in this worker (1) or not (0).");
	else
		buf_printf(b, "# HELP kvmstatd_bpf_enabled %s\n# TYPE kvmstatd_bpf_enabled gauge\n",
			   "Whether exit telemetry (BPF) is on in this worker (1) or not (0).");
	buf_printf(b, "kvmstatd_bpf_enabled %d\n", on ? 1 : 0);
	for (int i = 0; on && i < 2; i++) {
		if (om)
			buf_printf(b, "# TYPE %s counter\n# HELP %s %s\n", names[i], names[i],
				   help[i]);
		else
			buf_printf(b, "# HELP %s_total %s\n# TYPE %s_total counter\n", names[i],
				   help[i], names[i]);
		buf_printf(b, "%s_total %" PRIu64 "\n", names[i], v[i]);
		if (om && created)
			buf_printf(b, "%s_created %.3f\n", names[i], created_s);
	}
}
