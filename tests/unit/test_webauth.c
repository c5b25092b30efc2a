/* SPDX-License-Identifier: MIT */
/*
 * test_webauth - HTTP basic auth: the strict Authorization header parser
 * (base64 included) and the bcrypt check with its cache of successes.
 *
 * Hashes are made here with libxcrypt at cost 4 (the cheapest bcrypt), so
 * the tests are fast; the cost does not change what is checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "authheader.h"
#include "config.h"
#include "webauth.h"

/* ---- base64 -------------------------------------------------------------- */

static int decode(const char *in, char *out, size_t size)
{
	int n = authheader_b64decode(in, strlen(in), (unsigned char *)out, size);

	if (n >= 0 && (size_t)n < size)
		out[n] = '\0';
	return n;
}

static void test_b64_rfc4648_vectors(void **state)
{
	static const char *const vec[][2] = {
		{ "", "" },
		{ "Zg==", "f" },
		{ "Zm8=", "fo" },
		{ "Zm9v", "foo" },
		{ "Zm9vYg==", "foob" },
		{ "Zm9vYmE=", "fooba" },
		{ "Zm9vYmFy", "foobar" },
	};
	char out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		assert_int_equal(decode(vec[i][0], out, sizeof(out)), strlen(vec[i][1]));
		assert_string_equal(out, vec[i][1]);
	}
	assert_int_equal(decode("+/+/", out, sizeof(out)), 3);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
}

static void test_b64_refuses_what_is_not_canonical(void **state)
{
	static const char *const bad[] = {
		"Zg",	    /* padding missing */
		"Zg=",	    /* length not a multiple of 4 */
		"Zg===",    /* too much padding */
		"====",	    /* nothing but padding */
		"Z===",	    /* one character cannot make a byte */
		"Zg==Zg==", /* padding in the middle */
		"Zh==",	    /* unused bits set: "f" is Zg== only */
		"Zm9=",	    /* likewise for two bytes */
		"Zm9v\n",   /* line break */
		"Zm 9",	    /* blank */
		"Zm-_",	    /* the URL alphabet */
		"Zm9\x80",  /* not ASCII */
	};
	char out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (decode(bad[i], out, sizeof(out)) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
}

static void test_b64_never_writes_past_the_buffer(void **state)
{
	char out[8];

	(void)state;
	memset(out, 'x', sizeof(out));
	assert_int_equal(decode("Zm9vYmFy", out, 5), -E2BIG);
	assert_memory_equal(out, "xxxxxxxx", sizeof(out));
	assert_int_equal(decode("Zm9vYmE=", out, 5), 5);
}

/* ---- the Authorization header --------------------------------------------- */

static char user[CONFIG_AUTH_NAME_MAX], pass[AUTHHEADER_MAX];

static int parse(const char *value)
{
	return authheader_parse(value, user, sizeof(user), pass, sizeof(pass));
}

static void test_header_basic_user_and_password(void **state)
{
	(void)state;
	assert_int_equal(parse("Basic YWxpY2U6czNjcmV0"), 0); /* alice:s3cret */
	assert_string_equal(user, "alice");
	assert_string_equal(pass, "s3cret");
	assert_int_equal(parse("basic   YWxpY2U6czNjcmV0"), 0); /* scheme in any case, 1*SP */
	assert_int_equal(parse("Basic YWxpY2U6"), 0);		/* alice: (empty password) */
	assert_string_equal(pass, "");
	assert_int_equal(parse("Basic YWxpY2U6YTpi"), 0); /* alice:a:b, the first ':' splits */
	assert_string_equal(user, "alice");
	assert_string_equal(pass, "a:b");
}

static void test_header_other_schemes_are_not_ours(void **state)
{
	(void)state;
	assert_int_equal(parse("Bearer abc"), -ENOENT);
	assert_int_equal(parse("Basic\tYWxpY2U6eA=="), -ENOENT); /* a tab is not SP */
	assert_int_equal(parse("Basicx YWxpY2U6eA=="), -ENOENT);
	assert_int_equal(parse(""), -ENOENT);
	assert_int_equal(parse("Digest username=\"alice\""), -ENOENT);
}

static void test_header_malformed_is_refused(void **state)
{
	static const char *const bad[] = {
		"Basic",		   /* no credentials */
		"Basic ",		   /* empty credentials */
		"Basic YWxpY2U6eA== ",	   /* trailing blank */
		"Basic YWxpY2U",	   /* bad base64 */
		"Basic YWxpY2U=",	   /* "alice": no colon */
		"Basic OnNlY3JldA==",	   /* ":secret": empty user */
		"Basic YWwAaWNlOng=",	   /* "al\0ice:x": NUL in the user */
		"Basic YWxpY2U6eAB5",	   /* "alice:x\0y": NUL in the password */
		"Basic YWxpY2U6eA15",	   /* "alice:x\ry": CR */
		"Basic YWwKaWNlOng=",	   /* "al\nice:x": LF */
		"Basic YWxpY2U6f38=",	   /* "alice:\x7f\x7f": DEL */
		"Basic YWxpY2U6eA==,Zm9v", /* anything after */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) != -EINVAL)
			fail_msg("\"%s\": %d, want -EINVAL", bad[i], parse(bad[i]));
}

