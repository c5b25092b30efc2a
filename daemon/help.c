/* SPDX-License-Identifier: MIT */
/* help - see help.h. */
#include "help.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "schema.h"

struct help_entry {
	const char *name;
	const char *text;
};

/* Generic KVM stats (virt/kvm) and the x86 ones seen on recent kernels. */
static const struct help_entry vm_help[] = {
	{ "remote_tlb_flush", "Remote TLB flushes performed for the VM." },
	{ "remote_tlb_flush_requests", "Requests to flush the TLBs of all vCPUs of the VM." },
	{ "mmu_shadow_zapped", "Shadow MMU pages zapped." },
	{ "mmu_pte_write", "Guest writes to shadowed page-table entries." },
	{ "mmu_pde_zapped", "Shadow page-directory entries zapped." },
	{ "mmu_flooded", "Shadow pages unshadowed after repeated guest writes." },
	{ "mmu_recycled", "Shadow MMU pages recycled to stay under the page limit." },
	{ "mmu_cache_miss", "Shadow MMU page-cache misses." },
	{ "mmu_unsync", "Shadow pages currently out of sync with the guest page table." },
	{ "pages_4k", "Guest memory currently mapped with 4 KiB pages." },
	{ "pages_2m", "Guest memory currently mapped with 2 MiB pages." },
	{ "pages_1g", "Guest memory currently mapped with 1 GiB pages." },
	{ "nx_lpage_splits", "Huge pages split to enforce the iTLB multihit mitigation." },
	{ "max_mmu_page_hash_collisions", "Longest shadow page hash chain seen." },
	{ "max_mmu_rmap_size", "Largest reverse-map list seen." },
};

static const struct help_entry vcpu_help[] = {
	{ "halt_successful_poll", "Halt polls that found a wake-up before the poll ended." },
	{ "halt_attempted_poll", "Halt polls attempted." },
	{ "halt_poll_invalid", "Halt polls cut short because polling was not allowed." },
	{ "halt_wakeup", "Wake-ups from halt." },
	{ "halt_poll_success_ns", "Time spent in successful halt polling." },
	{ "halt_poll_fail_ns", "Time spent in halt polling that found no wake-up." },
	{ "halt_wait_ns", "Time spent halted, waiting for a wake-up." },
	{ "halt_poll_success_hist", "Durations of successful halt polls." },
	{ "halt_poll_fail_hist", "Durations of failed halt polls." },
	{ "halt_wait_hist", "Durations of halt waits." },
	{ "blocking", "Whether the vCPU is blocked (1) or not (0)." },
	{ "pf_taken", "Page faults taken by the vCPU." },
	{ "pf_fixed", "Page faults fixed by KVM's MMU." },
	{ "pf_emulate", "Page faults that required instruction emulation." },
	{ "pf_spurious", "Page faults that were spurious." },
	{ "pf_fast", "Page faults fixed on the fast path." },
	{ "pf_mmio_spte_created", "MMIO SPTEs created on page faults." },
	{ "pf_guest", "Page faults injected into the guest." },
	{ "tlb_flush", "TLB flushes requested for the vCPU." },
	{ "invlpg", "INVLPG instructions emulated." },
	{ "exits", "Exits from guest mode to KVM." },
	{ "io_exits", "Exits caused by port I/O." },
	{ "mmio_exits", "Exits caused by MMIO." },
	{ "signal_exits", "Exits to userspace because a signal was pending." },
	{ "irq_window_exits", "Exits to open an interrupt window." },
	{ "nmi_window_exits", "Exits to open an NMI window." },
	{ "l1d_flush", "L1D cache flushes before entering the guest." },
	{ "halt_exits", "Exits caused by HLT." },
	{ "request_irq_exits", "Exits to userspace requested for interrupt injection." },
	{ "irq_exits", "Exits caused by external interrupts." },
	{ "host_state_reload", "Full host state reloads." },
	{ "fpu_reload", "Guest FPU state reloads." },
	{ "insn_emulation", "Instructions emulated by KVM." },
	{ "insn_emulation_fail", "Instructions KVM failed to emulate." },
	{ "hypercalls", "Hypercalls handled." },
	{ "irq_injections", "Interrupts injected." },
	{ "nmi_injections", "NMIs injected." },
	{ "req_event", "KVM_REQ_EVENT requests processed." },
	{ "nested_run", "Nested guest entries (VMRUN/VMLAUNCH) emulated." },
	{ "directed_yield_attempted", "Directed yields attempted on a spinning vCPU." },
	{ "directed_yield_successful", "Directed yields that succeeded." },
	{ "preemption_reported", "Preemptions reported to the guest via steal time." },
	{ "preemption_other", "Preemptions not reported to the guest." },
	{ "guest_mode", "Whether the vCPU runs a nested guest (1) or not (0)." },
	{ "notify_window_exits", "Exits caused by the notify-window VM exit." },
};

static const char *find(const struct help_entry *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].name, name))
			return t[i].text;
	return NULL;
}

const char *help_lookup(enum stat_scope scope, const char *desc_name)
{
	if (scope == SCOPE_VM)
		return find(vm_help, sizeof(vm_help) / sizeof(vm_help[0]), desc_name);
	return find(vcpu_help, sizeof(vcpu_help) / sizeof(vcpu_help[0]), desc_name);
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

int help_build_heads(enum stat_scope scope, struct schema_stat *st)
{
	const char *unit = metric_unit_name(&st->flags);
	const char *known = help_lookup(scope, st->desc_name);
	char sentence[512], esc_text[1100], esc_om[1100];
	const char *total = st->type == MT_COUNTER ? "_total" : "";
	char unit_line[METRIC_NAME_MAX + 32] = "";

	snprintf(sentence, sizeof(sentence), "%s (KVM %s stat %s, %s%s%s%s)",
		 known ? known : "KVM statistic", scope == SCOPE_VM ? "VM" : "vCPU", st->desc_name,
		 kind_text(&st->flags), unit ? ", in " : "", unit ? unit : "",
		 st->sum_index >= 0 ? ", _sum from the matching cumulative stat" : "");
	if (escape_text(sentence, false, esc_text, sizeof(esc_text)) < 0 ||
	    escape_text(sentence, true, esc_om, sizeof(esc_om)) < 0)
		return -ENOMEM;
	if (unit)
		snprintf(unit_line, sizeof(unit_line), "# UNIT %s %s\n", st->family, unit);
	if (asprintf(&st->head_text, "# HELP %s%s %s\n# TYPE %s%s %s\n", st->family, total,
		     esc_text, st->family, total, type_name(st->type)) < 0) {
		st->head_text = NULL;
		return -ENOMEM;
	}
	if (asprintf(&st->head_om, "# TYPE %s %s\n%s# HELP %s %s\n", st->family,
		     type_name(st->type), unit_line, st->family, esc_om) < 0) {
		st->head_om = NULL;
		return -ENOMEM;
	}
	return 0;
}
