/* SPDX-License-Identifier: MIT */
/*
 * policy - see policy.h.
 *
 * Per-uid state lives in one table: a request token bucket and the count of
 * stats fds charged. Its memory is fixed at policy_new and bounded however
 * many uids come by:
 *
 *   - An idle entry (no fds charged) is only a bucket, and a full bucket
 *     is no state at all: a uid we do not know starts with a full one. At
 *     most POLICY_MAX_IDLE idle entries are kept. When a new uid needs a
 *     place, every idle entry whose bucket has refilled is forgotten; if
 *     none has, the EVICT_BATCH idle entries with the most tokens are,
 *     which gives their uids back the fewest requests they had used. Only
 *     an attacker with more than POLICY_MAX_IDLE uids all busy at once
 *     gains anything, and no more than buckets it had emptied; memory
 *     stays bounded, and forgetting in batches keeps a flood of new uids
 *     from costing a scan of the table each.
 *   - An entry with fds charged is never forgotten: a forgotten count would
 *     let that uid charge max_sources_per_uid again, and refunds would go
 *     missing. Every such uid holds at least one fd, so there are at most
 *     max_sources of them (the helper's own limit); the table has a place
 *     for each, and refuses a charge past that rather than grow.
 *
 * Time is integer nanoseconds and tokens are counted in 1e-9 tokens, so a
 * refill of elapsed_ns * rate_limit is exact: no float drift, however long
 * the daemon runs. The lookup is open addressing (linear probing) over
 * indices into a dense array of entries.
 */
#include "policy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define POLICY_MAX_IDLE 4096u		  /* idle uids whose bucket we remember */
#define POLICY_MAX_CHARGED (1u << 20)	  /* beyond any max_sources the config allows */
#define TOKEN 1000000000ull		  /* one request, in 1e-9 tokens */
#define NO_SLOT ((uint32_t)0)		  /* slots[] holds entry index + 1 */
#define HASH_MUL 2654435769u		  /* 2^32 / golden ratio: Fibonacci hashing */
#define EVICT_BATCH (POLICY_MAX_IDLE / 8) /* idle uids forgotten at once if none is full */
#define FULLNESS_LEVELS 16u

struct uid_entry {
	uid_t uid;
	unsigned charged; /* stats fds; > 0: never forgotten */
	uint64_t tokens;  /* in 1e-9 tokens, as of last_ns */
	uint64_t last_ns;
};

struct policy {
	uid_t allow_uids[CONFIG_ALLOW_MAX];
	gid_t allow_gids[CONFIG_ALLOW_MAX];
	unsigned n_allow_uids, n_allow_gids;
	unsigned max_per_uid;
	unsigned max_conns_per_uid; /* registration connections */
	unsigned rate, burst;	    /* rate 0: no limit, no buckets kept */
	uint64_t capacity;	    /* burst * TOKEN */
	uint64_t fill_ns;	    /* an empty bucket is full after this long */
	uint64_t now_ns;	    /* the latest time policy_take_token was given */

	struct uid_entry *entries; /* dense: [0, n_entries) */
	size_t n_entries, max_entries;
	size_t n_charged, max_charged; /* entries with charged > 0 */
	uint32_t *slots;	       /* 2^bits of them, at most half used */
	unsigned bits;
};

/* ---- the table ------------------------------------------------------------- */

static size_t home_slot(const struct policy *p, uid_t uid)
{
	return (uint32_t)((uint32_t)uid * HASH_MUL) >> (32 - p->bits);
}

static size_t slot_mask(const struct policy *p)
{
	return ((size_t)1 << p->bits) - 1;
}

/* The slot that holds uid, or the empty slot where it would go. */
static size_t find_slot(const struct policy *p, uid_t uid)
{
	size_t i = home_slot(p, uid);

	while (p->slots[i] != NO_SLOT && p->entries[p->slots[i] - 1].uid != uid)
		i = (i + 1) & slot_mask(p);
	return i;
}

static struct uid_entry *find(const struct policy *p, uid_t uid)
{
	size_t i = find_slot(p, uid);

	return p->slots[i] == NO_SLOT ? NULL : &p->entries[p->slots[i] - 1];
}

/* A new entry for uid (not in the table); the caller made room. */
static struct uid_entry *insert(struct policy *p, uid_t uid)
{
	size_t i = find_slot(p, uid);
	struct uid_entry *e = &p->entries[p->n_entries];

	*e = (struct uid_entry){ .uid = uid, .tokens = p->capacity, .last_ns = p->now_ns };
	p->slots[i] = (uint32_t)++p->n_entries;
	return e;
}

/* Empty slot i, moving later entries of its probe run back (no tombstones). */
static void clear_slot(struct policy *p, size_t i)
{
	size_t mask = slot_mask(p), j = i;

	for (;;) {
		j = (j + 1) & mask;
		if (p->slots[j] == NO_SLOT)
			break;
		/* the entry at j may fill the hole at i if i is not before its home */
		if (((j - home_slot(p, p->entries[p->slots[j] - 1].uid)) & mask) >=
		    ((j - i) & mask)) {
			p->slots[i] = p->slots[j];
			i = j;
		}
	}
	p->slots[i] = NO_SLOT;
}