static void test_header_bounds(void **state)
{
	char value[2048] = "Basic ", raw[1024];
	size_t n;

	(void)state;
	/* a 64-byte user does not fit the 63 a user name may have */
	memset(raw, 'u', 64);
	memcpy(raw + 64, ":p", 3);
	n = strlen(value);
	for (size_t i = 0; i < 66; i += 3) { /* base64 of raw, 3 bytes at a time */
		static const char a[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		unsigned v = (unsigned char)raw[i] << 16 | (unsigned char)raw[i + 1] << 8 |
			     (unsigned char)raw[i + 2];

		for (int s = 18; s >= 0; s -= 6)
			value[n++] = a[(v >> s) & 63];
	}
	value[n] = '\0';
	assert_int_equal(parse(value), -E2BIG);
	/* a value longer than any credentials we read is refused before decoding */
	memset(value + 6, 'A', 1000);
	value[1006] = '\0';
	assert_int_equal(parse(value), -E2BIG);
	/* short buffers */
	assert_int_equal(authheader_parse("Basic YWxpY2U6czNjcmV0", user, 5, pass, sizeof(pass)),
			 -E2BIG);
	assert_int_equal(authheader_parse("Basic YWxpY2U6czNjcmV0", user, 6, pass, 6), -E2BIG);
	assert_int_equal(authheader_parse("Basic YWxpY2U6czNjcmV0", user, 6, pass, 7), 0);
}

/* ---- bcrypt, cache ---------------------------------------------------------- */

static void make_hash(const char *password, char prefix_y, char out[CONFIG_BCRYPT_LEN + 1])
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;

	memset(&cd, 0, sizeof(cd));
	assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, setting, sizeof(setting)));
	assert_non_null(crypt_r(password, setting, &cd));
	assert_int_equal(strlen(cd.output), CONFIG_BCRYPT_LEN);
	memcpy(out, cd.output, CONFIG_BCRYPT_LEN + 1);
	if (prefix_y) /* htpasswd -B writes $2y$: the same algorithm */
		out[2] = prefix_y;
}

/* "Basic base64(user:password)" */
static const char *header(const char *u, const char *p)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static char value[1024];
	unsigned char raw[600];
	size_t len = (size_t)snprintf((char *)raw, sizeof(raw), "%s:%s", u, p), n = 6;

	memcpy(value, "Basic ", 6);
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = raw[i] << 16 | (i + 1 < len ? raw[i + 1] << 8 : 0) |
			     (i + 2 < len ? raw[i + 2] : 0);

		value[n++] = a[v >> 18 & 63];
		value[n++] = a[v >> 12 & 63];
		value[n++] = i + 1 < len ? a[v >> 6 & 63] : '=';
		value[n++] = i + 2 < len ? a[v & 63] : '=';
	}
	value[n] = '\0';
	return value;
}

static struct config_auth_user users[2];

static struct webauth *new_auth(void)
{
	struct webauth *a = NULL;

