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

/* Where a render reads the telemetry from and how it filters reasons. */
struct bpf_in {
	const struct render_bpf *rb;
	const struct bpfview *view;
};

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

void render_bpf_fini(struct render_bpf *rb)
{
	if (rb->has_inc)
		regfree(&rb->inc);
	if (rb->has_exc)
		regfree(&rb->exc);
	memset(rb, 0, sizeof(*rb));
}

int render_bpf_init(struct render_bpf *rb, const struct config *cfg, char *why, size_t why_size)
{
	const struct metric_scale ns = { 0, -9 };
	int rc = 0;

	memset(rb, 0, sizeof(*rb));
	rb->top = cfg->reasons_top;
	if (cfg->reasons_include[0]) {
		rc = compile(&rb->inc, cfg->reasons_include, "reasons_include", why, why_size);
		rb->has_inc = rc == 0;
	}
	if (rc == 0 && cfg->reasons_exclude[0]) {
		rc = compile(&rb->exc, cfg->reasons_exclude, "reasons_exclude", why, why_size);
		rb->has_exc = rc == 0;
	}
	/* bucket b holds round trips of bit length <= KX_HIST_MIN_BITS + b ns */
	for (unsigned b = 0; b + 1 < KX_HIST_BUCKETS; b++)
		metric_format_scaled((1ull << (KX_HIST_MIN_BITS + b)) - 1, ns, rb->le[b]);
	snprintf(rb->le[KX_HIST_BUCKETS - 1], METRIC_NUM_MAX, "+Inf");
	if (rc < 0)
		render_bpf_fini(rb);
	return rc;
}

/* One series of a family: a reason of one vCPU, or of a VM's vCPUs summed. */
struct item {
	uint64_t key; /* ranks and merges: reason, with isa or kind in bits 32..47 */
	uint64_t count;
	uint64_t sum_ns;		  /* F_HIST */
	uint64_t bucket[KX_HIST_BUCKETS]; /* F_HIST, not cumulative */
	char kind[12];			  /* F_HIST: "hardware" / "userspace" */
	char reason[EXIT_REASON_NAME_MAX];
};

/* reason="other" (per kind for histograms): above every key a slot gives */
#define OTHER_KEY (~0ull - 1)

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
	/* every reason, then (after cut()) the kept ones and their "other" */
	struct item items[KX_UEXIT_REASONS + KX_HW_ENTRIES + 2];
	size_t n_items;
	uint64_t other; /* counted but not named (overflow, reasons >= 63) */
};

static bool reason_allowed(const struct render_bpf *rb, const char *name)
{
	if (rb->has_inc && regexec(&rb->inc, name, 0, NULL, 0))
		return false;
	return !(rb->has_exc && !regexec(&rb->exc, name, 0, NULL, 0));
}

static void add_item(const struct bpf_in *in, struct vcpu_part *p, uint64_t key, uint64_t count,
		     const char *known, uint32_t reason)
{
	struct item *it = &p->items[p->n_items];

	exit_reason_label(known, reason, it->reason, sizeof(it->reason));
	if (!reason_allowed(in->rb, it->reason))
		return;
	it->key = key;
	it->count = count;
	it->sum_ns = 0;
	memset(it->bucket, 0, sizeof(it->bucket));
	it->kind[0] = '\0';
	p->n_items++;
}

static int read_user(const struct bpf_in *in, const struct source *s, struct vcpu_part *p)
{
	int rc = bpfview_read(in->view, s, offsetof(struct kx_counts, uexit_mask), sizeof(uint64_t),
			      &p->u.user.mask);

	if (rc == 0)
		rc = bpfview_read(in->view, s, offsetof(struct kx_counts, uexit),
				  sizeof(p->u.user.v), p->u.user.v);
	for (unsigned r = 0; rc == 0 && r < KX_UEXIT_REASONS; r++) {
		if (!(p->u.user.mask >> r & 1))
			continue;
		if (r == KX_UEXIT_OTHER)
			p->other += p->u.user.v[r];
		else
			add_item(in, p, r, p->u.user.v[r], exit_reason_user(r), r);
	}
	return rc;
}

