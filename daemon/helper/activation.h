/* SPDX-License-Identifier: MIT */
/*
 * activation - listening sockets handed over by systemd (kvmstatd.socket)
 * or systemd-socket-activate, instead of ones the helper opens itself.
 *
 * Each inherited fd is matched to its job by its FileDescriptorName=
 * ("http", "register") and must be of the matching kind (a listening
 * TCP stream socket, a listening UNIX SOCK_SEQPACKET socket). An fd
 * without a name ("unknown": LISTEN_FDNAMES unset) is matched by its kind
 * alone. Anything else (more sockets than we know, a name twice, a name
 * we do not know, the wrong kind) is a configuration error: the daemon
 * does not guess which socket to serve.
 */
#ifndef KVMSTATD_ACTIVATION_H
#define KVMSTATD_ACTIVATION_H

#include <stddef.h>

#include "sdenv.h"

#define ACTIVATION_MAX_FDS SDENV_MAX_FDS
#define ACTIVATION_NAME_MAX 255 /* systemd's limit for FileDescriptorName= */

enum activation_kind {
	ACT_KIND_OTHER,	    /* anything we cannot serve */
	ACT_KIND_TCP,	    /* listening SOCK_STREAM, AF_INET or AF_INET6 */
	ACT_KIND_SEQPACKET, /* listening AF_UNIX SOCK_SEQPACKET */
};

/*
 * Pure: which of n sockets (names[i], kinds[i]) is the HTTP one and which
 * the registration one (-1: none of that job). 0, or -EINVAL with a
 * sentence in err.
 */
int activation_match(const char *const *names, const enum activation_kind *kinds, size_t n,
		     int *http_idx, int *reg_idx, char *err, size_t err_size);

/* What fd is, asked of the kernel: type, listening, address family. */
enum activation_kind activation_kind_of(int fd);

/*
 * Take the sockets systemd passed (sdenv_take_fds: LISTEN_* unset after),
 * and set *http_fd / *reg_fd to the matched ones (or -1). Returns the
 * number of sockets taken, or -errno with a sentence in err; on error
 * every fd LISTEN_FDS passed us is closed (none when LISTEN_PID or
 * LISTEN_FDS itself is malformed: then which fds are ours is unknown).
 * 0: none were passed, or they were meant for another process
 * (LISTEN_PID), which err then says.
 */
int activation_take(int *http_fd, int *reg_fd, char *err, size_t err_size);

#endif
