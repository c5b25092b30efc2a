/* SPDX-License-Identifier: MIT */
/* webauth - see webauth.h. */
#include "webauth.h"

#include <crypt.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "authheader.h"
#include "clock.h"

#define MAC_LEN WEBAUTH_MAC_LEN

struct cached {
	unsigned char mac[MAC_LEN];
	uint64_t until_ns; /* remembered until then */
};

struct webauth {
	const struct config_auth_user *users;
	unsigned n_users;
	/* a setting of the highest configured cost, for unknown users */
	char dummy[CONFIG_BCRYPT_LEN + 1];
	unsigned char mac_key[MAC_LEN];
	uint64_t cache_ns;
	pthread_mutex_t lock; /* the cache below */
	struct cached cache[WEBAUTH_CACHE_SIZE];
	unsigned n_cached, next_slot; /* filled slots; the oldest, replaced next */
	atomic_uint_fast64_t bcrypt_runs, cache_hits;
};

int webauth_hash_usable(const char *hash)
{
	return config_is_bcrypt(hash) && crypt_checksalt(hash) == CRYPT_SALT_OK ? 0 : -EINVAL;
}

/* The cost of a bcrypt hash "$2b$NN$...", checked by config_is_bcrypt. */
static unsigned bcrypt_cost(const char *hash)
{
	return (unsigned)(hash[4] - '0') * 10 + (unsigned)(hash[5] - '0');
}

int webauth_new(struct webauth **out, const struct config_auth_user *users, unsigned n,
		uint64_t cache_ns)
{
	struct webauth *a = calloc(1, sizeof(*a));
	unsigned cost = 4;
	int rc = 0;

	if (!a)
		return -ENOMEM;
	a->users = users;
	a->n_users = n;
	a->cache_ns = cache_ns;
	for (unsigned i = 0; i < n; i++)
		if (bcrypt_cost(users[i].hash) > cost)
			cost = bcrypt_cost(users[i].hash);
	/* the salt does not matter: no password is ever accepted against it */
	snprintf(a->dummy, sizeof(a->dummy), "$2b$%02u$......................", cost);
	if (getrandom(a->mac_key, sizeof(a->mac_key), 0) != (ssize_t)sizeof(a->mac_key))
		rc = -EIO;
	if (rc == 0 && (rc = -pthread_mutex_init(&a->lock, NULL)) == 0)
		*out = a;
	else
		free(a);
	return rc;
}

void webauth_free(struct webauth *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	explicit_bzero(a, sizeof(*a));
	free(a);
}

/* Equal without a branch on the bytes: the time says nothing about where they differ. */
static bool same_bytes(const unsigned char *x, const unsigned char *y, size_t n)
{
	unsigned char diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(x[i] ^ y[i]);
	return diff == 0;
}

/* HMAC of user NUL password NUL hash: neither name nor password holds a NUL. */
static int cache_key(const struct webauth *a, const char *user, const char *pass, const char *hash,
		     unsigned char mac[MAC_LEN])
{
	char text[CONFIG_AUTH_NAME_MAX + AUTHHEADER_MAX + CONFIG_BCRYPT_LEN + 3];
	int len = snprintf(text, sizeof(text), "%s%c%s%c%s", user, 0, pass, 0, hash);
	int rc = -EINVAL;

	if (len > 0 && (size_t)len < sizeof(text))
		rc = gnutls_hmac_fast(GNUTLS_MAC_SHA256, a->mac_key, sizeof(a->mac_key), text,
				      (size_t)len, mac)
			 ? -EIO
			 : 0;
	explicit_bzero(text, sizeof(text));
	return rc;
}

/* Every slot is compared, found or not: the time does not tell which slot matched. */
static bool cache_has(struct webauth *a, const unsigned char mac[MAC_LEN], uint64_t now_ns)
{
	bool found = false;

	pthread_mutex_lock(&a->lock);
	for (unsigned i = 0; i < a->n_cached; i++)
		found |=
		    same_bytes(a->cache[i].mac, mac, MAC_LEN) & (a->cache[i].until_ns > now_ns);
	pthread_mutex_unlock(&a->lock);
	return found;
}

