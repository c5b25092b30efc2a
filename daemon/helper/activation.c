/* SPDX-License-Identifier: MIT */
/* activation - see activation.h. */
#include "activation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reason.h"
#include "sdenv.h"

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

/* What the kernel says the socket is, never what its name claims; the
 * cheapest question first. */
enum activation_kind activation_kind_of(int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa), ilen = sizeof(int);
	int type = 0, listening = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) < 0 ||
	    (type != SOCK_STREAM && type != SOCK_SEQPACKET) ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) < 0 || !listening ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return ACT_KIND_OTHER;
	if (type == SOCK_STREAM && (sa.ss_family == AF_INET || sa.ss_family == AF_INET6))
		return ACT_KIND_TCP;
	if (type == SOCK_SEQPACKET && sa.ss_family == AF_UNIX)
		return ACT_KIND_SEQPACKET;
	return ACT_KIND_OTHER;
}

int activation_take(int *http_fd, int *reg_fd, char *err, size_t err_size)
{
	enum activation_kind kinds[SDENV_MAX_FDS];
	struct sdenv_fds fds;
	int n, hi = -1, ri = -1, rc;

	*http_fd = *reg_fd = -1;
	n = sdenv_take_fds(&fds, err, err_size);
	/*
	 * Meant for another process: not ours to use or to close, nor to
	 * change the flags of, so they stay open, as they came, for the
	 * helper's life. No child of ours gets them all the same: once
	 * started, the helper's only exec (seccomp allows no other) is the
	 * worker program's (workerexec_run: the worker and the configuration
	 * checker), whose child puts the channel on fd 3 with dup3 and
	 * close_range()s every fd above it but the program's own. Setting
	 * FD_CLOEXEC here would add nothing, and would take LISTEN_FDS of
	 * another process on trust.
	 */
	if (n == -ESRCH)
		return 0;
	rc = n < 0 ? n : 0;
	for (int i = 0; rc == 0 && i < n; i++)
		kinds[i] = activation_kind_of(SDENV_FDS_START + i);
	if (rc == 0 && n > 0)
		rc = activation_match(fds.names, kinds, (size_t)n, &hi, &ri, err, err_size);
	/* the exporter's event loop needs them non-blocking, as our own are */
	for (int i = 0; rc == 0 && i < n; i++)
		if (fcntl(SDENV_FDS_START + i, F_SETFL, O_NONBLOCK) < 0)
			rc = reason_set(err, err_size, -errno, "socket fd %d: %s",
					SDENV_FDS_START + i, strerror(errno));
	if (rc < 0) {
		/* ours (LISTEN_PID said so) but not served: nobody else closes
		 * them. fds.n is how many LISTEN_FDS passed, also when the
		 * names or an fd were wrong; 0 when it was never read. */
		for (int i = 0; i < fds.n; i++)
			close(SDENV_FDS_START + i);
		return rc;
	}
	*http_fd = hi >= 0 ? SDENV_FDS_START + hi : -1;
	*reg_fd = ri >= 0 ? SDENV_FDS_START + ri : -1;
	return n;
}
