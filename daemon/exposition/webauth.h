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
 * so the time of an answer does not tell which names exist. Thread-safe:
 * the HTTP threads share one instance.
 */
#ifndef KVMSTATD_WEBAUTH_H
#define KVMSTATD_WEBAUTH_H

#include <stdint.h>

#include "config.h"

#define WEBAUTH_CACHE_SIZE 64 /* successful user/password pairs remembered */

struct webauth;

struct webauth_counts {
	uint64_t bcrypt_runs; /* checks that paid a bcrypt */
	uint64_t cache_hits;  /* checks the cache answered */
};

/* users: n entries, borrowed (they must outlive the instance). 0 or -errno. */
int webauth_new(struct webauth **out, const struct config_auth_user *users, unsigned n);
void webauth_free(struct webauth *a);

/*
 * An Authorization header value (NULL when there was none): 0 when it
 * names a configured user with the right password, -EACCES otherwise
 * (malformed, other scheme, unknown user, wrong password), -ENOMEM.
 */
int webauth_check(struct webauth *a, const char *authorization);

void webauth_get_counts(struct webauth *a, struct webauth_counts *out);

/* 0 when this libcrypt can check the stored hash, -EINVAL otherwise. */
int webauth_hash_usable(const char *hash);

#endif
