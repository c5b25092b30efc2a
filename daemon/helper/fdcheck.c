/* SPDX-License-Identifier: MIT */
/* fdcheck - see fdcheck.h. */
#include "fdcheck.h"

#include "reason.h"
#include "statsid.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

int fdcheck_init(struct fdcheck *fc)
{
	struct stat st;
	int fd = eventfd(0, EFD_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else {
		fc->anon_dev = st.st_dev;
		fc->anon_ino = st.st_ino;
	}
	close(fd);
	return rc;
}

/* Step 1: the link name, which the kernel writes and no file can fake. */
static int check_link(int fd, enum fd_kind kind, struct fdcheck_result *res)
{
	char path[64], link[128];
	unsigned n;
	int end = 0;
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	len = readlink(path, link, sizeof(link) - 1);
	if (len < 0)
		return reason_set(res->why, sizeof(res->why), -EBADF, "cannot read its link: %s",
				  strerror(errno));
	link[len] = '\0';
	if (kind == FD_VM_STATS) {
		if (strcmp(link, "anon_inode:kvm-vm-stats"))
			return reason_set(res->why, sizeof(res->why), -EBADF,
					  "\"%.64s\" is not a KVM VM stats fd", link);
		res->vcpu = -1;
		return 0;
	}
	if (sscanf(link, "anon_inode:kvm-vcpu-stats:%u%n", &n, &end) != 1 || link[end] || n > 65535)
		return reason_set(res->why, sizeof(res->why), -EBADF,
				  "\"%.64s\" is not a KVM vCPU stats fd", link);
	res->vcpu = (int)n;
	return 0;
}

/* Steps 2-4: the file system, the inode, the access mode. */
static int check_inode(const struct fdcheck *fc, int fd, struct fdcheck_result *res)
{
	struct statfs sfs;
	struct stat st;
	int fl;

	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != ANON_INODE_FS_MAGIC)
		return reason_set(res->why, sizeof(res->why), -EBADF, "not on anon_inodefs");
	if (fstat(fd, &st) < 0 || st.st_dev != fc->anon_dev || st.st_ino != fc->anon_ino)
		return reason_set(res->why, sizeof(res->why), -EBADF,
				  "not the kernel's anonymous inode");
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY)
		return reason_set(res->why, sizeof(res->why), -EBADF, "not opened read-only");
	return 0;
}

/* Step 5: a header worth parsing, and the id the kernel wrote. */
static int check_header(int fd, enum fd_kind kind, struct fdcheck_result *res)
{
	struct kvm_stats_header h;
	char id[STATSID_MAX_NAME_SIZE];
	unsigned tid;
	int vcpu;

	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return reason_set(res->why, sizeof(res->why), -EBADF, "header unreadable");
	if (h.flags || h.name_size == 0 || h.name_size > sizeof(id) || h.num_desc == 0 ||
	    h.num_desc > STATSID_MAX_DESCS || h.id_offset < sizeof(h))
		return reason_set(res->why, sizeof(res->why), -EBADF, "header out of range");
	if (pread(fd, id, h.name_size, h.id_offset) != (ssize_t)h.name_size ||
	    !memchr(id, '\0', h.name_size))
		return reason_set(res->why, sizeof(res->why), -EBADF,
				  "id string unreadable or unterminated");
	if (statsid_parse(id, &tid, &vcpu) < 0 || vcpu != res->vcpu)
		return reason_set(res->why, sizeof(res->why), -EBADF, "id \"%.32s\" is not %s", id,
				  kind == FD_VM_STATS ? "kvm-<pid>"
						      : "kvm-<tid>/vcpu-<n> of its link");
	res->id_pid = (pid_t)tid;
	return 0;
}

int fdcheck_stats_fd(const struct fdcheck *fc, int fd, enum fd_kind kind,
		     struct fdcheck_result *res)
{
	int rc;

	res->why[0] = '\0';
	res->id_pid = 0;
	res->vcpu = -1;
	rc = check_link(fd, kind, res);
	if (rc == 0)
		rc = check_inode(fc, fd, res);
	if (rc == 0)
		rc = check_header(fd, kind, res);
	return rc;
}

int fdcheck_is_thread_of(pid_t tid, pid_t pid)
{
	char path[64];
	struct stat st;

	if (tid <= 0 || pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)pid, (int)tid);
	return stat(path, &st) == 0;
}
