/* SPDX-License-Identifier: MIT */
/* notify - see notify.h. */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sdenv.h"

static int notify_fd = -1;
static uint64_t watchdog_usec;

int notify_parse_address(const char *s, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = s ? strlen(s) : 0;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* a path needs its NUL; an abstract name has its leading NUL instead */
	if (n < 2 || n >= sizeof(sa->sun_path) || (s[0] != '/' && s[0] != '@'))
		return -EINVAL;
	memcpy(sa->sun_path, s, n);
	if (s[0] == '@')
		sa->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (s[0] == '/'));
	return 0;
}

int notify_open(void)
{
	const char *addr = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t len;
	char why[128];
	int fd = -1, rc;

	/* WATCHDOG_PID names the process systemd watches: ours, the helper's.
	 * Another process's watchdog is none of our business (libsystemd says
	 * nothing then either); a malformed one is a manager to look at. */
	rc = sdenv_take_watchdog(&watchdog_usec, why, sizeof(why));
	if (rc == -ESRCH)
		log_info("%s: no watchdog beats", why);
	else if (rc < 0)
		log_warn("%s: no watchdog beats", why);
	if (!addr) {
		rc = 0;
		goto out;
	}
	if ((rc = notify_parse_address(addr, &sa, &len)) < 0)
		goto out;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, len) < 0) {
		rc = -errno;
		goto out;
	}
	notify_fd = fd;
	fd = -1;
	rc = 1;
out:
	if (fd >= 0)
		close(fd);
	unsetenv("NOTIFY_SOCKET");
	return rc;
}

uint64_t notify_watchdog_usec(void)
{
	return notify_fd >= 0 ? watchdog_usec : 0;
}

int notify_send(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -EMSGSIZE;
	/* the manager reads credentials from the socket: nothing to attach */
	return send(notify_fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

void notify_close(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
}
