/* SPDX-License-Identifier: MIT */
/* activation - see activation.h. */
#include "activation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define NAME_HTTP "http"
#define NAME_REGISTER "register"
#define NAME_UNNAMED "unknown" /* what libsystemd reports without LISTEN_FDNAMES */

/* systemd allows printable ASCII but ':' in a name; refuse the rest before
 * printing it (it came from the environment). */
static bool name_ok(const char *s)
{
	size_t n = strnlen(s, ACTIVATION_NAME_MAX + 1);

	if (n > ACTIVATION_NAME_MAX)
		return false;
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e || *s == ':')
			return false;
	return true;
}

static const char *kind_name(enum activation_kind k)
{
	return k == ACT_KIND_TCP	 ? "a TCP stream socket"
	       : k == ACT_KIND_SEQPACKET ? "a UNIX seqpacket socket"
					 : "neither a listening TCP nor UNIX seqpacket socket";
}

/* Put socket i into *slot (the job's index), once. */
static int assign(int *slot, size_t i, const char *job, char *err, size_t err_size)
{
	if (*slot >= 0) {
		snprintf(err, err_size, "two sockets for %s (fds %d and %zu)", job, 3 + *slot,
			 3 + i);
		return -EINVAL;
	}
	*slot = (int)i;
	return 0;
}

int activation_match(const char *const *names, const enum activation_kind *kinds, size_t n,
		     int *http_idx, int *reg_idx, char *err, size_t err_size)
{
	int rc = 0;

	*http_idx = *reg_idx = -1;
	if (n > ACTIVATION_MAX_FDS) {
		snprintf(err, err_size, "%zu sockets passed, at most %d expected", n,
			 ACTIVATION_MAX_FDS);
		return -EINVAL;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *name = names && names[i] ? names[i] : NAME_UNNAMED;
		bool unnamed = !strcmp(name, NAME_UNNAMED) || !name[0];
		enum activation_kind want = ACT_KIND_OTHER;

		if (!name_ok(name)) {
			snprintf(err, err_size,
				 "socket fd %zu: its name is not printable ASCII "
				 "of at most %d bytes",
				 3 + i, ACTIVATION_NAME_MAX);
			return -EINVAL;
		}
		if (!strcmp(name, NAME_HTTP) || (unnamed && kinds[i] == ACT_KIND_TCP))
			want = ACT_KIND_TCP;
		else if (!strcmp(name, NAME_REGISTER) ||
			 (unnamed && kinds[i] == ACT_KIND_SEQPACKET))
			want = ACT_KIND_SEQPACKET;
		if (want == ACT_KIND_OTHER) {
			snprintf(err, err_size,
				 "socket fd %zu (\"%.64s\", %s): not one of ours "
				 "(FileDescriptorName=" NAME_HTTP " or " NAME_REGISTER ")",
				 3 + i, name, kind_name(kinds[i]));
			return -EINVAL;
		}
		if (kinds[i] != want) {
			snprintf(err, err_size, "socket fd %zu (\"%.64s\") is %s, expected %s",
				 3 + i, name, kind_name(kinds[i]), kind_name(want));
			return -EINVAL;
		}
		if (want == ACT_KIND_TCP)
			rc = assign(http_idx, i, "HTTP", err, err_size);
		else
			rc = assign(reg_idx, i, "registration", err, err_size);
	}
	return rc;
}

static enum activation_kind kind_of(int fd)
{
	if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0)
		return ACT_KIND_TCP;
	if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) > 0)
		return ACT_KIND_SEQPACKET;
	return ACT_KIND_OTHER;
}

int activation_take(int *http_fd, int *reg_fd, char *err, size_t err_size)
{
	enum activation_kind kinds[ACTIVATION_MAX_FDS];
	char **names = NULL;
	int n, hi = -1, ri = -1, rc;

	*http_fd = *reg_fd = -1;
	/* checks LISTEN_PID against our pid, sets FD_CLOEXEC on each fd */
	n = sd_listen_fds_with_names(1, &names);
	if (n <= 0) {
		if (n < 0)
			snprintf(err, err_size, "LISTEN_FDS from the service manager: %s",
				 strerror(-n));
		rc = n;
		goto out;
	}
	for (int i = 0; i < n && i < ACTIVATION_MAX_FDS; i++)
		kinds[i] = kind_of(SD_LISTEN_FDS_START + i);
	rc =
	    activation_match((const char *const *)names, kinds, (size_t)n, &hi, &ri, err, err_size);
	/* the exporter's event loop needs them non-blocking, as our own are */
	for (int i = 0; rc == 0 && i < n; i++)
		if (fcntl(SD_LISTEN_FDS_START + i, F_SETFL, O_NONBLOCK) < 0)
			rc = -errno;
	if (rc < 0) {
		for (int i = 0; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
		goto out;
	}
	*http_fd = hi >= 0 ? SD_LISTEN_FDS_START + hi : -1;
	*reg_fd = ri >= 0 ? SD_LISTEN_FDS_START + ri : -1;
	rc = n;
out:
	for (char **p = names; p && *p; p++)
		free(*p);
	free(names);
	return rc;
}
