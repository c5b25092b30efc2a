/* SPDX-License-Identifier: MIT */
/* sdenv - see sdenv.h. */
#include "sdenv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reason.h"

/* Digits only, at most max: strtoull would take a sign, spaces, a base
 * prefix and wrap "-1" around to a huge count. */
static int parse_dec(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*s < '0' || *s > '9' || d > max || v > (max - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Is the process a variable names us? 0, -EINVAL (no pid), -ESRCH (another). */
static int for_us(const char *var, const char *pid, pid_t self, char *why, size_t why_size)
{
	uint64_t p;

	if (parse_dec(pid, INT_MAX, &p) < 0 || p == 0)
		return reason_set(why, why_size, -EINVAL, "%s is not a process id", var);
	if (p != (uint64_t)self)
		return reason_set(why, why_size, -ESRCH, "%s is %llu, not us (%d)", var,
				  (unsigned long long)p, (int)self);
	return 0;
}

/* LISTEN_FDNAMES: one name per fd, ':' between them; "" names none, as
 * libsystemd reads it (not one empty name). */
static int split_names(const char *s, struct sdenv_fds *out, char *why, size_t why_size)
{
	size_t len = strnlen(s, sizeof(out->buf)), count = len ? 1 : 0;
	char *rest = out->buf;

	if (len == sizeof(out->buf))
		return reason_set(why, why_size, -EINVAL, "LISTEN_FDNAMES is longer than %zu bytes",
				  sizeof(out->buf) - 1);
	memcpy(out->buf, s, len + 1);
	for (const char *c = out->buf; (c = strchr(c, ':')); c++)
		count++;
	if (count != (size_t)out->n)
		return reason_set(why, why_size, -EINVAL,
				  "LISTEN_FDNAMES names %zu sockets, LISTEN_FDS passes %d", count,
				  out->n);
	for (int i = 0; i < out->n; i++)
		out->names[i] = strsep(&rest, ":");
	return out->n;
}

int sdenv_parse_fds(const char *pid, const char *fds, const char *names, pid_t self,
		    struct sdenv_fds *out, char *why, size_t why_size)
{
	uint64_t n;
	int rc;

	memset(out->names, 0, sizeof(out->names));
	out->n = 0;
	/* as documented: without LISTEN_PID, nothing was passed to anybody */
	if (!pid || !fds)
		return 0;
	if ((rc = for_us("LISTEN_PID", pid, self, why, why_size)) < 0)
		return rc;
	if (parse_dec(fds, SDENV_MAX_FDS, &n) < 0)
		return reason_set(why, why_size, -EINVAL,
				  "LISTEN_FDS is not a number of sockets from 0 to %d",
				  SDENV_MAX_FDS);
	out->n = (int)n;
	/*
	 * Unset: every socket is unnamed (systemd-socket-activate without
	 * --fdname). Set but empty is refused below, not taken as unnamed:
	 * systemd names every fd it passes (FileDescriptorName=, else the
	 * socket unit's name) and our units name both (http, register), so ""
	 * comes from a manager or a hand-made environment we do not know, and
	 * matching its sockets by kind alone would be a guess. libsystemd
	 * refuses it too (0 names for n fds).
	 */
	if (!n || !names)
		return out->n;
	return split_names(names, out, why, why_size);
}

int sdenv_parse_watchdog(const char *usec_s, const char *pid, pid_t self, uint64_t *usec, char *why,
			 size_t why_size)
{
	uint64_t v;
	int rc;

	*usec = 0;
	if (!usec_s)
		return 0;
	/* unset: the manager watches whoever reads it */
	if (pid && (rc = for_us("WATCHDOG_PID", pid, self, why, why_size)) < 0)
		return rc;
	if (parse_dec(usec_s, UINT64_MAX, &v) < 0)
		return reason_set(why, why_size, -EINVAL,
				  "WATCHDOG_USEC is not a decimal number of microseconds");
	if (v < SDENV_WATCHDOG_MIN_USEC || v > SDENV_WATCHDOG_MAX_USEC)
		return reason_set(why, why_size, -EINVAL,
				  "WATCHDOG_USEC=%llu is 0 or infinity, not a period",
				  (unsigned long long)v);
	*usec = v;
	return 1;
}

int sdenv_take_fds(struct sdenv_fds *out, char *why, size_t why_size)
{
	int rc = sdenv_parse_fds(getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
				 getenv("LISTEN_FDNAMES"), getpid(), out, why, why_size);

	/* whatever they said: no child of ours may take them for its own */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (int i = 0; rc > 0 && i < out->n; i++)
		if (fcntl(SDENV_FDS_START + i, F_SETFD, FD_CLOEXEC) < 0)
			rc = reason_set(why, why_size, -errno, "fd %d of LISTEN_FDS: %s",
					SDENV_FDS_START + i, strerror(errno));
	return rc;
}

int sdenv_take_watchdog(uint64_t *usec, char *why, size_t why_size)
{
	int rc = sdenv_parse_watchdog(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid(),
				      usec, why, why_size);

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return rc;
}
