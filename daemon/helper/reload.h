/* SPDX-License-Identifier: MIT */
/*
 * reload - what a SIGHUP may change. The helper reads the configuration
 * again and starts a new worker with it (handing it every VM, as after a
 * crash); settings that were applied with root's rights at start-up, or
 * whose state the helper keeps, stay as they were until a restart:
 *
 *   [daemon] user, sandbox           the drop and the filters are done
 *   [daemon] bpf, bpf_slots          loaded with CAP_BPF, gone after the drop
 *   [registration] socket, socket_mode, socket_group, max_sources
 *                                    the socket exists, the fd limit is fitted
 *   [registration] allow_users, allow_groups, max_sources_per_uid,
 *                  rate_limit, rate_burst, max_connections_per_uid
 *                                    the policy holds every uid's charges
 *   [discovery] enabled              its capabilities are kept or dropped
 *   [discovery] borrow               the kernel was probed as root at start
 *   [http] listen                    the socket is bound
 *   [web] tls_*                      the key may be readable by root alone
 *
 * Everything else ([poll], [metrics], the rest of [http], [basic_auth_users],
 * the other limits) takes effect at once.
 */
#ifndef KVMSTATD_RELOAD_H
#define KVMSTATD_RELOAD_H

#include "config.h"

/*
 * Pure: in next (just loaded), put back cur's value of every setting that
 * cannot change without a restart, calling kept(key, ctx) once for each
 * one that differed ("[http] listen"). Returns how many differed.
 */
unsigned reload_merge(const struct config *cur, struct config *next,
		      void (*kept)(const char *key, void *ctx), void *ctx);

#endif