static int read_hw(const struct bpf_in *in, const struct source *s, struct vcpu_part *p)
{
	int rc = bpfview_read(in->view, s, offsetof(struct kx_counts, n_hw), sizeof(uint32_t),
			      &p->u.hw.n);

	if (rc == 0)
		rc = bpfview_read(in->view, s, offsetof(struct kx_counts, hw_overflow),
				  sizeof(uint64_t), &p->u.hw.overflow);
	if (rc == 0)
		rc = bpfview_read(in->view, s, offsetof(struct kx_counts, hw), sizeof(p->u.hw.e),
				  p->u.hw.e);
	if (rc < 0)
		return rc;
	p->other = p->u.hw.overflow;
	for (uint32_t i = 0; i < p->u.hw.n && i < KX_HW_ENTRIES; i++) {
		const struct kx_hw *e = &p->u.hw.e[i];

		add_item(in, p, (uint64_t)(e->isa & 0xff) << 32 | e->reason, e->count,
			 exit_reason_hw(e->isa, e->reason), e->reason);
	}
	return 0;
}

static int read_hist(const struct bpf_in *in, const struct source *s, struct vcpu_part *p)
{
	int rc = bpfview_read(in->view, s, offsetof(struct kx_counts, n_hist), sizeof(uint32_t),
			      &p->u.hist.n);

	if (rc == 0)
		rc = bpfview_read(in->view, s, offsetof(struct kx_counts, hist),
				  sizeof(p->u.hist.e), p->u.hist.e);
	for (uint32_t i = 0; rc == 0 && i < p->u.hist.n && i < KX_HIST_ENTRIES; i++) {
		const struct kx_hist *e = &p->u.hist.e[i];
		uint32_t kind = e->kind & 0xff, isa = e->kind >> 8 & 0xff;
		uint64_t n = 0;
		size_t before = p->n_items;

		if (kind != KX_KIND_HW && kind != KX_KIND_USER)
			continue;
		for (unsigned b = 0; b < KX_HIST_BUCKETS; b++)
			n += e->bucket[b];
		add_item(in, p, (uint64_t)e->kind << 32 | e->reason, n,
			 kind == KX_KIND_USER ? exit_reason_user(e->reason)
					      : exit_reason_hw(isa, e->reason),
			 e->reason);
		if (p->n_items > before) {
			struct item *it = &p->items[before];

			it->sum_ns = e->sum_ns;
			memcpy(it->bucket, e->bucket, sizeof(it->bucket));
			snprintf(it->kind, sizeof(it->kind), "%s",
				 kind == KX_KIND_USER ? "userspace" : "hardware");
		}
	}
	return rc;
}

