/* SPDX-License-Identifier: MIT */
/* regsocket - see regsocket.h. */
#include "regsocket.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int stale_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? -EADDRINUSE : 0;
	close(fd);
	return rc;
}

static int socket_owner(const struct config *cfg)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (chmod(cfg->socket_path, cfg->socket_mode) < 0)
		return -errno;
	if (cfg->socket_group[0] == '\0')
		return 0;
	if (getgrnam_r(cfg->socket_group, &gr, buf, sizeof(buf), &res) != 0 || !res)
		return -ENOENT;
	return chown(cfg->socket_path, (uid_t)-1, gr.gr_gid) < 0 ? -errno : 0;
}

/*
 * Root chmods and chowns the socket by path: in a directory someone else
 * may write to, that path could be swapped for a link to any file. Only a
 * real directory of root's or the service user's, that nobody else can
 * write, is accepted (the service user's processes are the helper, which
 * wrote the socket, and the sandboxed worker, which cannot touch files).
 */
static int check_socket_dir(int dir_fd, uid_t owner)
{
	struct stat st;

	if (fstat(dir_fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || (st.st_uid != geteuid() && st.st_uid != owner) ||
	    (st.st_mode & 0022))
		return -EPERM;
	return 0;
}

/*
 * A directory of root's that holds nothing but (a stale copy of) our socket
 * is ours, from an earlier run: give it to the service user as if we had
 * just created it, so the unprivileged helper can remove the socket when
 * it stops. A shared directory such as /run is never touched.
 */
static bool only_our_socket(int dir_fd, const char *path)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct dirent *de;
	bool ours = true;
	struct stat st;
	DIR *d;
	int fd = dup(dir_fd);

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (ours && (de = readdir(d)))
		ours = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		       !strcmp(de->d_name, name);
	closedir(d);
	return ours;
}

/* *give: the directory is ours, to be given to the service user once the
 * socket is in place (never before: root still works on it by path). */
static int open_socket_dir(const char *path, uid_t owner, int *dir_fd, bool *give)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], *slash;
	bool created = false;
	int fd, rc;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (mkdir(dir, 0755) == 0)
		created = true;
	else if (errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*give = (created || only_our_socket(fd, path)) && geteuid() == 0;
	if ((rc = check_socket_dir(fd, owner)) < 0)
		goto fail;
	*dir_fd = fd;
	return 0;
fail:
	close(fd);
	return rc;
}

int regsocket_open(const struct config *cfg, uid_t owner, int *out_fd, int *dir_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	bool give = false;
	struct stat st;
	int fd = -1, rc;

	if (strlen(cfg->socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg->socket_path);
	if ((rc = open_socket_dir(cfg->socket_path, owner, dir_fd, &give)) < 0)
		return rc;
	if (lstat(cfg->socket_path, &st) == 0) {
		rc = -EEXIST; /* never unlink something that is not ours */
		if (!S_ISSOCK(st.st_mode) || (rc = stale_socket(cfg->socket_path)) < 0)
			goto fail;
		unlink(cfg->socket_path);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = socket_owner(cfg)) < 0 || (give && fchown(*dir_fd, owner, (gid_t)-1) < 0)) {
		rc = rc < 0 ? rc : -errno;
		unlink(cfg->socket_path);
		goto fail;
	}
	*out_fd = fd;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	close(*dir_fd);
	*dir_fd = -1;
	return rc;
}