static void forget(struct policy *p, struct uid_entry *e)
{
	size_t idx = (size_t)(e - p->entries), last = p->n_entries - 1;

	clear_slot(p, find_slot(p, e->uid));
	if (idx != last) { /* the last entry fills the gap in the dense array */
		p->entries[idx] = p->entries[last];
		p->slots[find_slot(p, p->entries[idx].uid)] = (uint32_t)(idx + 1);
	}
	p->n_entries--;
}

/* ---- buckets ----------------------------------------------------------------- */

static uint64_t tokens_at(const struct policy *p, const struct uid_entry *e, uint64_t now)
{
	uint64_t elapsed, t;

	if (now <= e->last_ns)
		return e->tokens;
	elapsed = now - e->last_ns;
	if (elapsed >= p->fill_ns)
		return p->capacity;
	t = e->tokens + elapsed * p->rate; /* elapsed * rate < capacity + rate: no overflow */
	return t < p->capacity ? t : p->capacity;
}

/* How full a bucket is, in 1/FULLNESS_LEVELS: 0 .. FULLNESS_LEVELS (full). */
static unsigned fullness(const struct policy *p, uint64_t tokens)
{
	return (unsigned)(tokens * FULLNESS_LEVELS / p->capacity); /* <= 16e15: no overflow */
}

static size_t n_idle(const struct policy *p)
{
	return p->n_entries - p->n_charged;
}

/*
 * Forget idle uids until a new entry fits under POLICY_MAX_IDLE: every full
 * bucket, and if that is not enough, EVICT_BATCH of the fullest (to within
 * 1/FULLNESS_LEVELS), so that a flood of new uids costs two scans of the
 * table per EVICT_BATCH of them, not per uid. Walking down the dense array,
 * forget() moves into the hole an entry already seen.
 */
static void make_room(struct policy *p)
{
	size_t count[FULLNESS_LEVELS] = { 0 }, need, cut_quota, seen = 0;
	unsigned cut;

	if (n_idle(p) < POLICY_MAX_IDLE)
		return;
	for (size_t i = p->n_entries; i-- > 0;) {
		uint64_t t = tokens_at(p, &p->entries[i], p->now_ns);

		if (p->entries[i].charged)
			continue;
		if (t >= p->capacity)
			forget(p, &p->entries[i]); /* no state: free to forget */
		else
			count[fullness(p, t)]++;
	}
	if (n_idle(p) < POLICY_MAX_IDLE)
		return;
	need = n_idle(p) - POLICY_MAX_IDLE + 1;
	if (need < EVICT_BATCH)
		need = EVICT_BATCH;
	/* levels above cut go entirely, level cut for what is still needed */
	for (cut = FULLNESS_LEVELS; cut-- > 0;) {
		if (seen + count[cut] >= need)
			break;
		seen += count[cut];
	}
	cut_quota = need - seen;
	for (size_t i = p->n_entries; i-- > 0;) {
		unsigned level;

		if (p->entries[i].charged)
			continue;
		level = fullness(p, tokens_at(p, &p->entries[i], p->now_ns));
		if (level == cut && cut_quota) {
			cut_quota--;
			forget(p, &p->entries[i]);
		} else if (level > cut) {
			forget(p, &p->entries[i]);
		}
	}
	/* the counts above make this a no-op; the table's size depends on it */
	for (size_t i = p->n_entries; i-- > 0 && n_idle(p) >= POLICY_MAX_IDLE;)
		if (!p->entries[i].charged)
			forget(p, &p->entries[i]);
}

/* ---- the API ------------------------------------------------------------------- */

int policy_new(struct policy **out, const struct config *cfg)
{
	struct policy *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->n_allow_uids =
	    cfg->n_allow_uids < CONFIG_ALLOW_MAX ? cfg->n_allow_uids : CONFIG_ALLOW_MAX;
	p->n_allow_gids =
	    cfg->n_allow_gids < CONFIG_ALLOW_MAX ? cfg->n_allow_gids : CONFIG_ALLOW_MAX;
	for (unsigned i = 0; i < p->n_allow_uids; i++)
		p->allow_uids[i] = cfg->allow_uids[i];
	for (unsigned i = 0; i < p->n_allow_gids; i++)
		p->allow_gids[i] = cfg->allow_gids[i];
	p->max_per_uid = cfg->max_sources_per_uid;
	p->max_conns_per_uid = cfg->max_connections_per_uid ? cfg->max_connections_per_uid : 1;
	if (p->max_conns_per_uid > POLICY_MAX_CONNS / 2) /* the reserve leaves the others half */
		p->max_conns_per_uid = POLICY_MAX_CONNS / 2;
	p->rate = cfg->rate_limit;
	p->burst = cfg->rate_burst ? cfg->rate_burst : 1;
	if (p->rate) {
		p->capacity = (uint64_t)p->burst * TOKEN;
		p->fill_ns = (p->capacity + p->rate - 1) / p->rate;
	}
	/* charged uids hold >= 1 fd each: no more of them than max_sources */
	p->max_charged = cfg->max_sources ? cfg->max_sources : 1;
	if (p->max_charged > POLICY_MAX_CHARGED)
		p->max_charged = POLICY_MAX_CHARGED;
	p->max_entries = POLICY_MAX_IDLE + p->max_charged;
	p->bits = 1;
	while (((size_t)1 << p->bits) < 2 * p->max_entries) /* at most half full */
		p->bits++;
	p->entries = calloc(p->max_entries, sizeof(*p->entries));
	p->slots = calloc((size_t)1 << p->bits, sizeof(*p->slots));
	if (!p->entries || !p->slots) {
		policy_free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->entries);
	free(p->slots);
	free(p);
}