static int read_part(const struct bpf_in *in, const struct source *s, enum fam_kind k,
		     struct vcpu_part *p)
{
	p->n_items = 0;
	p->other = 0;
	if (k == F_USER)
		return read_user(in, s, p);
	if (k == F_HW)
		return read_hw(in, s, p);
	return read_hist(in, s, p);
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

/* A VM's series summed over its vCPUs (vcpu_series = per_vm). */
struct vm_sum {
	struct item items[MAX_KEYS + 2]; /* the last two: room for the "other"s */
	size_t n;
};

/* Per render: one vCPU's part, one VM's ranking and sums. */
struct scratch {
	struct vcpu_part p;
	struct ranking r;
	struct vm_sum acc;
};

/* Counts, histogram buckets and sums of src added to dst. */
static void add_into(struct item *dst, const struct item *src)
{
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	for (unsigned b = 0; b < KX_HIST_BUCKETS; b++)
		dst->bucket[b] += src->bucket[b];
}

/* The reason="other" item of a family (k: 1 for userspace round trips). */
static void other_item(struct item *it, enum fam_kind fk, int k)
{
	memset(it, 0, sizeof(*it));
	it->key = OTHER_KEY + (uint64_t)k;
	snprintf(it->reason, sizeof(it->reason), "other");
	if (fk == F_HIST)
		snprintf(it->kind, sizeof(it->kind), "%s", k ? "userspace" : "hardware");
}

static int other_kind(enum fam_kind fk, const struct item *it)
{
	return fk == F_HIST && it->kind[0] == 'u';
}

/*
 * Keep the reasons r ranks; sum the rest (and what the slot counted but
 * did not name) into reason="other" items at the end: a counter's only
 * when not 0, a histogram's (one per kind) when any reason went into it.
 */
static void cut(enum fam_kind fk, struct vcpu_part *p, const struct ranking *r)
{
	struct item other[2];
	bool cut_any[2] = { false, false };
	size_t n = 0;

	other_item(&other[0], fk, 0);
	other_item(&other[1], fk, 1);
	other[0].count = fk == F_HIST ? 0 : p->other;
	for (size_t i = 0; i < p->n_items; i++) {
		const struct item *it = &p->items[i];
		int k = other_kind(fk, it);

		if (rank_keeps(r, it->key)) {
			p->items[n++] = *it;
			continue;
		}
		add_into(&other[k], it);
		cut_any[k] = true;
	}
	for (int k = 0; k < 2; k++)
		if (fk == F_HIST ? cut_any[k] : other[k].count != 0)
			p->items[n++] = other[k];
	p->n_items = n;
}

static struct item *find(struct vm_sum *acc, uint64_t key)
{
	for (size_t i = 0; i < acc->n; i++)
		if (acc->items[i].key == key)
			return &acc->items[i];
	return NULL;
}

/* Add one vCPU's series into its VM's, by key; new reasons past MAX_KEYS into "other". */
static void merge(enum fam_kind fk, struct vm_sum *acc, const struct vcpu_part *p)
{
	for (size_t i = 0; i < p->n_items; i++) {
		const struct item *it = &p->items[i];
		struct item *dst = find(acc, it->key);
		struct item o;

		if (!dst && it->key < OTHER_KEY && acc->n >= MAX_KEYS) {
			other_item(&o, fk, other_kind(fk, it));
			add_into(&o, it);
			it = &o;
			dst = find(acc, o.key);
		}
		if (dst)
			add_into(dst, it);
		else
			acc->items[acc->n++] = *it;
	}
}

static void put_labels(struct render_page *pg, const struct render_labels *l, const struct item *it)
{
	buf_putc(pg->b, '{');
	buf_put(pg->b, l->s, l->len);
	if (it->kind[0]) {
		buf_puts(pg->b, ",kind=\"");
		buf_puts(pg->b, it->kind);
		buf_putc(pg->b, '"');
	}
	buf_puts(pg->b, ",reason=\"");
	buf_puts(pg->b, it->reason);
	buf_putc(pg->b, '"');
}

static void put_u64(struct buf *b, uint64_t v)
{
	char num[METRIC_NUM_MAX] = "";

	buf_put(b, num, (size_t)metric_format_u64(v, num));
}

static void put_created(struct render_page *pg, const char *name, const struct render_labels *l,
			const struct item *it)
{
	if (!pg->created)
		return;
	buf_puts(pg->b, name);
	buf_puts(pg->b, "_created");
	put_labels(pg, l, it);
	buf_putc(pg->b, '}');
	buf_put(pg->b, l->created->text, l->created->len);
}

static void put_counter(struct render_page *pg, const struct fam *f, const struct render_labels *l,
			const struct item *it)
{
	if (!render_admit(pg, 1u + pg->created))
		return;
	buf_puts(pg->b, f->name);
	buf_puts(pg->b, "_total");
	put_labels(pg, l, it);
	buf_puts(pg->b, "} ");
	put_u64(pg->b, it->count);
	buf_putc(pg->b, '\n');
	put_created(pg, f->name, l, it);
}

static void put_hist(struct render_page *pg, const struct render_bpf *rb, const struct fam *f,
		     const struct render_labels *l, const struct item *it)
{
	const struct metric_scale ns = { 0, -9 };
	char num[METRIC_NUM_MAX] = "";
	uint64_t cum = 0;

	if (!render_admit(pg, KX_HIST_BUCKETS + 2u + pg->created))
		return;
	for (unsigned b = 0; b < KX_HIST_BUCKETS; b++) {
		cum += it->bucket[b];
		buf_puts(pg->b, f->name);
		buf_puts(pg->b, "_bucket");
		put_labels(pg, l, it);
		buf_puts(pg->b, ",le=\"");
		buf_puts(pg->b, rb->le[b]);
		buf_puts(pg->b, "\"} ");
		put_u64(pg->b, cum);
		buf_putc(pg->b, '\n');
	}
	buf_puts(pg->b, f->name);
	buf_puts(pg->b, "_count");
	put_labels(pg, l, it);
	buf_puts(pg->b, "} ");
	put_u64(pg->b, cum);
	buf_putc(pg->b, '\n');
	buf_puts(pg->b, f->name);
	buf_puts(pg->b, "_sum");
	put_labels(pg, l, it);
	buf_puts(pg->b, "} ");
	buf_put(pg->b, num, (size_t)metric_format_scaled(it->sum_ns, ns, num));
	buf_putc(pg->b, '\n');
	put_created(pg, f->name, l, it);
}

static void put_items(struct render_page *pg, const struct render_bpf *rb, const struct fam *f,
		      const struct render_labels *l, const struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f->kind == F_HIST)
			put_hist(pg, rb, f, l, &items[i]);
		else
			put_counter(pg, f, l, &items[i]);
	}
}

