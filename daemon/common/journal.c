/* SPDX-License-Identifier: MIT */
/* journal - see journal.h. */
#include "journal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static int journal_sock = -1;

static int parse_ull(const char *s, size_t len, unsigned long long *out)
{
	unsigned long long v = 0;

	if (len == 0 || len > 20)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (unsigned)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

bool journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino)
{
	unsigned long long d, i;
	const char *colon;

	if (!env || !(colon = strchr(env, ':')))
		return false;
	return parse_ull(env, (size_t)(colon - env), &d) == 0 &&
	       parse_ull(colon + 1, strlen(colon + 1), &i) == 0 && d == dev && i == ino;
}

/* KEY=value\n, value without a newline (ours: names, numbers, labels). */
static int put_text(char *buf, size_t size, size_t *at, const char *key, const char *value)
{
	int n;

	if (strchr(value, '\n'))
		return -EINVAL;
	n = snprintf(buf + *at, size - *at, "%s=%s\n", key, value);
	if (n < 0 || (size_t)n >= size - *at)
		return -ENOSPC;
	*at += (size_t)n;
	return 0;
}

/* KEY\n<le64 length><value>\n: any bytes, newlines included. */
static int put_binary(char *buf, size_t size, size_t *at, const char *key, const char *value)
{
	size_t klen = strlen(key), vlen = strlen(value);
	uint64_t le = vlen;

	if (klen + 1 + 8 + vlen + 1 > size - *at)
		return -ENOSPC;
	memcpy(buf + *at, key, klen);
	buf[*at + klen] = '\n';
	*at += klen + 1;
	for (int i = 0; i < 8; i++, le >>= 8) /* little-endian, whatever the host */
		buf[(*at)++] = (char)(le & 0xff);
	memcpy(buf + *at, value, vlen);
	*at += vlen;
	buf[(*at)++] = '\n';
	return 0;
}

int journal_encode(char *buf, size_t size, int priority, const char *role,
		   const struct log_fields *f, const char *msg)
{
	char num[24];
	size_t at = 0;
	int rc;

	snprintf(num, sizeof(num), "%d", priority);
	rc = put_text(buf, size, &at, "PRIORITY", num);
	if (rc == 0)
		rc = put_text(buf, size, &at, "SYSLOG_IDENTIFIER", "kvmstatd");
	if (rc == 0)
		rc = put_text(buf, size, &at, "KVMSTATD_ROLE", role);
	if (rc == 0 && f && f->vm)
		rc = put_binary(buf, size, &at, "KVMSTATD_VM", f->vm);
	if (rc == 0 && f && f->vmm_pid > 0) {
		snprintf(num, sizeof(num), "%d", f->vmm_pid);
		rc = put_text(buf, size, &at, "KVMSTATD_VMM_PID", num);
	}
	if (rc == 0 && f && f->reason)
		rc = put_text(buf, size, &at, "KVMSTATD_REASON", f->reason);
	if (rc == 0)
		rc = put_binary(buf, size, &at, "MESSAGE", msg);
	return rc < 0 ? rc : (int)at;
}

bool journal_open(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
	struct stat st;
	int fd;

	if (fstat(STDERR_FILENO, &st) < 0 ||
	    !journal_stream_matches(getenv("JOURNAL_STREAM"), (unsigned long long)st.st_dev,
				    (unsigned long long)st.st_ino))
		return false;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return false;
	}
	journal_sock = fd;
	return true;
}

int journal_fd(void)
{
	return journal_sock;
}

void journal_adopt(int fd)
{
	journal_sock = fd;
}

int journal_send(int priority, const char *role, const struct log_fields *f, const char *msg)
{
	char buf[2048];
	int n;

	if (journal_sock < 0)
		return -ENOTCONN;
	n = journal_encode(buf, sizeof(buf), priority, role, f, msg);
	if (n < 0)
		return n;
	return send(journal_sock, buf, (size_t)n, MSG_NOSIGNAL) < 0 ? -errno : 0;
}
