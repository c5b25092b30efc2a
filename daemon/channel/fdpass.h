/* SPDX-License-Identifier: MIT */
/*
 * fdpass - one datagram with file descriptors over a SOCK_SEQPACKET socket.
 *
 * Used on both of the helper's sockets (VMMs, worker). Receiving closes
 * every descriptor of a datagram it refuses, so no refused fd ever stays
 * open, and always asks for MSG_CMSG_CLOEXEC.
 */
#ifndef KVMSTATD_FDPASS_H
#define KVMSTATD_FDPASS_H

#include <stddef.h>

#define FDPASS_MAX_FDS 253 /* the kernel's SCM_MAX_FD */

/* 0 or -errno (-EPIPE if the peer is gone; never raises SIGPIPE). */
int fdpass_send(int sock, const void *msg, size_t len, const int *fds, size_t n_fds);

/*
 * Receive one datagram into buf (cap bytes). Returns its length (0: peer
 * closed), or:
 *   -EMSGSIZE  datagram longer than cap (truncated: refused)
 *   -E2BIG     more than max_fds descriptors, or ancillary data truncated
 *   -EBADMSG   ancillary data other than SCM_RIGHTS (e.g. credentials)
 *   -EAGAIN    nothing to read (non-blocking socket)
 * On any error no descriptor is left open.
 */
int fdpass_recv(int sock, void *buf, size_t cap, int *fds, size_t max_fds, size_t *n_fds);

/* Close fds[0..n) with the closer installed (default close(2)), set -1. */
void fdpass_close_all(int *fds, size_t n);

/* Install how refused descriptors are closed (the helper: closer_close). */
void fdpass_set_closer(void (*close_fn)(int fd));

#endif
