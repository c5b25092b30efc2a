/* SPDX-License-Identifier: MIT */
/*
 * httpguard - who the HTTP server keeps serving when clients misbehave.
 *
 * It knows every connection libmicrohttpd holds (a table of slots, one per
 * connection it may hold) and decides, cheapest rule first:
 *
 *   1. Clients. A client is an IPv4 address or an IPv6 /64 (an
 *      IPv4-mapped IPv6 address is its IPv4 address): one host on IPv6
 *      usually has a whole /64 to choose from.
 *   2. At most per_client connections of one client are served at once;
 *      another is turned away (shut down without an answer).
 *   3. A deadline for a whole request: from the accept, or from the end
 *      of the previous answer on a kept-alive connection, to the end of
 *      the answer, at most request_ns. A client that sends a byte a
 *      second, or reads its answer a byte a second, is cut off then
 *      (httpguard_sweep, called a few times a second).
 *   4. When max_conns are served and another arrives, the newcomer is
 *      served and a connection is cut to make room: one without a whole
 *      request yet (trickling or idle) before one being answered, of the
 *      client that holds the most, the oldest first. A connection waiting
 *      for its password check is never cut. If none can be cut the
 *      newcomer is turned away. So a few clients holding every connection
 *      lose their oldest ones to each newcomer, and a scraper from
 *      elsewhere is served.
 *   5. Failed password checks per client: a budget of fail_limit per
 *      fail_window_ns (GCRA: one comes back every window / limit). A
 *      client that spent it is refused without a check until one comes
 *      back; a success the cache remembers needs no budget.
 *
 * A connection is cut with shutdown(2) on its socket, under the table's
 * lock; libmicrohttpd then sees the end of the stream, closes it and
 * tells httpguard_close before it closes the fd, so no fd number is ever
 * shut down after it was reused. Thread-safe: the HTTP threads share one.
 */
#ifndef KVMSTATD_HTTPGUARD_H
#define KVMSTATD_HTTPGUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define HTTPGUARD_FAIL_CLIENTS 256 /* clients whose failed checks are remembered */

struct httpguard;

struct httpguard_client {
	uint8_t b[16]; /* IPv4 as ::ffff:a.b.c.d; IPv6 with the low 64 bits zero */
};

struct httpguard_limits {
	unsigned max_conns;  /* served at once */
	unsigned slots;	     /* connections libmicrohttpd may hold: > max_conns */
	unsigned per_client; /* 0: no bound but max_conns */
	uint64_t request_ns; /* whole-request deadline */
	unsigned fail_limit; /* failed checks per client and window; 0: no budget */
	uint64_t fail_window_ns;
};

/* What became of a new connection. */
enum httpguard_verdict {
	GUARD_SERVE,	     /* served */
	GUARD_SERVE_EVICTED, /* served; another connection was cut for it */
	GUARD_PER_CLIENT,    /* turned away: its client holds per_client */
	GUARD_FULL,	     /* turned away: max_conns, none could be cut */
};

struct httpguard_counts {
	uint64_t per_client, full, evicted, deadline, auth_refused;
};

int httpguard_new(struct httpguard **out, const struct httpguard_limits *l);
void httpguard_free(struct httpguard *g);

/* The client of a socket address (AF_INET, AF_INET6; other families: one client). */
void httpguard_client_of(const struct sockaddr *sa, socklen_t len, struct httpguard_client *out);

/* "a.b.c.d" or "xxxx:...::/64", for logs. */
void httpguard_client_str(const struct httpguard_client *c, char *out, size_t size);

/*
 * A connection on fd from sa was accepted at now_ns: *slot is its slot
 * (tracked until httpguard_close, even when turned away: its fd is then
 * shut down already). -ENOSPC when the table is full (cannot happen when
 * slots is libmicrohttpd's limit); the caller shuts the fd down then.
 */
int httpguard_open(struct httpguard *g, int fd, const struct sockaddr *sa, socklen_t len,
		   uint64_t now_ns, unsigned *slot, enum httpguard_verdict *v);
void httpguard_close(struct httpguard *g, unsigned slot);

/* The whole request of slot has arrived: it is being answered. */
void httpguard_answering(struct httpguard *g, unsigned slot);
/* Waiting for a password check (never cut for room) or not. */
void httpguard_set_waiting(struct httpguard *g, unsigned slot, bool waiting);
/* The answer is out (or the request failed): the deadline starts again. */
void httpguard_answered(struct httpguard *g, unsigned slot, uint64_t now_ns);

/* Cut every connection past its deadline at now_ns; returns how many. */
unsigned httpguard_sweep(struct httpguard *g, uint64_t now_ns);

void httpguard_client_of_slot(struct httpguard *g, unsigned slot, struct httpguard_client *out);

/*
 * May client have a password checked at now_ns? 0, or -EAGAIN when it has
 * spent its budget of failures; *retry_s is then the seconds until one
 * comes back (at least 1).
 */
int httpguard_may_check(struct httpguard *g, const struct httpguard_client *c, uint64_t now_ns,
			unsigned *retry_s);
/* Has client failed a check within the window before now_ns? */
bool httpguard_has_failed(struct httpguard *g, const struct httpguard_client *c, uint64_t now_ns);
/* A check of client's failed at now_ns: spend one of its budget. */
void httpguard_check_failed(struct httpguard *g, const struct httpguard_client *c, uint64_t now_ns);

/* Connections served now (not counting those cut or turned away). */
unsigned httpguard_served(struct httpguard *g);
void httpguard_get_counts(struct httpguard *g, struct httpguard_counts *out);

#endif
