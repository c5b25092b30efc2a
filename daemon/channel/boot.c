/* SPDX-License-Identifier: MIT */
/* boot - see boot.h. */
#include "boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdpass.h"

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static int bad(char *why, size_t why_size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(char *why, size_t why_size, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, why_size, fmt, ap);
	va_end(ap);
	return rc;
}

static int write_all(int fd, const void *p, size_t len)
{
	const char *at = p;
	ssize_t n;

	while (len) {
		n = write(fd, at, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		at += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The config, then each PEM text (without its NUL), sealed. fd or -errno. */
static int make_memfd(const struct config *cfg, const struct boot_pem *pem, struct boot_msg *m)
{
	int fd = memfd_create("kvmstatd-boot", MFD_CLOEXEC | MFD_ALLOW_SEALING), rc;

	if (fd < 0)
		return -errno;
	rc = write_all(fd, cfg, sizeof(*cfg));
	for (int i = 0; rc == 0 && i < BOOT__PEMS; i++) {
		size_t len = pem->text[i] ? strlen(pem->text[i]) : 0;

		if (len > BOOT_PEM_MAX)
			rc = -EFBIG;
		else if ((m->pem_len[i] = (uint32_t)len))
			rc = write_all(fd, pem->text[i], len);
	}
	if (rc == 0 && fcntl(fd, F_ADD_SEALS, SEALS) < 0)
		rc = -errno;
	if (rc < 0)
		close(fd);
	return rc < 0 ? rc : fd;
}

int boot_send(int sock, const struct config *cfg, const struct boot_pem *pem, int http_fd,
	      int journal_fd, uint32_t flags, uint32_t log_level)
{
	struct boot_msg m = { .hdr = { BOOT_TYPE, sizeof(m) },
			      .config_size = sizeof(*cfg),
			      .flags = flags & BOOT_SELFTEST,
			      .log_level = log_level };
	int fds[3], n = 0, rc;

	snprintf(m.version, sizeof(m.version), "%s", KVMSTATD_VERSION);
	rc = make_memfd(cfg, pem, &m);
	if (rc < 0)
		return rc;
	fds[n++] = rc;
	if (http_fd >= 0) {
		m.flags |= BOOT_HTTP;
		fds[n++] = http_fd;
	}
	if (journal_fd >= 0) {
		m.flags |= BOOT_JOURNAL;
		fds[n++] = journal_fd;
	}
	rc = fdpass_send(sock, &m, sizeof(m), fds, (size_t)n);
	close(fds[0]); /* the worker holds it now, or nobody does */
	return rc;
}

/* Every string of struct config the worker uses as a C string. */
#define STR(f)                                                                                     \
	{                                                                                          \
		offsetof(struct config, f), sizeof(((struct config *)0)->f), #f                    \
	}
static const struct {
	size_t off, size;
	const char *name;
} config_strings[] = {
	STR(user),
	STR(socket_path),
	STR(socket_group),
	STR(bpf),
	STR(listen),
	STR(metrics_include),
	STR(metrics_exclude),
	STR(vcpu_series),
	STR(reasons_include),
	STR(reasons_exclude),
	STR(tls_cert_file),
	STR(tls_key_file),
	STR(tls_client_ca_file),
	STR(tls_min_version),
	STR(tls_client_auth_type),
};
#undef STR

static int check_config(const struct config *cfg, char *why, size_t why_size)
{
	const char *base = (const char *)cfg;

	for (size_t i = 0; i < sizeof(config_strings) / sizeof(config_strings[0]); i++)
		if (!memchr(base + config_strings[i].off, '\0', config_strings[i].size))
			return bad(why, why_size, -EBADMSG, "config: %s is not NUL-terminated",
				   config_strings[i].name);
	if (cfg->n_allow_uids > CONFIG_ALLOW_MAX || cfg->n_allow_gids > CONFIG_ALLOW_MAX ||
	    cfg->n_auth_users > CONFIG_AUTH_USERS_MAX)
		return bad(why, why_size, -EBADMSG, "config: a list count is out of range");
	for (unsigned i = 0; i < cfg->n_auth_users; i++)
		if (!memchr(cfg->auth_users[i].name, '\0', sizeof(cfg->auth_users[i].name)) ||
		    !memchr(cfg->auth_users[i].hash, '\0', sizeof(cfg->auth_users[i].hash)))
			return bad(why, why_size, -EBADMSG,
				   "config: basic auth user %u is not NUL-terminated", i);
	return 0;
}

static int check_msg(const struct boot_msg *m, size_t len, size_t n_fds, char *why, size_t why_size)
{
	size_t want_fds = 1 + !!(m->flags & BOOT_HTTP) + !!(m->flags & BOOT_JOURNAL);

	if (len != sizeof(*m) || m->hdr.type != BOOT_TYPE || m->hdr.len != sizeof(*m))
		return bad(why, why_size, -EBADMSG,
			   "the first message is not a boot message (%zu bytes)", len);
	if (!memchr(m->version, '\0', sizeof(m->version)) || strcmp(m->version, KVMSTATD_VERSION) ||
	    m->config_size != sizeof(struct config))
		return bad(why, why_size, -EPROTO,
			   "the helper is another build (version %.16s, config of %u bytes; "
			   "this worker: %s, %zu bytes)",
			   m->version, m->config_size, KVMSTATD_VERSION, sizeof(struct config));
	if (m->flags & ~(uint32_t)BOOT__FLAGS || n_fds != want_fds)
		return bad(why, why_size, -EBADMSG, "flags %#x with %zu fds", m->flags, n_fds);
	for (int i = 0; i < BOOT__PEMS; i++)
		if (m->pem_len[i] > BOOT_PEM_MAX)
			return bad(why, why_size, -EBADMSG, "PEM text %d of %u bytes", i,
				   m->pem_len[i]);
	return 0;
}

/* The memfd: sealed, exactly as long as announced. */
static int check_memfd(int fd, const struct boot_msg *m, char *why, size_t why_size)
{
	size_t want = sizeof(struct config);
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	for (int i = 0; i < BOOT__PEMS; i++)
		want += m->pem_len[i];
	if (seals < 0 || (seals & SEALS) != SEALS)
		return bad(why, why_size, -EBADMSG, "the boot memfd is not sealed");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != want)
		return bad(why, why_size, -EBADMSG, "the boot memfd is not %zu bytes long", want);
	return 0;
}

static int read_at(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static int read_memfd(int fd, const struct boot_msg *m, struct boot *b, char *why, size_t why_size)
{
	off_t off = sizeof(b->cfg);
	int rc = read_at(fd, &b->cfg, sizeof(b->cfg), 0);

	for (int i = 0; rc == 0 && i < BOOT__PEMS; i++) {
		uint32_t len = m->pem_len[i];

		if (!len)
			continue;
		b->pem.text[i] = malloc(len + 1u);
		rc = b->pem.text[i] ? read_at(fd, b->pem.text[i], len, off) : -ENOMEM;
		if (rc == 0)
			b->pem.text[i][len] = '\0';
		if (rc == 0 && memchr(b->pem.text[i], '\0', len))
			rc = -EILSEQ; /* a C string would end early: not what the file said */
		off += len;
	}
	if (rc < 0)
		return bad(why, why_size, rc, "reading the boot memfd: %s", strerror(-rc));
	return check_config(&b->cfg, why, why_size);
}

int boot_recv(int sock, struct boot *b, char *why, size_t why_size)
{
	struct boot_msg m = { 0 };
	int fds[3] = { -1, -1, -1 }, n;
	size_t n_fds = 0;

	memset(b, 0, sizeof(*b));
	b->http_fd = b->journal_fd = -1;
	do
		n = fdpass_recv(sock, &m, sizeof(m), fds, 3, &n_fds);
	while (n == -EINTR);
	if (n <= 0)
		n = bad(why, why_size, n < 0 ? n : -ECONNRESET, "no boot message: %s",
			n < 0 ? strerror(-n) : "the channel is closed");
	else if ((n = check_msg(&m, (size_t)n, n_fds, why, why_size)) == 0 &&
		 (n = check_memfd(fds[0], &m, why, why_size)) == 0)
		n = read_memfd(fds[0], &m, b, why, why_size);
	if (n < 0) {
		fdpass_close_all(fds, n_fds);
		boot_pem_free(&b->pem);
		return n;
	}
	close(fds[0]);
	n_fds = 1;
	b->http_fd = m.flags & BOOT_HTTP ? fds[n_fds++] : -1;
	b->journal_fd = m.flags & BOOT_JOURNAL ? fds[n_fds++] : -1;
	b->flags = m.flags;
	b->log_level = m.log_level;
	return 0;
}

void boot_pem_free(struct boot_pem *pem)
{
	for (int i = 0; i < BOOT__PEMS; i++)
		if (pem->text[i]) {
			explicit_bzero(pem->text[i], strlen(pem->text[i]));
			free(pem->text[i]);
			pem->text[i] = NULL;
		}
}
