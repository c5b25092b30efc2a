/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sdenv - libFuzzer target: what the service manager puts in the
 * environment (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, WATCHDOG_USEC,
 * WATCHDOG_PID), read by the privileged helper at start. The input is five
 * strings split at NUL bytes; a missing one is unset. Byte 0 picks "self":
 * the pid the values are for, so that matching pids are reached.
 *
 * Beyond memory safety it checks the contract of sdenv.h: a refusal is
 * -EINVAL or -ESRCH with a sentence, never quoting the value (no control
 * character in it); an accepted LISTEN_* has 0..SDENV_MAX_FDS fds, names
 * exactly when LISTEN_FDNAMES is set, each name a piece of it; an accepted
 * watchdog period is within its bounds (neither 0 nor infinity) and is
 * the number given.
 *
 * Build and run: see tests/fuzz/README.md. Seeds: tests/fuzz/corpus/sdenv.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sdenv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_sentence(const char *why, size_t size)
{
	size_t len = strnlen(why, size);

	if (len == 0 || len == size)
		abort();
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)why[i] < 0x20 || why[i] == 0x7f)
			abort();
}

static void check_fds(int rc, const char *names, const struct sdenv_fds *f, const char *why)
{
	if (rc < 0) {
		if (rc != -EINVAL && rc != -ESRCH)
			abort();
		check_sentence(why, 256);
		return;
	}
	if (rc != f->n || rc > SDENV_MAX_FDS)
		abort();
	for (int i = 0; i < rc; i++) {
		if ((names != NULL) != (f->names[i] != NULL))
			abort();
		if (f->names[i] && !strstr(names, f->names[i]))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *v[5] = { NULL };
	char buf[4096], why[256];
	struct sdenv_fds fds;
	uint64_t usec = 0;
	pid_t self;
	size_t at = 1;
	int rc;

	if (size < 1 || size >= sizeof(buf))
		return 0;
	self = (pid_t)(data[0] % 4 == 0 ? 1 : data[0] % 4 == 1 ? 42 : 4194304);
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (int i = 0; i < 5 && at <= size; i++) {
		v[i] = buf + at;
		at += strlen(buf + at) + 1;
	}
	memset(&fds, 0xa5, sizeof(fds));
	why[0] = '\0';
	rc = sdenv_parse_fds(v[0], v[1], v[2], self, &fds, why, sizeof(why));
	check_fds(rc, v[2], &fds, why);

	why[0] = '\0';
	rc = sdenv_parse_watchdog(v[3], v[4], self, &usec, why, sizeof(why));
	if (rc < 0) {
		if (rc != -EINVAL && rc != -ESRCH)
			abort();
		check_sentence(why, sizeof(why));
	} else if (rc == 1) {
		char *end;

		/* any period systemd can set: not 0, not infinity */
		if (usec < SDENV_WATCHDOG_MIN_USEC || usec > SDENV_WATCHDOG_MAX_USEC || usec == 0 ||
		    usec == UINT64_MAX)
			abort();
		if (!v[3] || strtoull(v[3], &end, 10) != usec || *end)
			abort();
	} else if (rc != 0) {
		abort();
	}
	return 0;
}
