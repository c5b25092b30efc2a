/* SPDX-License-Identifier: MIT */
/*
 * listen - the HTTP listening socket, opened by the helper before the
 * worker starts (so a port below 1024 or a socket handed over by systemd
 * later works the same way) and inherited by the worker.
 */
#ifndef KVMSTATD_LISTEN_H
#define KVMSTATD_LISTEN_H

#include <stddef.h>

/* addr: "PORT", ":PORT", "ADDR:PORT", "[V6]:PORT". Empty host: all
 * addresses, IPv6 and IPv4 where the host has IPv6. */
int listen_tcp(const char *addr, int *out_fd, char *err, size_t err_size);

#endif