static void head(struct render_page *pg, const struct fam *f)
{
	const char *type = f->kind == F_HIST ? "histogram" : "counter";
	const char *total = f->kind == F_HIST ? "" : "_total";

	if (pg->om)
		buf_printf(pg->b, "# TYPE %s %s\n%s%s%s# HELP %s %s\n", f->name, type,
			   f->kind == F_HIST ? "# UNIT " : "", f->kind == F_HIST ? f->name : "",
			   f->kind == F_HIST ? " seconds\n" : "", f->name, f->help);
	else
		buf_printf(pg->b, "# HELP %s%s %s\n# TYPE %s%s %s\n", f->name, total, f->help,
			   f->name, total, type);
}

/* One VM's vCPUs src[0, n): per vCPU, or summed per VM. */
static void render_vm(struct render_page *pg, const struct bpf_in *in, const struct fam *f,
		      struct source *const *src, size_t n, struct scratch *sc)
{
	struct vcpu_part *p = &sc->p;
	struct render_labels l;

	memset(&sc->r, 0, sizeof(sc->r));
	sc->r.all = in->rb->top == 0;
	if (!sc->r.all) {
		for (size_t i = 0; i < n; i++)
			if (read_part(in, src[i], f->kind, p) == 0)
				for (size_t j = 0; j < p->n_items; j++)
					rank_add(&sc->r, p->items[j].key, p->items[j].count);
		rank_cut(&sc->r, in->rb->top);
	}
	sc->acc.n = 0;
	for (size_t i = 0; i < n; i++) {
		if (read_part(in, src[i], f->kind, p) < 0)
			continue;
		cut(f->kind, p, &sc->r);
		if (pg->o.vcpu_sum) {
			merge(f->kind, &sc->acc, p);
			continue;
		}
		l = render_source_labels(src[i]);
		put_items(pg, in->rb, f, &l, p->items, p->n_items);
	}
	if (pg->o.vcpu_sum) {
		l = render_vm_labels(src[0]->vm);
		put_items(pg, in->rb, f, &l, sc->acc.items, sc->acc.n);
	}
}

static void render_fam(struct render_page *pg, const struct bpf_in *in, const struct fam *f,
		       const struct snapshot *snap, struct scratch *sc)
{
	head(pg, f);
	for (size_t i = 0, j; render_next_vcpu_run(snap, &i, &j); i = j)
		render_vm(pg, in, f, snap->sources + i, j - i, sc);
}

void render_bpf_kvm(const struct render_bpf *rb, const struct bpfview *view,
		    const struct stat_filter *filter, const struct snapshot *snap,
		    struct render_page *pg)
{
	const struct bpf_in in = { rb, view };
	struct scratch *sc;

	if (!bpfview_enabled(view))
		return;
	sc = malloc(sizeof(*sc));
	if (!sc)
		return;
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++)
		if (stat_filter_keeps_family(filter, fams[f].name, fams[f].kind != F_HIST,
					     fams[f].kind == F_HIST))
			render_fam(pg, &in, &fams[f], snap, sc);
	free(sc);
}

void render_bpf_self(const struct bpfview *view, bool om, bool created, double created_s,
		     struct buf *b)
{
	struct bpfview_meta m = { 0 };
	bool on = bpfview_meta(view, &m) == 0;
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
