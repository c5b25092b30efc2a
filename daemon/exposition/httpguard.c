/* SPDX-License-Identifier: MIT */
/*
 * httpguard - see httpguard.h. Both tables are small (libmicrohttpd's
 * connection limit, HTTPGUARD_FAIL_CLIENTS) and scanned in full: no
 * allocation after start-up, and a scan of a few hundred entries costs
 * less than the accept it follows.
 */
#include "httpguard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conn {
	bool used;	/* the slot holds a connection libmicrohttpd has */
	bool served;	/* counted in max_conns: neither cut nor turned away */
	bool answering; /* its whole request arrived; the answer is not out */
	bool waiting;	/* for a password check: never cut for room */
	int fd;
	struct httpguard_client client;
	uint64_t since_ns; /* accept, or the end of the previous answer */
};

struct fail {
	bool used;
	struct httpguard_client client;
	uint64_t tat_ns;  /* GCRA: when the budget is whole again */
	uint64_t last_ns; /* the latest failure */
};

struct httpguard {
	struct httpguard_limits lim;
	pthread_mutex_t lock; /* everything below */
	struct conn *conns;   /* lim.slots */
	unsigned served;
	struct fail fails[HTTPGUARD_FAIL_CLIENTS];
	struct httpguard_counts counts;
};

int httpguard_new(struct httpguard **out, const struct httpguard_limits *l)
{
	struct httpguard *g = calloc(1, sizeof(*g));
	int rc = -ENOMEM;

	if (g && l->slots > l->max_conns && (g->conns = calloc(l->slots, sizeof(*g->conns)))) {
		g->lim = *l;
		rc = -pthread_mutex_init(&g->lock, NULL);
	} else if (g) {
		rc = l->slots > l->max_conns ? -ENOMEM : -EINVAL;
	}
	if (rc == 0) {
		*out = g;
	} else if (g) {
		free(g->conns);
		free(g);
	}
	return rc;
}

void httpguard_free(struct httpguard *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g->conns);
	free(g);
}

/* ---- clients ----------------------------------------------------------------- */

void httpguard_client_of(const struct sockaddr *sa, socklen_t len, struct httpguard_client *out)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	memset(out, 0, sizeof(*out));
	if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		memcpy(out->b, v4mapped, sizeof(v4mapped));
		memcpy(out->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6 &&
		   len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		memcpy(out->b, &s6->sin6_addr, 16);
		if (memcmp(out->b, v4mapped, sizeof(v4mapped)) != 0)
			memset(out->b + 8, 0, 8); /* the /64 */
	}
}

void httpguard_client_str(const struct httpguard_client *c, char *out, size_t size)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char text[INET6_ADDRSTRLEN];
	bool v4 = memcmp(c->b, v4mapped, sizeof(v4mapped)) == 0;

	if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? c->b + 12 : c->b, text, sizeof(text)))
		snprintf(text, sizeof(text), "?");
	snprintf(out, size, "%s%s", text, v4 ? "" : "/64");
}

