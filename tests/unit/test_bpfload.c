/* SPDX-License-Identifier: MIT */
/*
 * test_bpfload - the one line the helper logs when the kernel's verifier
 * refuses the exit telemetry: the kernel's own sentence, not a misleading
 * "Permission denied".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bpfload.h"

/* The shape of Debian 6.12's refusal of kx_exit before the NULL check. */
static const char log_612[] =
    "reg type unsupported for arg#0 function kx_exit#52\n"
    "0: R1=ctx() R10=fp0\n"
    "; int BPF_PROG(kx_exit, struct kvm_vcpu *vcpu, __u32 isa) @ kvmexit.bpf.c:364\n"
    "0: (79) r6 = *(u64 *)(r1 +0)\n"
    "1: (bf) r3 = r6\n"
    "2: (07) r3 += 4280\n"
    "R3 pointer arithmetic on trusted_ptr_or_null_ prohibited, null-check it first\n"
    "processed 3 insns (limit 1000000) max_states_per_insn 0 total_states 0\n"
    "-- END PROG LOAD LOG --\n";

static void test_the_reason_is_the_kernels_last_sentence_before_the_summary(void **state)
{
	char out[160];

	(void)state;
	bpfload_verifier_reason(log_612, out, sizeof(out));
	assert_string_equal(
	    out, "R3 pointer arithmetic on trusted_ptr_or_null_ prohibited, null-check it first");
}

static void test_a_log_without_summary_gives_its_last_line(void **state)
{
	char out[64];

	(void)state;
	bpfload_verifier_reason("a\n\nlast words\n\n", out, sizeof(out));
	assert_string_equal(out, "last words");
	bpfload_verifier_reason("no newline at all", out, sizeof(out));
	assert_string_equal(out, "no newline at all");
}

static void test_an_empty_log_says_so_and_a_small_buffer_is_not_overrun(void **state)
{
	char out[16];

	(void)state;
	bpfload_verifier_reason("", out, sizeof(out));
	assert_string_equal(out, "no verifier log");
	memset(out, 'x', sizeof(out));
	bpfload_verifier_reason(log_612, out, 8);
	assert_string_equal(out, "R3 poin");
	assert_int_equal(out[8], 'x');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_reason_is_the_kernels_last_sentence_before_the_summary),
		cmocka_unit_test(test_a_log_without_summary_gives_its_last_line),
		cmocka_unit_test(test_an_empty_log_says_so_and_a_small_buffer_is_not_overrun),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