	snprintf(users[0].name, sizeof(users[0].name), "alice");
	make_hash("s3cret", 0, users[0].hash);
	snprintf(users[1].name, sizeof(users[1].name), "bob");
	make_hash("hunter2", 'y', users[1].hash);
	assert_int_equal(webauth_new(&a, users, 2, 60000000000ull), 0);
	return a;
}

static void test_right_password_passes_wrong_ones_do_not(void **state)
{
	struct webauth *a = new_auth();

	(void)state;
	assert_int_equal(webauth_check(a, header("alice", "s3cret")), 0);
	assert_int_equal(webauth_check(a, header("bob", "hunter2")), 0); /* a $2y$ hash */
	assert_int_equal(webauth_check(a, header("alice", "hunter2")), -EACCES);
	assert_int_equal(webauth_check(a, header("alice", "s3cret ")), -EACCES);
	assert_int_equal(webauth_check(a, header("alice", "")), -EACCES);
	assert_int_equal(webauth_check(a, header("Alice", "s3cret")), -EACCES);
	assert_int_equal(webauth_check(a, header("mallory", "s3cret")), -EACCES);
	assert_int_equal(webauth_check(a, NULL), -EACCES);
	assert_int_equal(webauth_check(a, "Bearer s3cret"), -EACCES);
	assert_int_equal(webauth_check(a, "Basic !!!!"), -EACCES);
	webauth_free(a);
}

static void test_unknown_users_pay_a_bcrypt_too(void **state)
{
	struct webauth *a = new_auth();
	struct webauth_counts n;

	(void)state;
	assert_int_equal(webauth_check(a, header("mallory", "x")), -EACCES);
	webauth_get_counts(a, &n);
	assert_int_equal(n.bcrypt_runs, 1);
	webauth_free(a);
}

static void test_successes_are_cached_failures_are_not(void **state)
{
	struct webauth *a = new_auth();
	struct webauth_counts n;

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(webauth_check(a, header("alice", "s3cret")), 0);
	webauth_get_counts(a, &n);
	assert_int_equal(n.bcrypt_runs, 1);
	assert_int_equal(n.cache_hits, 4);
	for (int i = 0; i < 3; i++)
		assert_int_equal(webauth_check(a, header("alice", "wrong")), -EACCES);
	webauth_get_counts(a, &n);
	assert_int_equal(n.bcrypt_runs, 4);
	assert_int_equal(n.cache_hits, 4);
	/* a cached success is one user's: another user with that password gets no pass */
	assert_int_equal(webauth_check(a, header("bob", "s3cret")), -EACCES);
	webauth_free(a);
}

/*
 * bcrypt reads 72 bytes of a password: longer ones that share them all
 * pass, so one user can make any number of distinct successes. The cache
 * keeps the last WEBAUTH_CACHE_SIZE of them and no more.
 */
static void test_cache_is_bounded(void **state)
{
	char base[80], pw[100];
	struct webauth *a = NULL;
	struct webauth_counts n;
	const unsigned many = WEBAUTH_CACHE_SIZE + 6;

	(void)state;
	memset(base, 'p', 72);
	base[72] = '\0';
	snprintf(users[0].name, sizeof(users[0].name), "alice");
	make_hash(base, 0, users[0].hash);
	assert_int_equal(webauth_new(&a, users, 1, 60000000000ull), 0);
	for (unsigned i = 0; i < many; i++) {
		snprintf(pw, sizeof(pw), "%s%u", base, i);
		assert_int_equal(webauth_check(a, header("alice", pw)), 0);
	}
	webauth_get_counts(a, &n);
	assert_int_equal(n.bcrypt_runs, many);
	snprintf(pw, sizeof(pw), "%s%u", base, many - 1); /* the newest: still there */
	assert_int_equal(webauth_check(a, header("alice", pw)), 0);
	snprintf(pw, sizeof(pw), "%s%u", base, 0u); /* the oldest: gone */
	assert_int_equal(webauth_check(a, header("alice", pw)), 0);
	webauth_get_counts(a, &n);
	assert_int_equal(n.cache_hits, 1);
	assert_int_equal(n.bcrypt_runs, many + 1);
	webauth_free(a);
}