static bool same_client(const struct httpguard_client *a, const struct httpguard_client *b)
{
	return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

/* ---- connections ------------------------------------------------------------- */

static unsigned served_of(const struct httpguard *g, const struct httpguard_client *c)
{
	unsigned n = 0;

	for (unsigned i = 0; i < g->lim.slots; i++)
		n += g->conns[i].served && same_client(&g->conns[i].client, c);
	return n;
}

/* Shut the connection down and stop counting it; libmicrohttpd closes it. */
static void cut(struct httpguard *g, struct conn *c)
{
	(void)shutdown(c->fd, SHUT_RDWR);
	if (c->served)
		g->served--;
	c->served = false;
}

/* Is a better to cut than b? a, b: served, not waiting; held is each one's client's count. */
static bool worse(const struct conn *a, unsigned held_a, const struct conn *b, unsigned held_b)
{
	if (a->answering != b->answering)
		return !a->answering; /* no whole request yet: cut first */
	if (held_a != held_b)
		return held_a > held_b;
	return a->since_ns < b->since_ns;
}

/* The connection to cut for a newcomer, or NULL. */
static struct conn *victim(struct httpguard *g)
{
	struct conn *best = NULL;
	unsigned best_held = 0;

	for (unsigned i = 0; i < g->lim.slots; i++) {
		struct conn *c = &g->conns[i];
		unsigned held;

		if (!c->served || c->waiting)
			continue;
		held = served_of(g, &c->client);
		if (!best || worse(c, held, best, best_held))
			best = c, best_held = held;
	}
	return best;
}

static enum httpguard_verdict admit(struct httpguard *g, struct conn *c)
{
	struct conn *v;

	if (g->lim.per_client && served_of(g, &c->client) >= g->lim.per_client) {
		g->counts.per_client++;
		return GUARD_PER_CLIENT;
	}
	if (g->served < g->lim.max_conns)
		return GUARD_SERVE;
	v = victim(g);
	if (!v) {
		g->counts.full++;
		return GUARD_FULL;
	}
	cut(g, v);
	g->counts.evicted++;
	return GUARD_SERVE_EVICTED;
}

static int free_slot(const struct httpguard *g, unsigned *slot)
{
	for (unsigned i = 0; i < g->lim.slots; i++) {
		if (!g->conns[i].used) {
			*slot = i;
			return 0;
		}
	}
	return -ENOSPC;
}

int httpguard_open(struct httpguard *g, int fd, const struct sockaddr *sa, socklen_t len,
		   uint64_t now_ns, unsigned *slot, enum httpguard_verdict *v)
{
	struct conn *c;
	int rc;

	pthread_mutex_lock(&g->lock);
	rc = free_slot(g, slot);
	if (rc == 0) {
		c = &g->conns[*slot];
		*c = (struct conn){ .used = true, .fd = fd, .since_ns = now_ns };
		httpguard_client_of(sa, len, &c->client);
		*v = admit(g, c);
		if (*v == GUARD_SERVE || *v == GUARD_SERVE_EVICTED) {
			c->served = true;
			g->served++;
		} else {
			(void)shutdown(fd, SHUT_RDWR);
		}
	}
	pthread_mutex_unlock(&g->lock);
	return rc;
}

void httpguard_close(struct httpguard *g, unsigned slot)
{
	pthread_mutex_lock(&g->lock);
	if (slot < g->lim.slots && g->conns[slot].used) {
		if (g->conns[slot].served)
			g->served--;
		g->conns[slot] = (struct conn){ .fd = -1 };
	}
	pthread_mutex_unlock(&g->lock);
}

void httpguard_answering(struct httpguard *g, unsigned slot)
{
	pthread_mutex_lock(&g->lock);
	if (slot < g->lim.slots)
		g->conns[slot].answering = true;
	pthread_mutex_unlock(&g->lock);
}

void httpguard_set_waiting(struct httpguard *g, unsigned slot, bool waiting)
{
	pthread_mutex_lock(&g->lock);
	if (slot < g->lim.slots)
		g->conns[slot].waiting = waiting;
	pthread_mutex_unlock(&g->lock);
}

void httpguard_answered(struct httpguard *g, unsigned slot, uint64_t now_ns)
{
	pthread_mutex_lock(&g->lock);
	if (slot < g->lim.slots) {
		g->conns[slot].answering = false;
		g->conns[slot].since_ns = now_ns;
	}
	pthread_mutex_unlock(&g->lock);
}

unsigned httpguard_sweep(struct httpguard *g, uint64_t now_ns)
{
	unsigned n = 0;

	pthread_mutex_lock(&g->lock);
	for (unsigned i = 0; i < g->lim.slots; i++) {
		struct conn *c = &g->conns[i];

		/* a connection opened after now_ns was read is not overdue */
		if (c->served && now_ns > c->since_ns &&
		    now_ns - c->since_ns >= g->lim.request_ns) {
			cut(g, c);
			n++;
		}
	}
	g->counts.deadline += n;
	pthread_mutex_unlock(&g->lock);
	return n;
}

void httpguard_client_of_slot(struct httpguard *g, unsigned slot, struct httpguard_client *out)
{
	pthread_mutex_lock(&g->lock);
	if (slot < g->lim.slots)
		*out = g->conns[slot].client;
	pthread_mutex_unlock(&g->lock);
}

/* ---- failed checks ----------------------------------------------------------- */

/* One check's share of the window. */
static uint64_t fail_cost(const struct httpguard *g)
{
	return g->lim.fail_window_ns / g->lim.fail_limit;
}

static struct fail *find_fail(struct httpguard *g, const struct httpguard_client *c)
{
	for (unsigned i = 0; i < HTTPGUARD_FAIL_CLIENTS; i++)
		if (g->fails[i].used && same_client(&g->fails[i].client, c))
			return &g->fails[i];
	return NULL;
}

/*
 * A place for a new client: a free one, else one whose budget is whole
 * again (nothing to remember), else the one that owes least: a client
 * with many addresses can only make us forget the clients that failed
 * least.
 */
static struct fail *new_fail(struct httpguard *g, const struct httpguard_client *c, uint64_t now_ns)
{
	struct fail *best = &g->fails[0];

	for (unsigned i = 0; i < HTTPGUARD_FAIL_CLIENTS; i++) {
		struct fail *f = &g->fails[i];

		if (!f->used || f->tat_ns <= now_ns) {
			best = f;
			break;
		}
		if (f->tat_ns < best->tat_ns)
			best = f;
	}
	*best = (struct fail){ .used = true, .client = *c, .tat_ns = now_ns };
	return best;
}

int httpguard_may_check(struct httpguard *g, const struct httpguard_client *c, uint64_t now_ns,
			unsigned *retry_s)
{
	struct fail *f;
	uint64_t allowed_from;
	int rc = 0;

	if (!g->lim.fail_limit)
		return 0;
	pthread_mutex_lock(&g->lock);
	f = find_fail(g, c);
	/* spent: tat more than a window ahead less one check's share */
	if (f && f->tat_ns > now_ns + g->lim.fail_window_ns - fail_cost(g)) {
		allowed_from = f->tat_ns - (g->lim.fail_window_ns - fail_cost(g));
		*retry_s = (unsigned)((allowed_from - now_ns + 999999999ull) / 1000000000ull);
		if (*retry_s == 0)
			*retry_s = 1;
		g->counts.auth_refused++;
		rc = -EAGAIN;
	}
	pthread_mutex_unlock(&g->lock);
	return rc;
}

bool httpguard_has_failed(struct httpguard *g, const struct httpguard_client *c, uint64_t now_ns)
{
	const struct fail *f;
	bool failed;

	pthread_mutex_lock(&g->lock);
	f = find_fail(g, c);
	failed = f && now_ns - f->last_ns < g->lim.fail_window_ns;
	pthread_mutex_unlock(&g->lock);
	return failed;
}

void httpguard_check_failed(struct httpguard *g, const struct httpguard_client *c, uint64_t now_ns)
{
	struct fail *f;

	if (!g->lim.fail_limit)
		return;
	pthread_mutex_lock(&g->lock);
	f = find_fail(g, c);
	if (!f)
		f = new_fail(g, c, now_ns);
	if (f->tat_ns < now_ns)
		f->tat_ns = now_ns;
	f->tat_ns += fail_cost(g);
	f->last_ns = now_ns;
	pthread_mutex_unlock(&g->lock);
}

unsigned httpguard_served(struct httpguard *g)
{
	unsigned n;

	pthread_mutex_lock(&g->lock);
	n = g->served;
	pthread_mutex_unlock(&g->lock);
	return n;
}

void httpguard_get_counts(struct httpguard *g, struct httpguard_counts *out)
{
	pthread_mutex_lock(&g->lock);
	*out = g->counts;
	pthread_mutex_unlock(&g->lock);
}