static void cache_add(struct webauth *a, const unsigned char mac[MAC_LEN], uint64_t now_ns)
{
	pthread_mutex_lock(&a->lock);
	memcpy(a->cache[a->next_slot].mac, mac, MAC_LEN);
	a->cache[a->next_slot].until_ns = now_ns + a->cache_ns;
	a->next_slot = (a->next_slot + 1) % WEBAUTH_CACHE_SIZE;
	if (a->n_cached < WEBAUTH_CACHE_SIZE)
		a->n_cached++;
	pthread_mutex_unlock(&a->lock);
}

/* One bcrypt of pass with setting; true when the result is hash. */
static int bcrypt_matches(struct webauth *a, const char *pass, const char *setting,
			  const char *hash, bool *ok)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd)); /* 32 KiB: not on a thread's stack */
	const char *out;

	if (!cd)
		return -ENOMEM;
	atomic_fetch_add_explicit(&a->bcrypt_runs, 1, memory_order_relaxed);
	out = crypt_rn(pass, setting, cd, sizeof(*cd));
	*ok =
	    hash && out && strlen(out) == CONFIG_BCRYPT_LEN &&
	    same_bytes((const unsigned char *)out, (const unsigned char *)hash, CONFIG_BCRYPT_LEN);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return 0;
}

static const struct config_auth_user *find_user(const struct webauth *a, const char *name)
{
	for (unsigned i = 0; i < a->n_users; i++)
		if (!strcmp(a->users[i].name, name))
			return &a->users[i];
	return NULL;
}

/* 0 when user and pass match a remembered success; -ENOENT when not; -errno. */
static int check_cached(struct webauth *a, const char *user, const char *pass,
			const struct config_auth_user *u, uint64_t now_ns,
			unsigned char mac[MAC_LEN])
{
	int rc = cache_key(a, user, pass, u->hash, mac);

	if (rc == 0 && !cache_has(a, mac, now_ns))
		rc = -ENOENT;
	if (rc == 0)
		atomic_fetch_add_explicit(&a->cache_hits, 1, memory_order_relaxed);
	return rc;
}

void webauth_attempt_clear(struct webauth_attempt *at)
{
	explicit_bzero(at, sizeof(*at));
}

int webauth_begin(struct webauth *a, const char *authorization, uint64_t now_ns,
		  struct webauth_attempt *at)
{
	const struct config_auth_user *u;
	unsigned char mac[MAC_LEN];
	int rc = -EACCES;

	if (authorization && authheader_parse(authorization, at->user, sizeof(at->user), at->pass,
					      sizeof(at->pass)) == 0) {
		u = find_user(a, at->user);
		rc = u ? check_cached(a, at->user, at->pass, u, now_ns, mac) : -ENOENT;
		if (rc == -ENOENT)
			rc = -EINPROGRESS;
	}
	if (rc != -EINPROGRESS)
		webauth_attempt_clear(at);
	return rc;
}

int webauth_finish(struct webauth *a, struct webauth_attempt *at, uint64_t now_ns)
{
	const struct config_auth_user *u = find_user(a, at->user);
	unsigned char mac[MAC_LEN];
	bool ok = false;
	int rc;

	if (!u) /* the same work as for a known user, then no */
		rc = bcrypt_matches(a, at->pass, a->dummy, NULL, &ok);
	else if ((rc = bcrypt_matches(a, at->pass, u->hash, u->hash, &ok)) == 0 && ok &&
		 (rc = cache_key(a, at->user, at->pass, u->hash, mac)) == 0)
		cache_add(a, mac, now_ns);
	webauth_attempt_clear(at);
	return rc < 0 ? rc : ok ? 0 : -EACCES;
}

int webauth_check(struct webauth *a, const char *authorization)
{
	struct webauth_attempt at;
	uint64_t now = clock_mono_ns();
	int rc = webauth_begin(a, authorization, now, &at);

	if (rc == -EINPROGRESS)
		rc = webauth_finish(a, &at, now);
	return rc;
}

void webauth_get_counts(struct webauth *a, struct webauth_counts *out)
{
	out->bcrypt_runs = atomic_load_explicit(&a->bcrypt_runs, memory_order_relaxed);
	out->cache_hits = atomic_load_explicit(&a->cache_hits, memory_order_relaxed);
}