/* The two halves the HTTP server uses: no bcrypt in the first one. */
static void test_begin_answers_without_bcrypt_and_finish_pays_it(void **state)
{
	struct webauth *a = new_auth();
	struct webauth_attempt at;
	struct webauth_counts n;
	const uint64_t t = 1000000000ull;

	(void)state;
	assert_int_equal(webauth_begin(a, "Basic !!!!", t, &at), -EACCES);
	assert_int_equal(webauth_begin(a, NULL, t, &at), -EACCES);
	assert_int_equal(webauth_begin(a, header("alice", "s3cret"), t, &at), -EINPROGRESS);
	webauth_get_counts(a, &n);
	assert_int_equal(n.bcrypt_runs, 0);
	assert_int_equal(webauth_finish(a, &at, t), 0);
	/* the pair is gone from the attempt once finished */
	assert_int_equal(at.pass[0], '\0');
	assert_int_equal(webauth_begin(a, header("alice", "s3cret"), t + 1, &at), 0);
	assert_int_equal(webauth_begin(a, header("mallory", "x"), t, &at), -EINPROGRESS);
	assert_int_equal(webauth_finish(a, &at, t), -EACCES);
	webauth_get_counts(a, &n);
	assert_int_equal(n.bcrypt_runs, 2);
	assert_int_equal(n.cache_hits, 1);
	webauth_free(a);
}

/* A success is remembered for cache_ns (60 s here), then paid again. */
static void test_a_remembered_success_expires(void **state)
{
	struct webauth *a = new_auth();
	struct webauth_attempt at;
	const uint64_t t = 5000000000ull, ttl = 60000000000ull;

	(void)state;
	assert_int_equal(webauth_begin(a, header("alice", "s3cret"), t, &at), -EINPROGRESS);
	assert_int_equal(webauth_finish(a, &at, t), 0);
	assert_int_equal(webauth_begin(a, header("alice", "s3cret"), t + ttl - 1, &at), 0);
	assert_int_equal(webauth_begin(a, header("alice", "s3cret"), t + ttl, &at), -EINPROGRESS);
	webauth_attempt_clear(&at);
	webauth_free(a);
}

static void test_hash_forms(void **state)
{
	char h[CONFIG_BCRYPT_LEN + 1];

	(void)state;
	make_hash("x", 0, h);
	assert_true(config_is_bcrypt(h));
	assert_int_equal(webauth_hash_usable(h), 0);
	h[2] = 'y';
	assert_int_equal(webauth_hash_usable(h), 0);
	h[2] = 'a';
	assert_int_equal(webauth_hash_usable(h), 0);
	h[2] = 'x';
	assert_false(config_is_bcrypt(h));
	assert_false(
	    config_is_bcrypt("$6$salt$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQR"));
	assert_false(
	    config_is_bcrypt("$2b$03$......................0123456789012345678901234567890"));
	assert_false(
	    config_is_bcrypt("$2b$32$......................0123456789012345678901234567890"));
	assert_false(
	    config_is_bcrypt("$2b$10$......................012345678901234567890123456789"));
	assert_false(
	    config_is_bcrypt("$2b$10$......................01234567890123456789012345678!0"));
	assert_false(config_is_bcrypt("secret"));
	assert_int_equal(webauth_hash_usable("secret"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_rfc4648_vectors),
		cmocka_unit_test(test_b64_refuses_what_is_not_canonical),
		cmocka_unit_test(test_b64_never_writes_past_the_buffer),
		cmocka_unit_test(test_header_basic_user_and_password),
		cmocka_unit_test(test_header_other_schemes_are_not_ours),
		cmocka_unit_test(test_header_malformed_is_refused),
		cmocka_unit_test(test_header_bounds),
		cmocka_unit_test(test_right_password_passes_wrong_ones_do_not),
		cmocka_unit_test(test_unknown_users_pay_a_bcrypt_too),
		cmocka_unit_test(test_successes_are_cached_failures_are_not),
		cmocka_unit_test(test_cache_is_bounded),
		cmocka_unit_test(test_begin_answers_without_bcrypt_and_finish_pays_it),
		cmocka_unit_test(test_a_remembered_success_expires),
		cmocka_unit_test(test_hash_forms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
