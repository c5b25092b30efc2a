/* SPDX-License-Identifier: MIT */
/* Unit tests: q values of Accept / Accept-Encoding lists (daemon/exposition/accept.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "accept.h"
#include "gzip.h"

static void test_q_defaults_to_one_and_takes_the_best(void **state)
{
	(void)state;
	assert_true(accept_q("gzip", "gzip", NULL) == 1.0);
	assert_true(accept_q("gzip;q=0.2, deflate, GZIP;q=0.7", "gzip", NULL) == 0.7);
	assert_true(accept_q("deflate", "gzip", NULL) == 0);
	assert_true(accept_q(NULL, "gzip", NULL) == 0);
	assert_true(accept_q("", "gzip", NULL) == 0);
}

static void test_wildcard_stands_in_only_when_the_token_is_absent(void **state)
{
	(void)state;
	assert_true(accept_q("*;q=0.3", "gzip", "*") == 0.3);
	assert_true(accept_q("gzip;q=0, *", "gzip", "*") == 0);
	assert_true(accept_q("*/*;q=0.1", "text/plain", "*/*") == 0.1);
}

static void test_q_of_another_element_or_parameter_is_not_taken(void **state)
{
	(void)state;
	/* "xq=0" is a parameter named xq, not q; and q belongs to its element */
	assert_true(gzip_accepted("gzip;xq=0"));
	assert_true(gzip_accepted("gzip, br;q=0"));
	assert_false(gzip_accepted("gzip;q=0, br"));
	assert_true(accept_q("a;version=1;q=0.5,b", "a", NULL) == 0.5);
	assert_true(accept_q("a ; q=0.25", "a", NULL) == 0.25);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_q_defaults_to_one_and_takes_the_best),
		cmocka_unit_test(test_wildcard_stands_in_only_when_the_token_is_absent),
		cmocka_unit_test(test_q_of_another_element_or_parameter_is_not_taken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
