/* SPDX-License-Identifier: MIT */
/*
 * journal - log records as structured journald entries (the native
 * protocol: one datagram of fields per record) when stderr is connected
 * to the journal, so that events carry KVMSTATD_VM=, KVMSTATD_VMM_PID=
 * and KVMSTATD_REASON= next to MESSAGE=.
 *
 * sd_journal_send() opens its socket lazily in the calling process; the
 * worker, under seccomp, cannot create one. So the socket is connected
 * once at start-up (journal_open) and both processes send on that fd.
 */
#ifndef KVMSTATD_JOURNAL_H
#define KVMSTATD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

/* What a record may say besides its message; NULL/0 fields are left out. */
struct log_fields {
	const char *vm;	    /* KVMSTATD_VM= */
	int vmm_pid;	    /* KVMSTATD_VMM_PID= */
	const char *reason; /* KVMSTATD_REASON= */
};

/*
 * Pure: does JOURNAL_STREAM ("<dev>:<ino>", as systemd sets it) name the
 * file stderr is (dev, ino)? A malformed value is no match.
 */
bool journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino);

/*
 * Pure: one record in the native protocol into buf: PRIORITY (syslog's
 * number), SYSLOG_IDENTIFIER=kvmstatd, KVMSTATD_ROLE, the fields, and
 * MESSAGE in the binary form (any bytes). Length, or -ENOSPC.
 */
int journal_encode(char *buf, size_t size, int priority, const char *role,
		   const struct log_fields *f, const char *msg);

/*
 * When stderr is the journal's ($JOURNAL_STREAM), connect to journald's
 * socket: true when records go there from now on.
 */
bool journal_open(void);

/* The connected socket (to hand to the worker), or -1. */
int journal_fd(void);

/* Send on fd, a socket journal_open connected in the helper (-1: none). */
void journal_adopt(int fd);

/* Send one record; 0 or -errno (the caller falls back to stderr). */
int journal_send(int priority, const char *role, const struct log_fields *f, const char *msg);

#endif
