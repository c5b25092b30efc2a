/* SPDX-License-Identifier: MIT */
/*
 * webauth - HTTP basic auth against the bcrypt hashes of
 * [basic_auth_users], as the Prometheus exporter-toolkit's basic_auth_users.
 *
 * A check costs one bcrypt (libxcrypt's crypt_rn) unless the same user,
 * password and stored hash passed before: a Prometheus scraping every 15 s
 * would otherwise pay it on every scrape. Successes are remembered in a
 * small, bounded cache keyed by an HMAC-SHA256 under a key drawn at random
 * when the instance is made, so the cache holds neither a password nor a
 * fast hash of one that would be worth anything outside this process.
 * An unknown user pays a bcrypt of the highest configured cost as well,
 * so the time of an answer does not tell which names exist. A success is
 * remembered for cache_ns, so a changed hash or a leaked password is not
 * good for ever in a long-running worker (a reload starts a new worker,
 * and with it an empty cache). Thread-safe: the HTTP threads share one
 * instance.
 *
 * The check comes in two halves so that the bcrypt can run on a thread of
 * its own (http.c): webauth_begin answers at once what needs no bcrypt
 * (a remembered success, a malformed header) and webauth_finish pays it.
 */
#ifndef KVMSTATD_WEBAUTH_H
#define KVMSTATD_WEBAUTH_H

#include <stdint.h>

#include "authheader.h"
#include "config.h"

#define WEBAUTH_CACHE_SIZE 64 /* successful user/password pairs remembered */

#define WEBAUTH_MAC_LEN 32 /* HMAC-SHA256 */

struct webauth;

/* A check between its halves: the user and password, to be cleared. */
struct webauth_attempt {
	char user[CONFIG_AUTH_NAME_MAX];
	char pass[AUTHHEADER_MAX];
};

struct webauth_counts {
	uint64_t bcrypt_runs; /* checks that paid a bcrypt */
	uint64_t cache_hits;  /* checks the cache answered */
};

/*
 * users: n entries, borrowed (they must outlive the instance); cache_ns:
 * how long a success is remembered. 0 or -errno.
 */
int webauth_new(struct webauth **out, const struct config_auth_user *users, unsigned n,
		uint64_t cache_ns);
void webauth_free(struct webauth *a);

/*
 * An Authorization header value (NULL when there was none): 0 when it
 * names a configured user with the right password, -EACCES otherwise
 * (malformed, other scheme, unknown user, wrong password), -ENOMEM.
 */
int webauth_check(struct webauth *a, const char *authorization);

/*
 * The first half, no bcrypt: 0 for a success remembered at now_ns, -EACCES
 * for a missing or malformed header, -EINPROGRESS when the pair in *at
 * needs webauth_finish (which clears it).
 */
int webauth_begin(struct webauth *a, const char *authorization, uint64_t now_ns,
		  struct webauth_attempt *at);
/* The bcrypt: 0 (remembered from now_ns), -EACCES, -ENOMEM. Clears *at. */
int webauth_finish(struct webauth *a, struct webauth_attempt *at, uint64_t now_ns);
/* Forget the pair of an attempt that will not be finished. */
void webauth_attempt_clear(struct webauth_attempt *at);

void webauth_get_counts(struct webauth *a, struct webauth_counts *out);

/* 0 when this libcrypt can check the stored hash, -EINVAL otherwise. */
int webauth_hash_usable(const char *hash);

#endif
