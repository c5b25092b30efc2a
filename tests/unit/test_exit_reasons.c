/* SPDX-License-Identifier: MIT */
/*
 * test_exit_reasons - the reason tables against the uapi headers' own
 * macros (Debian 12: Linux 6.1): every VMX EXIT_REASON_* and KVM_EXIT_*
 * the headers define has the name its macro spells; SVM codes the kernel
 * names in its trace output have those names; reasons newer than the
 * headers (from 6.18) are known too; anything else is reason_<n>.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <asm/svm.h>
#include <asm/vmx.h>
#include <linux/kvm.h>

#include "bpf_layout.h"
#include "exit_reasons.h"

struct expect {
	uint32_t code;
	const char *name;
};

static const struct expect vmx[] = {
	{ EXIT_REASON_EXCEPTION_NMI, "exception_nmi" },
	{ EXIT_REASON_EXTERNAL_INTERRUPT, "external_interrupt" },
	{ EXIT_REASON_TRIPLE_FAULT, "triple_fault" },
	{ EXIT_REASON_INIT_SIGNAL, "init_signal" },
	{ EXIT_REASON_SIPI_SIGNAL, "sipi_signal" },
	{ EXIT_REASON_INTERRUPT_WINDOW, "interrupt_window" },
	{ EXIT_REASON_NMI_WINDOW, "nmi_window" },
	{ EXIT_REASON_TASK_SWITCH, "task_switch" },
	{ EXIT_REASON_CPUID, "cpuid" },
	{ EXIT_REASON_HLT, "hlt" },
	{ EXIT_REASON_INVD, "invd" },
	{ EXIT_REASON_INVLPG, "invlpg" },
	{ EXIT_REASON_RDPMC, "rdpmc" },
	{ EXIT_REASON_RDTSC, "rdtsc" },
	{ EXIT_REASON_VMCALL, "vmcall" },
	{ EXIT_REASON_VMCLEAR, "vmclear" },
	{ EXIT_REASON_VMLAUNCH, "vmlaunch" },
	{ EXIT_REASON_VMPTRLD, "vmptrld" },
	{ EXIT_REASON_VMPTRST, "vmptrst" },
	{ EXIT_REASON_VMREAD, "vmread" },
	{ EXIT_REASON_VMRESUME, "vmresume" },
	{ EXIT_REASON_VMWRITE, "vmwrite" },
	{ EXIT_REASON_VMOFF, "vmoff" },
	{ EXIT_REASON_VMON, "vmon" },
	{ EXIT_REASON_CR_ACCESS, "cr_access" },
	{ EXIT_REASON_DR_ACCESS, "dr_access" },
	{ EXIT_REASON_IO_INSTRUCTION, "io_instruction" },
	{ EXIT_REASON_MSR_READ, "msr_read" },
	{ EXIT_REASON_MSR_WRITE, "msr_write" },
	{ EXIT_REASON_INVALID_STATE, "invalid_state" },
	{ EXIT_REASON_MSR_LOAD_FAIL, "msr_load_fail" },
	{ EXIT_REASON_MWAIT_INSTRUCTION, "mwait_instruction" },
	{ EXIT_REASON_MONITOR_TRAP_FLAG, "monitor_trap_flag" },
	{ EXIT_REASON_MONITOR_INSTRUCTION, "monitor_instruction" },
	{ EXIT_REASON_PAUSE_INSTRUCTION, "pause_instruction" },
	{ EXIT_REASON_MCE_DURING_VMENTRY, "mce_during_vmentry" },
	{ EXIT_REASON_TPR_BELOW_THRESHOLD, "tpr_below_threshold" },
	{ EXIT_REASON_APIC_ACCESS, "apic_access" },
	{ EXIT_REASON_EOI_INDUCED, "eoi_induced" },
	{ EXIT_REASON_GDTR_IDTR, "gdtr_idtr" },
	{ EXIT_REASON_LDTR_TR, "ldtr_tr" },
	{ EXIT_REASON_EPT_VIOLATION, "ept_violation" },
	{ EXIT_REASON_EPT_MISCONFIG, "ept_misconfig" },
	{ EXIT_REASON_INVEPT, "invept" },
	{ EXIT_REASON_RDTSCP, "rdtscp" },
	{ EXIT_REASON_PREEMPTION_TIMER, "preemption_timer" },
	{ EXIT_REASON_INVVPID, "invvpid" },
	{ EXIT_REASON_WBINVD, "wbinvd" },
	{ EXIT_REASON_XSETBV, "xsetbv" },
	{ EXIT_REASON_APIC_WRITE, "apic_write" },
	{ EXIT_REASON_RDRAND, "rdrand" },
	{ EXIT_REASON_INVPCID, "invpcid" },
	{ EXIT_REASON_VMFUNC, "vmfunc" },
	{ EXIT_REASON_ENCLS, "encls" },
	{ EXIT_REASON_RDSEED, "rdseed" },
	{ EXIT_REASON_PML_FULL, "pml_full" },
	{ EXIT_REASON_XSAVES, "xsaves" },
	{ EXIT_REASON_XRSTORS, "xrstors" },
	{ EXIT_REASON_UMWAIT, "umwait" },
	{ EXIT_REASON_TPAUSE, "tpause" },
	{ EXIT_REASON_BUS_LOCK, "bus_lock" },
	{ EXIT_REASON_NOTIFY, "notify" },
};

static const struct expect user[] = {
	{ KVM_EXIT_UNKNOWN, "unknown" },
	{ KVM_EXIT_EXCEPTION, "exception" },
	{ KVM_EXIT_IO, "io" },
	{ KVM_EXIT_HYPERCALL, "hypercall" },
	{ KVM_EXIT_DEBUG, "debug" },
	{ KVM_EXIT_HLT, "hlt" },
	{ KVM_EXIT_MMIO, "mmio" },
	{ KVM_EXIT_IRQ_WINDOW_OPEN, "irq_window_open" },
	{ KVM_EXIT_SHUTDOWN, "shutdown" },
	{ KVM_EXIT_FAIL_ENTRY, "fail_entry" },
	{ KVM_EXIT_INTR, "intr" },
	{ KVM_EXIT_SET_TPR, "set_tpr" },
	{ KVM_EXIT_TPR_ACCESS, "tpr_access" },
	{ KVM_EXIT_S390_SIEIC, "s390_sieic" },
	{ KVM_EXIT_S390_RESET, "s390_reset" },
	{ KVM_EXIT_DCR, "dcr" },
	{ KVM_EXIT_NMI, "nmi" },
	{ KVM_EXIT_INTERNAL_ERROR, "internal_error" },
	{ KVM_EXIT_OSI, "osi" },
	{ KVM_EXIT_PAPR_HCALL, "papr_hcall" },
	{ KVM_EXIT_S390_UCONTROL, "s390_ucontrol" },
	{ KVM_EXIT_WATCHDOG, "watchdog" },
	{ KVM_EXIT_S390_TSCH, "s390_tsch" },
	{ KVM_EXIT_EPR, "epr" },
	{ KVM_EXIT_SYSTEM_EVENT, "system_event" },
	{ KVM_EXIT_S390_STSI, "s390_stsi" },
	{ KVM_EXIT_IOAPIC_EOI, "ioapic_eoi" },
	{ KVM_EXIT_HYPERV, "hyperv" },
	{ KVM_EXIT_ARM_NISV, "arm_nisv" },
	{ KVM_EXIT_X86_RDMSR, "x86_rdmsr" },
	{ KVM_EXIT_X86_WRMSR, "x86_wrmsr" },
	{ KVM_EXIT_DIRTY_RING_FULL, "dirty_ring_full" },
	{ KVM_EXIT_AP_RESET_HOLD, "ap_reset_hold" },
	{ KVM_EXIT_X86_BUS_LOCK, "x86_bus_lock" },
	{ KVM_EXIT_XEN, "xen" },
	{ KVM_EXIT_RISCV_SBI, "riscv_sbi" },
	{ KVM_EXIT_RISCV_CSR, "riscv_csr" },
	{ KVM_EXIT_NOTIFY, "notify" },
};

static const struct expect svm[] = {
	{ (uint32_t)SVM_EXIT_READ_CR0, "read_cr0" },
	{ (uint32_t)SVM_EXIT_WRITE_CR3, "write_cr3" },
	{ (uint32_t)SVM_EXIT_READ_DR7, "read_dr7" },
	{ (uint32_t)SVM_EXIT_INTR, "interrupt" },
	{ (uint32_t)SVM_EXIT_NMI, "nmi" },
	{ (uint32_t)SVM_EXIT_VINTR, "vintr" },
	{ (uint32_t)SVM_EXIT_CPUID, "cpuid" },
	{ (uint32_t)SVM_EXIT_HLT, "hlt" },
	{ (uint32_t)SVM_EXIT_IOIO, "io" },
	{ (uint32_t)SVM_EXIT_MSR, "msr" },
	{ (uint32_t)SVM_EXIT_PAUSE, "pause" },
	{ (uint32_t)SVM_EXIT_VMMCALL, "hypercall" },
	{ (uint32_t)SVM_EXIT_SHUTDOWN, "shutdown" },
	{ (uint32_t)SVM_EXIT_XSETBV, "xsetbv" },
	{ (uint32_t)SVM_EXIT_NPF, "npf" },
	{ (uint32_t)SVM_EXIT_AVIC_INCOMPLETE_IPI, "avic_incomplete_ipi" },
	{ (uint32_t)SVM_EXIT_AVIC_UNACCELERATED_ACCESS, "avic_unaccelerated_access" },
	{ (uint32_t)SVM_EXIT_VMGEXIT, "vmgexit" },
	{ (uint32_t)SVM_EXIT_EFER_WRITE_TRAP, "write_efer_trap" },
	{ (uint32_t)SVM_EXIT_INVPCID, "invpcid" },
	{ (uint32_t)SVM_EXIT_ERR, "invalid_guest_state" },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_every_uapi_vmx_reason_has_its_macros_name(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(vmx); i++) {
		const char *got = exit_reason_hw(1, vmx[i].code);

		assert_non_null(got);
		assert_string_equal(got, vmx[i].name);
	}
}

static void test_every_uapi_kvm_exit_has_its_macros_name(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(user); i++) {
		const char *got = exit_reason_user(user[i].code);

		assert_non_null(got);
		assert_string_equal(got, user[i].name);
	}
}

static void test_svm_codes_have_the_kernels_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(svm); i++) {
		const char *got = exit_reason_hw(2, svm[i].code);

		assert_non_null(got);
		assert_string_equal(got, svm[i].name);
	}
	assert_string_equal(exit_reason_hw(2, SVM_EXIT_EXCP_BASE + 14), "excp_pf");
}

static void test_reasons_newer_than_the_headers_are_known(void **state)
{
	(void)state;
	/* Linux 6.2+: BUS_LOCK 74, NOTIFY 75, TDCALL 77; 6.16+: MSR_*_IMM 84/85 */
	assert_string_equal(exit_reason_hw(1, 74), "bus_lock");
	assert_string_equal(exit_reason_hw(1, 77), "tdcall");
	assert_string_equal(exit_reason_hw(1, 84), "msr_read_imm");
	assert_string_equal(exit_reason_hw(1, 85), "msr_write_imm");
	assert_string_equal(exit_reason_hw(2, 0xa6), "idle_halt");
	assert_string_equal(exit_reason_user(39), "memory_fault");
	assert_string_equal(exit_reason_user(40), "tdx");
}

