/* SPDX-License-Identifier: MIT */
/*
 * render_stats - the KVM stats fds' part of a page: kvm_vm_info, then every
 * family of the snapshot's plan, from each source's newest sample.
 *
 * Every source's newest sample is copied once (read lock-free from its
 * ring), then lines are written family by family (both formats want a
 * family's samples together). Which families exist is the snapshot's
 * business (its plan already left out what the config excludes); how
 * their samples are shaped is the page's render_opts.
 */
#ifndef KVMSTATD_RENDER_STATS_H
#define KVMSTATD_RENDER_STATS_H

#include "render_page.h"
#include "snapshot.h"

/* snap's VMs and families into pg. 0 or -ENOMEM (pg's buffer may hold part of it). */
int render_stats(const struct snapshot *snap, struct render_page *pg);

#endif
