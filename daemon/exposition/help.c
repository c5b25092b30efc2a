/* SPDX-License-Identifier: MIT */
/* help - see help.h. */
#include "help.h"

#include <errno.h>
#include <stdbool.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

/*
 * How the kernel declares a stat (include/linux/kvm_host.h STATS_DESC_*):
 * enough to name its family for the reference without a running kernel.
 */
enum help_kind {
	HK_COUNTER,  /* STATS_DESC_COUNTER: cumulative count */
	HK_ICOUNTER, /* STATS_DESC_ICOUNTER: current value */
	HK_PCOUNTER, /* STATS_DESC_PCOUNTER: peak value */
	HK_IBOOLEAN, /* STATS_DESC_IBOOLEAN: current 0/1 */
	HK_TIME_NS,  /* STATS_DESC_TIME_NSEC: cumulative nanoseconds */
	HK_HIST_NS,  /* STATS_DESC_LOGHIST_TIME_NSEC: log2 histogram of nanoseconds */
};

struct help_entry {
	enum stat_scope scope;
	enum help_kind kind;
	const char *name;
	const char *text;
};

#define VM(k, n, t)                                                                                \
	{                                                                                          \
		SCOPE_VM, HK_##k, n, t                                                             \
	}
#define VCPU(k, n, t)                                                                              \
	{                                                                                          \
		SCOPE_VCPU, HK_##k, n, t                                                           \
	}

/*
 * The generic stats (virt/kvm) and those of x86, arm64 and riscv, as Linux
 * 6.12 to 6.18 define them. Stats of other architectures, and any a later
 * kernel adds, get a sentence built from their descriptor instead.
 */