static void test_a_failed_kvm_run_is_named_as_the_tracepoint_names_it(void **state)
{
	(void)state;
	assert_string_equal(exit_reason_user(KX_UEXIT_RESTART), "restart");
	assert_string_equal(exit_reason_user(KX_UEXIT_ERROR), "error");
	/* clear of every KVM_EXIT_* this table knows, and of the catch-all */
	assert_true(KX_UEXIT_RESTART > 40 && KX_UEXIT_ERROR > 40);
	assert_true(KX_UEXIT_RESTART < KX_UEXIT_OTHER && KX_UEXIT_ERROR < KX_UEXIT_OTHER);
}

static void test_unknown_reasons_fall_back_to_their_number(void **state)
{
	char buf[EXIT_REASON_NAME_MAX];

	(void)state;
	assert_null(exit_reason_hw(1, 5)); /* a hole in the VMX numbering */
	assert_null(exit_reason_hw(1, 4096));
	assert_null(exit_reason_hw(2, 0x500));
	assert_null(exit_reason_hw(3, 1)); /* no such isa */
	assert_null(exit_reason_user(41));
	assert_null(exit_reason_user(UINT32_MAX));
	assert_string_equal(exit_reason_label(NULL, 4294967295u, buf, sizeof(buf)),
			    "reason_4294967295");
	assert_string_equal(exit_reason_label("io", 2, buf, sizeof(buf)), "io");
}

static void test_names_are_label_safe(void **state)
{
	(void)state;
	for (uint32_t isa = 1; isa <= 2; isa++)
		for (uint32_t r = 0; r < 0x1000; r++) {
			const char *n = exit_reason_hw(isa, r);

			assert_true(!n || (strlen(n) < EXIT_REASON_NAME_MAX &&
					   strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_") ==
					       strlen(n)));
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_uapi_vmx_reason_has_its_macros_name),
		cmocka_unit_test(test_every_uapi_kvm_exit_has_its_macros_name),
		cmocka_unit_test(test_svm_codes_have_the_kernels_names),
		cmocka_unit_test(test_reasons_newer_than_the_headers_are_known),
		cmocka_unit_test(test_a_failed_kvm_run_is_named_as_the_tracepoint_names_it),
		cmocka_unit_test(test_unknown_reasons_fall_back_to_their_number),
		cmocka_unit_test(test_names_are_label_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
