/* SPDX-License-Identifier: MIT */
/*
 * sandbox - what the worker may still do once it runs: a seccomp
 * allow-list (libseccomp) and resource limits.
 *
 * The worker holds read-only stats fds and a listening socket, and talks
 * HTTP to strangers. If a bug there is ever exploited, the attacker should
 * find a process that can read the fds it already has, accept connections,
 * write to them, and nothing else: no open(), no socket(), no exec, no
 * ptrace, no signals to other processes, no core dumps. Its stderr may be
 * a file the operator chose, so RLIMIT_FSIZE stays as it is. Denied calls
 * fail with EPERM (open and friends: EACCES) rather than killing the
 * process, so an unlisted call in some library error path degrades one
 * request instead of the whole exporter.
 *
 * Installed by the worker before it reads any byte from outside and
 * before it starts the HTTP threads, which inherit the filter.
 */
#ifndef KVMSTATD_SANDBOX_H
#define KVMSTATD_SANDBOX_H

#include <stdbool.h>

/* Resource limits, then the filter. 0 or -errno; the caller must exit on error. */
int sandbox_enter(void);

/*
 * The helper's filter, a deny-list: it keeps CAP_SYS_PTRACE for
 * pidfd_getfd, so what that capability would otherwise allow is taken
 * away here: ptrace, process_vm_readv/writev, opening any file for
 * writing (/proc/<pid>/mem included), changes to the file system except
 * removing its socket, and exec but for one form: execveat(exe_fd, "",
 * AT_EMPTY_PATH) of the worker program (workerexec.h), which its children
 * need. Inherited across that exec by the worker, whose own allow-list is
 * stricter still.
 */
int sandbox_enter_helper(int exe_fd);

/*
 * Try what the sandbox must forbid (open a file, create a socket, exec,
 * ptrace and signal the parent) and log each result. Returns the number of
 * attempts that were NOT denied (0: the sandbox holds). For operators
 * (--sandbox-selftest) and the integration tests.
 */
int sandbox_selftest(void);

#endif