static const struct help_entry table[] = {
	VM(COUNTER, "remote_tlb_flush", "Remote TLB flushes performed for the VM."),
	VM(COUNTER, "remote_tlb_flush_requests",
	   "Requests to flush the TLBs of all vCPUs of the VM."),
	VM(COUNTER, "mmu_shadow_zapped", "Shadow MMU pages zapped."),
	VM(COUNTER, "mmu_pte_write", "Guest writes to shadowed page-table entries."),
	VM(COUNTER, "mmu_pde_zapped", "Shadow page-directory entries zapped."),
	VM(COUNTER, "mmu_flooded", "Shadow pages unshadowed after repeated guest writes."),
	VM(COUNTER, "mmu_recycled", "Shadow MMU pages recycled to stay under the page limit."),
	VM(COUNTER, "mmu_cache_miss", "Shadow MMU page-cache misses."),
	VM(ICOUNTER, "mmu_unsync", "Shadow pages currently out of sync with the guest page table."),
	VM(ICOUNTER, "pages_4k", "Guest memory currently mapped with 4 KiB pages."),
	VM(ICOUNTER, "pages_2m", "Guest memory currently mapped with 2 MiB pages."),
	VM(ICOUNTER, "pages_1g", "Guest memory currently mapped with 1 GiB pages."),
	VM(ICOUNTER, "nx_lpage_splits",
	   "Huge pages split to enforce the iTLB multihit mitigation."),
	VM(PCOUNTER, "max_mmu_page_hash_collisions", "Longest shadow page hash chain seen."),
	VM(PCOUNTER, "max_mmu_rmap_size", "Largest reverse-map list seen."),
	VCPU(COUNTER, "halt_successful_poll",
	     "Halt polls that found a wake-up before the poll ended."),
	VCPU(COUNTER, "halt_attempted_poll", "Halt polls attempted."),
	VCPU(COUNTER, "halt_poll_invalid", "Halt polls cut short because polling was not allowed."),
	VCPU(COUNTER, "halt_wakeup", "Wake-ups from halt."),
	VCPU(TIME_NS, "halt_poll_success_ns", "Time spent in successful halt polling."),
	VCPU(TIME_NS, "halt_poll_fail_ns", "Time spent in halt polling that found no wake-up."),
	VCPU(TIME_NS, "halt_wait_ns", "Time spent halted, waiting for a wake-up."),
	VCPU(HIST_NS, "halt_poll_success_hist", "Durations of successful halt polls."),
	VCPU(HIST_NS, "halt_poll_fail_hist", "Durations of failed halt polls."),
	VCPU(HIST_NS, "halt_wait_hist", "Durations of halt waits."),
	VCPU(IBOOLEAN, "blocking", "Whether the vCPU is blocked (1) or not (0)."),
	VCPU(COUNTER, "pf_taken", "Page faults taken by the vCPU."),
	VCPU(COUNTER, "pf_fixed", "Page faults fixed by KVM's MMU."),
	VCPU(COUNTER, "pf_emulate", "Page faults that required instruction emulation."),
	VCPU(COUNTER, "pf_spurious", "Page faults that were spurious."),
	VCPU(COUNTER, "pf_fast", "Page faults fixed on the fast path."),
	VCPU(COUNTER, "pf_mmio_spte_created", "MMIO SPTEs created on page faults."),
	VCPU(COUNTER, "pf_guest", "Page faults injected into the guest."),
	VCPU(COUNTER, "tlb_flush", "TLB flushes requested for the vCPU."),
	VCPU(COUNTER, "invlpg", "INVLPG instructions emulated."),
	VCPU(COUNTER, "exits", "Exits from guest mode to KVM."),
	VCPU(COUNTER, "io_exits", "Exits caused by port I/O."),
	VCPU(COUNTER, "mmio_exits", "Exits caused by MMIO."),
	VCPU(COUNTER, "signal_exits", "Exits to userspace because a signal was pending."),
	VCPU(COUNTER, "irq_window_exits", "Exits to open an interrupt window."),
	VCPU(COUNTER, "nmi_window_exits", "Exits to open an NMI window."),
	VCPU(COUNTER, "l1d_flush", "L1D cache flushes before entering the guest."),
	VCPU(COUNTER, "halt_exits", "Exits caused by HLT."),
	VCPU(COUNTER, "request_irq_exits", "Exits to userspace requested for interrupt injection."),
	VCPU(COUNTER, "irq_exits", "Exits caused by external interrupts."),
	VCPU(COUNTER, "host_state_reload", "Full host state reloads."),
	VCPU(COUNTER, "fpu_reload", "Guest FPU state reloads."),
	VCPU(COUNTER, "insn_emulation", "Instructions emulated by KVM."),
	VCPU(COUNTER, "insn_emulation_fail", "Instructions KVM failed to emulate."),
	VCPU(COUNTER, "hypercalls", "Hypercalls handled."),
	VCPU(COUNTER, "irq_injections", "Interrupts injected."),
	VCPU(COUNTER, "nmi_injections", "NMIs injected."),
	VCPU(COUNTER, "req_event", "KVM_REQ_EVENT requests processed."),
	VCPU(COUNTER, "nested_run", "Nested guest entries (VMRUN/VMLAUNCH) emulated."),
	VCPU(COUNTER, "directed_yield_attempted", "Directed yields attempted on a spinning vCPU."),
	VCPU(COUNTER, "directed_yield_successful", "Directed yields that succeeded."),
	VCPU(COUNTER, "preemption_reported", "Preemptions reported to the guest via steal time."),
	VCPU(COUNTER, "preemption_other", "Preemptions not reported to the guest."),
	VCPU(IBOOLEAN, "guest_mode", "Whether the vCPU runs a nested guest (1) or not (0)."),
	VCPU(COUNTER, "notify_window_exits", "Exits caused by the notify-window VM exit."),
	/* arm64 */
	VCPU(COUNTER, "hvc_exit_stat", "Exits caused by HVC (hypervisor calls) (arm64)."),
	VCPU(COUNTER, "wfe_exit_stat", "Exits caused by WFE (arm64)."),
	VCPU(COUNTER, "wfi_exit_stat", "Exits caused by WFI (arm64, riscv)."),
	VCPU(COUNTER, "mmio_exit_user",
	     "MMIO exits handled by the VMM in userspace (arm64, riscv)."),
	VCPU(COUNTER, "mmio_exit_kernel", "MMIO exits handled inside the kernel (arm64, riscv)."),
	/* riscv */
	VCPU(COUNTER, "ecall_exit_stat", "Exits caused by ECALL (SBI calls) (riscv)."),
	VCPU(COUNTER, "wrs_exit_stat", "Exits caused by WRS (wait on reservation set) (riscv)."),
	VCPU(COUNTER, "csr_exit_user", "CSR accesses handled by the VMM in userspace (riscv)."),
	VCPU(COUNTER, "csr_exit_kernel", "CSR accesses handled inside the kernel (riscv)."),
};

#define TABLE_SIZE (sizeof(table) / sizeof(table[0]))

const char *help_lookup(enum stat_scope scope, const char *desc_name)
{
	for (size_t i = 0; i < TABLE_SIZE; i++)
		if (table[i].scope == scope && !strcmp(table[i].name, desc_name))
			return table[i].text;
	return NULL;
}

static const char *kind_text(const struct stat_flags *f)
{
	static const char *const kinds[] = { "cumulative count", "current value", "peak value",
					     "linear histogram", "logarithmic histogram" };

	return f->type < 5 ? kinds[f->type] : "value";
}

static const char *type_name(enum metric_type t)
{
	return t == MT_COUNTER ? "counter" : t == MT_GAUGE ? "gauge" : "histogram";
}

