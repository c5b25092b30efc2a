/* SPDX-License-Identifier: MIT */
/*
 * procfs - read one small file of /proc/<pid>/ (comm, status, cmdline):
 * what the helper learns about a VMM besides its fds.
 */
#ifndef KVMSTATD_PROCFS_H
#define KVMSTATD_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Read /proc/<pid>/<file> into buf, at most size - 1 bytes, and
 * NUL-terminate it (the content itself may hold NULs: cmdline). Returns the
 * length read, or -errno (the process is gone, or not ours to read).
 */
ssize_t procfs_read(pid_t pid, const char *file, char *buf, size_t size);

/*
 * When pid started, in unix ns (from /proc/<pid>/stat's starttime and the
 * boot clock). 0, or -errno leaving *out alone.
 */
int procfs_start_time_ns(pid_t pid, uint64_t *out);

#endif
