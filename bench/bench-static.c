/* SPDX-License-Identifier: MIT */
/*
 * bench-static - the transport floor: a trivial HTTP/1.1 server that answers
 * every request with bytes it read from a file at start, so the benchmark
 * can fetch kvmstatd's own page (plain or gzip) through the same client
 * and the same loopback path without any rendering behind it.
 *
 *   bench-static PLAIN_FILE GZIP_FILE
 *
 * Listens on 127.0.0.1, an ephemeral port, printed as "PORT <n>" on stdout.
 * A request whose path starts with /gzip gets GZIP_FILE with
 * Content-Encoding: gzip, any other PLAIN_FILE. One request per connection
 * (curl makes one per run anyway). Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct body {
	char *data;
	size_t len;
};

static int load(const char *path, struct body *b)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	int rc = -1;

	if (!f)
		return -1;
	if (fstat(fileno(f), &st) == 0 && (b->data = malloc((size_t)st.st_size + 1)) &&
	    fread(b->data, 1, (size_t)st.st_size, f) == (size_t)st.st_size) {
		b->len = (size_t)st.st_size;
		rc = 0;
	}
	fclose(f);
	return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read until the end of the request head; 1 if it asked for /gzip. */
static int read_request(int fd)
{
	char req[8192];
	size_t n = 0;

	while (n < sizeof(req) - 1) {
		ssize_t r = read(fd, req + n, sizeof(req) - 1 - n);

		if (r <= 0)
			return -1;
		n += (size_t)r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n"))
			return strncmp(req, "GET /gzip", 9) == 0;
	}
	return -1;
}

static void serve(int c, const struct body *plain, const struct body *gz)
{
	char head[256];
	int want_gz = read_request(c);
	const struct body *b = want_gz == 1 ? gz : plain;
	int n;

	if (want_gz < 0)
		return;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
		     "charset=utf-8\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
		     want_gz == 1 ? "Content-Encoding: gzip\r\n" : "", b->len);
	if (write_all(c, head, (size_t)n) == 0)
		write_all(c, b->data, b->len);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct body plain = { 0 }, gz = { 0 };
	int s, one = 1;

	if (argc != 3 || load(argv[1], &plain) < 0 || load(argv[2], &gz) < 0) {
		fprintf(stderr, "usage: bench-static PLAIN_FILE GZIP_FILE\n");
		return 2;
	}
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 64) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &alen) < 0) {
		perror("bench-static");
		return 1;
	}
	printf("PORT %d\n", ntohs(a.sin_port));
	fflush(stdout);
	for (;;) {
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			continue;
		serve(c, &plain, &gz);
		close(c);
	}
}