int help_build_heads(const struct help_family *f, char **text, char **om)
{
	const char *unit = metric_unit_name(&f->flags);
	const char *known = help_lookup(f->scope, f->desc_name);
	char sentence[512], esc_text[1100], esc_om[1100];
	const char *total = f->type == MT_COUNTER ? "_total" : "";
	char unit_line[METRIC_NAME_MAX + 32] = "";
	int rc = 0;

	*text = *om = NULL;
	snprintf(sentence, sizeof(sentence), "%s (KVM %s stat %s, %s%s%s%s)",
		 known ? known : "KVM statistic", f->scope == SCOPE_VM ? "VM" : "vCPU",
		 f->desc_name, kind_text(&f->flags), unit ? ", in " : "", unit ? unit : "",
		 f->has_sum ? ", _sum from the matching cumulative stat" : "");
	if (escape_text(sentence, false, esc_text, sizeof(esc_text)) < 0 ||
	    escape_text(sentence, true, esc_om, sizeof(esc_om)) < 0)
		return -ENOMEM;
	if (unit)
		snprintf(unit_line, sizeof(unit_line), "# UNIT %s %s\n", f->family, unit);
	/* asprintf leaves its pointer undefined on failure: NULL it ourselves */
	if (asprintf(text, "# HELP %s%s %s\n# TYPE %s%s %s\n", f->family, total, esc_text,
		     f->family, total, type_name(f->type)) < 0) {
		*text = NULL;
		rc = -ENOMEM;
	} else if (asprintf(om, "# TYPE %s %s\n%s# HELP %s %s\n", f->family, type_name(f->type),
			    unit_line, f->family, esc_om) < 0) {
		*om = NULL;
		free(*text);
		*text = NULL;
		rc = -ENOMEM;
	}
	return rc;
}

static struct stat_flags kind_flags(enum help_kind k)
{
	static const struct stat_flags f[] = {
		[HK_COUNTER] = { 0, 0, 0 },
		[HK_ICOUNTER] = { KVM_STATS_TYPE_INSTANT >> KVM_STATS_TYPE_SHIFT, 0, 0 },
		[HK_PCOUNTER] = { KVM_STATS_TYPE_PEAK >> KVM_STATS_TYPE_SHIFT, 0, 0 },
		[HK_IBOOLEAN] = { KVM_STATS_TYPE_INSTANT >> KVM_STATS_TYPE_SHIFT,
				  KVM_STATS_UNIT_BOOLEAN >> KVM_STATS_UNIT_SHIFT, 0 },
		[HK_TIME_NS] = { 0, KVM_STATS_UNIT_SECONDS >> KVM_STATS_UNIT_SHIFT, 0 },
		[HK_HIST_NS] = { KVM_STATS_TYPE_LOG_HIST >> KVM_STATS_TYPE_SHIFT,
				 KVM_STATS_UNIT_SECONDS >> KVM_STATS_UNIT_SHIFT, 0 },
	};

	return f[k];
}

static int entry_family(const struct help_entry *e, char *family, enum metric_type *t)
{
	struct stat_flags f = kind_flags(e->kind);

	*t = metric_type_of(&f);
	return metric_family_name(e->scope, e->name, &f, family, METRIC_NAME_MAX);
}

/*
 * The cumulative stat that becomes a histogram's _sum (schema.c pairs
 * them by family name, and exports no counter of its own), or NULL.
 */
static const struct help_entry *sum_twin(const struct help_entry *e, bool from_histogram)
{
	char mine[METRIC_NAME_MAX], other[METRIC_NAME_MAX];
	enum metric_type t, u;

	if (entry_family(e, mine, &t) < 0 || (t == MT_HISTOGRAM) != from_histogram)
		return NULL;
	for (size_t i = 0; i < TABLE_SIZE; i++) {
		const struct help_entry *o = &table[i];

		if (o->scope == e->scope && entry_family(o, other, &u) >= 0 &&
		    !strcmp(mine, other) && u == (from_histogram ? MT_COUNTER : MT_HISTOGRAM))
			return o;
	}
	return NULL;
}

int help_write_reference(FILE *out)
{
	char family[METRIC_NAME_MAX];

	fprintf(out, "| Metric | Type | Unit | KVM stat | Meaning |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < TABLE_SIZE; i++) {
		const struct help_entry *e = &table[i], *twin = sum_twin(e, true);
		struct stat_flags f = kind_flags(e->kind);
		const char *unit = metric_unit_name(&f);
		enum metric_type t;

		if (sum_twin(e, false)) /* its histogram's row names it */
			continue;
		if (entry_family(e, family, &t) < 0)
			return -EINVAL;
		fprintf(out, "| `%s%s` | %s | %s | %s `%s` (%s%s%s%s) | %s |\n", family,
			t == MT_COUNTER ? "_total" : "", type_name(t), unit ? unit : "",
			e->scope == SCOPE_VM ? "VM" : "vCPU", e->name, kind_text(&f),
			twin ? "; `_sum` from `" : "", twin ? twin->name : "", twin ? "`" : "",
			e->text);
	}
	return ferror(out) ? -EIO : 0;
}