int policy_admit(const struct policy *p, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups,
		 char *why, size_t why_size)
{
	if (!p->n_allow_uids && !p->n_allow_gids)
		return 0;
	for (unsigned i = 0; i < p->n_allow_uids; i++)
		if (p->allow_uids[i] == uid)
			return 0;
	for (unsigned i = 0; i < p->n_allow_gids; i++) {
		if (p->allow_gids[i] == gid)
			return 0;
		for (size_t j = 0; j < n_groups; j++)
			if (p->allow_gids[i] == groups[j])
				return 0;
	}
	snprintf(why, why_size, "uid %u is not in allow_users/allow_groups", (unsigned)uid);
	return -EPERM;
}

int policy_admit_conn(const struct policy *p, uid_t uid, unsigned n_uid, unsigned n_all, char *why,
		      size_t why_size)
{
	unsigned others_max = POLICY_MAX_CONNS - p->max_conns_per_uid;

	if (n_uid >= p->max_conns_per_uid) {
		snprintf(why, why_size,
			 "uid %u holds %u registration connections "
			 "(max_connections_per_uid)",
			 (unsigned)uid, n_uid);
		return -ENOSPC;
	}
	if (n_all >= POLICY_MAX_CONNS || (uid != 0 && n_all >= others_max)) {
		snprintf(why, why_size, "%u registration connections are open%s", n_all,
			 uid != 0 && n_all < POLICY_MAX_CONNS ? ": the rest are root's" : "");
		return -ENOSPC;
	}
	return 0;
}

int policy_take_token(struct policy *p, uid_t uid, uint64_t now_ns, char *why, size_t why_size)
{
	struct uid_entry *e;

	if (!p->rate)
		return 0;
	if (now_ns > p->now_ns)
		p->now_ns = now_ns;
	e = find(p, uid);
	if (!e) {
		make_room(p);
		e = insert(p, uid); /* full, as of p->now_ns */
	}
	e->tokens = tokens_at(p, e, now_ns);
	if (now_ns > e->last_ns) /* a clock that went back refills nothing */
		e->last_ns = now_ns;
	if (e->tokens < TOKEN) {
		snprintf(why, why_size, "uid %u over rate_limit %u/s (burst %u)", (unsigned)uid,
			 p->rate, p->burst);
		return -EAGAIN;
	}
	e->tokens -= TOKEN;
	return 0;
}

int policy_charge(struct policy *p, uid_t uid, unsigned n_fds, char *why, size_t why_size)
{
	struct uid_entry *e = find(p, uid);
	unsigned held = e ? e->charged : 0;

	if (!n_fds)
		return 0;
	if ((uint64_t)held + n_fds > p->max_per_uid) {
		snprintf(why, why_size, "uid %u holds %u stats fds, %u more exceed %s %u",
			 (unsigned)uid, held, n_fds, "max_sources_per_uid", p->max_per_uid);
		return -ENOSPC;
	}
	if (!held && p->n_charged >= p->max_charged) { /* the helper's limit stops this first */
		snprintf(why, why_size, "uid %u: %zu uids hold stats fds already (max_sources)",
			 (unsigned)uid, p->n_charged);
		return -ENOSPC;
	}
	if (!e) {
		make_room(p);
		e = insert(p, uid);
	}
	if (!held)
		p->n_charged++;
	e->charged += n_fds;
	return 0;
}

void policy_refund(struct policy *p, uid_t uid, unsigned n_fds)
{
	struct uid_entry *e = find(p, uid);

	if (!e || !e->charged || !n_fds)
		return;
	e->charged -= n_fds < e->charged ? n_fds : e->charged; /* never below 0 */
	if (e->charged)
		return;
	p->n_charged--;
	/* idle now: a full bucket (as of the latest time we know) is no state */
	if (!p->rate || tokens_at(p, e, p->now_ns) >= p->capacity)
		forget(p, e);
}

unsigned policy_charged(const struct policy *p, uid_t uid)
{
	const struct uid_entry *e = find(p, uid);

	return e ? e->charged : 0;
}
