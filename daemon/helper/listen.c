/* SPDX-License-Identifier: MIT */
/* listen - see listen.h. */
#include "listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"

static int try_bind(const struct addrinfo *ai, int *out_fd)
{
	int fd =
	    socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	int one = 1, zero = 0, rc;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*out_fd = fd;
	return 0;
}

int listen_tcp(const char *addr, int *out_fd, char *err, size_t err_size)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[CONFIG_STR_MAX], port_s[8];
	uint16_t port;
	int rc;

	if (config_parse_listen(addr, host, sizeof(host), &port) < 0) {
		snprintf(err, err_size,
			 "listen address \"%s\" is not PORT, :PORT, ADDR:PORT or [V6]:PORT", addr);
		return -EINVAL;
	}
	snprintf(port_s, sizeof(port_s), "%u", port);
	hints.ai_family = host[0] ? AF_UNSPEC : AF_INET6;
	rc = getaddrinfo(host[0] ? host : NULL, port_s, &hints, &res);
	if (rc != 0 && !host[0]) {
		hints.ai_family = AF_INET;
		rc = getaddrinfo(NULL, port_s, &hints, &res);
	}
	if (rc != 0) {
		snprintf(err, err_size, "listen address \"%s\": %s", addr, gai_strerror(rc));
		return -EINVAL;
	}
	rc = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai && rc < 0; ai = ai->ai_next)
		rc = try_bind(ai, out_fd);
	if (rc < 0 && !host[0]) { /* no IPv6 on this host: IPv4 any */
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
		struct addrinfo v4 = { .ai_family = AF_INET,
				       .ai_socktype = SOCK_STREAM,
				       .ai_addr = (struct sockaddr *)&sin,
				       .ai_addrlen = sizeof(sin) };

		rc = try_bind(&v4, out_fd);
	}
	freeaddrinfo(res);
	if (rc < 0)
		snprintf(err, err_size, "cannot listen on %s: %s", addr, strerror(-rc));
	return rc;
}
