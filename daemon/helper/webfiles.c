/* SPDX-License-Identifier: MIT */
/* webfiles - see webfiles.h. */
#include "webfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The whole of a regular file as a C string in *out. 0 or -errno. */
static int read_pem(const char *path, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	char *buf = NULL;
	ssize_t n = 0;
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = -EINVAL;
	else if (st.st_size <= 0 || (size_t)st.st_size > BOOT_PEM_MAX)
		rc = -EFBIG;
	else if (!(buf = malloc((size_t)st.st_size + 1)))
		rc = -ENOMEM;
	else if ((n = read(fd, buf, (size_t)st.st_size)) != st.st_size)
		rc = n < 0 ? -errno
			   : -EIO; /* a file that changed under us: read it again next start */
	close(fd);
	if (rc == 0) {
		buf[n] = '\0';
		*out = buf;
	} else if (buf) {
		explicit_bzero(buf, (size_t)st.st_size + 1);
		free(buf);
	}
	return rc;
}

static const char *read_error(int rc)
{
	switch (rc) {
	case -EINVAL:
		return "not a regular file";
	case -EFBIG:
		return "empty or larger than 1 MiB";
	default:
		return strerror(-rc);
	}
}

int webfiles_read(const struct config *cfg, struct boot_pem *pem, char *err, size_t err_size)
{
	static const char *const key_names[BOOT__PEMS] = {
		[BOOT_CERT] = "tls_cert_file",
		[BOOT_KEY] = "tls_key_file",
		[BOOT_CA] = "tls_client_ca_file",
	};
	const char *paths[BOOT__PEMS] = {
		[BOOT_CERT] = cfg->tls_cert_file,
		[BOOT_KEY] = cfg->tls_key_file,
		[BOOT_CA] = cfg->tls_client_ca_file,
	};
	int rc = 0;

	for (int i = 0; rc == 0 && cfg->tls_cert_file[0] && i < BOOT__PEMS; i++) {
		if (!paths[i][0])
			continue;
		rc = read_pem(paths[i], &pem->text[i]);
		if (rc < 0)
			snprintf(err, err_size, "[web] %s %s: %s", key_names[i], paths[i],
				 read_error(rc));
	}
	if (rc < 0)
		boot_pem_free(pem);
	return rc;
}
