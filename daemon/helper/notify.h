/* SPDX-License-Identifier: MIT */
/*
 * notify - messages to the service manager (the sd_notify(3) protocol):
 * READY=1, RELOADING=1, STATUS=..., WATCHDOG=1. Only the helper sends:
 * it is the main process systemd knows (NotifyAccess=main), and the
 * worker's poll loop reaches systemd only through it (docs/security.md).
 *
 * libsystemd's sd_notify() makes and addresses a new socket per call. The
 * helper cannot count on that after start-up: it is then the service user
 * under seccomp, and NOTIFY_SOCKET may lie in a directory only root can
 * search. So the socket is connected once, while still root, and every
 * message is one send() on that fd.
 */
#ifndef KVMSTATD_NOTIFY_H
#define KVMSTATD_NOTIFY_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/*
 * NOTIFY_SOCKET's value to an address: an absolute path, or "@name" for
 * the abstract namespace. 0, or -EINVAL (empty, relative, too long).
 */
int notify_parse_address(const char *s, struct sockaddr_un *sa, socklen_t *len);

/*
 * Connect to $NOTIFY_SOCKET and take the watchdog settings ($WATCHDOG_USEC,
 * for this pid by $WATCHDOG_PID; sdenv.h), then remove the variables so no
 * child sees them. A malformed watchdog setting is logged: no watchdog.
 * 0 when systemd did not ask (every send is then a no-op), 1 when
 * connected, -errno on a socket that is named but unusable.
 */
int notify_open(void);

/* Watchdog period in microseconds, 0 when off. */
uint64_t notify_watchdog_usec(void);

/* One message, e.g. notify_send("READY=1\nSTATUS=%s", s). 0 or -errno; a
 * no-op returning 0 without a socket. Never blocks. */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void notify_close(void);

#endif
