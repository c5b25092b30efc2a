/* SPDX-License-Identifier: MIT */
/*
 * kvmstat_client.h - register a VMM's KVM statistics fds with kvmstatd.
 *
 * Compile kvmstat_client.c into the VMM (or link libkvmstat-client.a). The
 * calls are synchronous, never raise signals (MSG_NOSIGNAL), honour a send/
 * receive timeout and return 0 or a negative errno; they never abort and
 * never keep a reference to the caller's fds (the kernel duplicates them
 * in flight, so the VMM still owns and must close its own).
 *
 *   struct kvmstat_client *c;
 *   if (kvmstat_client_open(&c, NULL) == 0) {          // default socket
 *       kvmstat_client_register_vm(c, vmh, "web-1", vm_stats_fd,
 *                                  vcpu_stats_fds, nvcpus, NULL, 0);
 *       ...
 *       kvmstat_client_close(c);
 *   }
 */
#ifndef KVMSTAT_CLIENT_H
#define KVMSTAT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmstat_proto.h"

struct kvmstat_client;

/* Connect to socket_path (NULL: KVMSTAT_DEFAULT_SOCKET). timeout 2 s. */
int kvmstat_client_open(struct kvmstat_client **out, const char *socket_path);

/*
 * The same with another timeout, in milliseconds (0: the default 2 s; at
 * most an hour). It bounds connect() while the listener's backlog is full,
 * every send, and every wait for a reply. A VMM that must not stall, such
 * as the preload shim, uses a short one (200 ms).
 */
int kvmstat_client_open_timeout(struct kvmstat_client **out, const char *socket_path,
				unsigned int timeout_ms);

/* Change the timeout of an open connection (same rules). 0 or -errno. */
int kvmstat_client_set_timeout_ms(struct kvmstat_client *c, unsigned int timeout_ms);

/*
 * false once a request failed in transport (timeout, reset, a malformed or
 * foreign reply): the connection is shut down and every later call fails,
 * so reconnect. A refusal by the helper (its negative status with a
 * reason) leaves the connection usable, and this true, unless the helper
 * refused the connection itself (a uid outside its allow lists, too many
 * connections of one uid): then its status is returned and this is false.
 */
bool kvmstat_client_ok(const struct kvmstat_client *c);

void kvmstat_client_close(struct kvmstat_client *c);

/*
 * Register one VM: its VM stats fd and any number of vCPU stats fds. The
 * REGISTER_VM request carries the VM stats fd and up to
 * KVMSTAT_MAX_FDS_PER_MSG - 1 vCPU fds; the rest follow in ADD_VCPUS batches
 * of up to KVMSTAT_MAX_FDS_PER_MSG. If a later batch fails, the VM is
 * unregistered again: the call is all or nothing. name may be NULL (longer
 * than KVMSTAT_NAME_MAX - 1 bytes: -ENAMETOOLONG). reason (optional) receives
 * the helper's explanation of a refusal, "" otherwise.
 */
int kvmstat_client_register_vm(struct kvmstat_client *c, uint64_t vm_handle, const char *name,
			       int vm_stats_fd, const int *vcpu_stats_fds, size_t n_vcpus,
			       char *reason, size_t reason_size);

/* Add vCPUs (hot-plug) to a VM registered earlier by this process. */
int kvmstat_client_add_vcpus(struct kvmstat_client *c, uint64_t vm_handle,
			     const int *vcpu_stats_fds, size_t n_vcpus, char *reason,
			     size_t reason_size);

/* Tell kvmstatd the VM is gone although the VMM process lives on. */
int kvmstat_client_unregister_vm(struct kvmstat_client *c, uint64_t vm_handle, char *reason,
				 size_t reason_size);

/* Low level: obtain the stats fd of a VM fd or vCPU fd (KVM_GET_STATS_FD). */
int kvmstat_get_stats_fd(int kvm_obj_fd);

#endif
