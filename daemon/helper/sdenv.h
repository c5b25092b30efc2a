/* SPDX-License-Identifier: MIT */
/*
 * sdenv - what the service manager says in our environment, read the way
 * sd_listen_fds(3) and sd_watchdog_enabled(3) document it, without
 * linking libsystemd (and the compression and crypto libraries it brings)
 * into the privileged process:
 *
 *   LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES  sockets at fds 3, 4, ... for the
 *                                           process LISTEN_PID names
 *   WATCHDOG_USEC, WATCHDOG_PID             the watchdog's period, for the
 *                                           process WATCHDOG_PID names (any
 *                                           when unset)
 *
 * Every value is untrusted: numbers are plain decimal and bounded, the
 * names must be as many as the fds. A refusal is -EINVAL with a sentence
 * (which never quotes the value: it may hold control characters); values
 * meant for another process are -ESRCH. The parsers are pure; the take
 * functions read and then unset the variables, so that no child sees them.
 */
#ifndef KVMSTATD_SDENV_H
#define KVMSTATD_SDENV_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#define SDENV_FDS_START 3 /* SD_LISTEN_FDS_START */
#define SDENV_MAX_FDS 8	  /* more than the units we ship pass is a mistake */
/* systemd's names are at most 255 bytes; each name's own checks are the
 * caller's (activation_match) */
#define SDENV_NAMES_SIZE (SDENV_MAX_FDS * 256)
/* Any period systemd can set is taken as it comes, as sd_watchdog_enabled()
 * does: systemd enforces WatchdogSec= whatever we think of it, so refusing
 * one only stops the beats and gets us killed every period. How often the
 * worker beats for it is the helper's choice (helper_beat_ms), and so is
 * the warning when that cannot keep up. 0 is no period, and UINT64_MAX is
 * systemd's "infinity", never a period it passes. */
#define SDENV_WATCHDOG_MIN_USEC 1ull
#define SDENV_WATCHDOG_MAX_USEC (UINT64_MAX - 1)

struct sdenv_fds {
	int n;				  /* at SDENV_FDS_START, SDENV_FDS_START + 1, ... */
	const char *names[SDENV_MAX_FDS]; /* into buf; NULL without LISTEN_FDNAMES */
	char buf[SDENV_NAMES_SIZE];
};

/*
 * Pure: the three LISTEN_* values (NULL: unset) for process self. The
 * number of fds (0: none passed, or LISTEN_PID unset), -ESRCH when
 * LISTEN_PID names another process, -EINVAL on anything malformed.
 * out->n is LISTEN_FDS once it is read, also when the names are refused
 * after it: those fds are ours to close.
 */
int sdenv_parse_fds(const char *pid, const char *fds, const char *names, pid_t self,
		    struct sdenv_fds *out, char *why, size_t why_size);

/*
 * Pure: WATCHDOG_USEC and WATCHDOG_PID (NULL: unset) for process self.
 * 1 with *usec set, 0 when there is no watchdog, -ESRCH when it watches
 * another process, -EINVAL when the period is malformed, 0 or beyond
 * SDENV_WATCHDOG_MAX_USEC.
 */
int sdenv_parse_watchdog(const char *usec_s, const char *pid, pid_t self, uint64_t *usec, char *why,
			 size_t why_size);

/* sdenv_parse_fds on our environment, then unset LISTEN_* whatever they
 * said, and make every fd passed close-on-exec (-EBADF: one is not open).
 * On -EINVAL and -EBADF, out->n is still how many LISTEN_FDS passed (0
 * when it or LISTEN_PID was malformed). */
int sdenv_take_fds(struct sdenv_fds *out, char *why, size_t why_size);

/* sdenv_parse_watchdog on our environment, then unset WATCHDOG_*. */
int sdenv_take_watchdog(uint64_t *usec, char *why, size_t why_size);

#endif
