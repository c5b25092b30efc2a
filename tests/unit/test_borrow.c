/* SPDX-License-Identifier: MIT */
/*
 * test_borrow - which fds discovery may borrow, and what a non-owner's
 * KVM_GET_STATS_FD answer says about the kernel. (The probe itself runs
 * against the real kernel: test_discovery.py and make kernel-check.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "borrow.h"

static void test_eio_means_a_stock_kernel(void **state)
{
	(void)state;
	assert_int_equal(borrow_verdict(EIO), BORROW_UNSUPPORTED);
}

static void test_an_fd_or_eacces_means_the_kernel_checks_ptrace_rights(void **state)
{
	(void)state;
	assert_int_equal(borrow_verdict(0), BORROW_SUPPORTED);
	assert_int_equal(borrow_verdict(EACCES), BORROW_SUPPORTED);
}

static void test_any_other_answer_is_no_verdict(void **state)
{
	(void)state;
	assert_int_equal(borrow_verdict(ENOTTY), -EPROTO);
	assert_int_equal(borrow_verdict(EPERM), -EPROTO);
	assert_int_equal(borrow_verdict(EINVAL), -EPROTO);
}

static void test_only_the_exact_vm_link_is_a_vm_fd(void **state)
{
	(void)state;
	assert_true(borrow_link_is_vm("anon_inode:kvm-vm"));
	assert_false(borrow_link_is_vm("anon_inode:kvm-vm-stats"));
	assert_false(borrow_link_is_vm("anon_inode:kvm-vm "));
	assert_false(borrow_link_is_vm("/tmp/anon_inode:kvm-vm"));
	assert_false(borrow_link_is_vm("anon_inode:kvm-vcpu:0"));
	assert_false(borrow_link_is_vm(""));
}

static void test_a_vcpu_link_needs_digits_after_the_colon(void **state)
{
	(void)state;
	assert_true(borrow_link_is_vcpu("anon_inode:kvm-vcpu:0"));
	assert_true(borrow_link_is_vcpu("anon_inode:kvm-vcpu:4095"));
	assert_false(borrow_link_is_vcpu("anon_inode:kvm-vcpu:"));
	assert_false(borrow_link_is_vcpu("anon_inode:kvm-vcpu:1x"));
	assert_false(borrow_link_is_vcpu("anon_inode:kvm-vcpu:-1"));
	assert_false(borrow_link_is_vcpu("anon_inode:kvm-vcpu-stats:0"));
	assert_false(borrow_link_is_vcpu("anon_inode:kvm-vm"));
}

static void test_a_missing_device_is_no_verdict_and_says_why(void **state)
{
	char why[128];

	(void)state;
	assert_int_equal(borrow_probe("/nonexistent/kvm", why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/kvm"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eio_means_a_stock_kernel),
		cmocka_unit_test(test_an_fd_or_eacces_means_the_kernel_checks_ptrace_rights),
		cmocka_unit_test(test_any_other_answer_is_no_verdict),
		cmocka_unit_test(test_only_the_exact_vm_link_is_a_vm_fd),
		cmocka_unit_test(test_a_vcpu_link_needs_digits_after_the_colon),
		cmocka_unit_test(test_a_missing_device_is_no_verdict_and_says_why),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
