/* SPDX-License-Identifier: MIT */
/*
 * render - a snapshot in, exposition text out. Pure: no sockets, no locks;
 * the only shared state it touches is each source's ring, read lock-free.
 *
 * Every source's newest sample is copied once, then lines are written
 * family by family (both formats want a family's samples together).
 */
#ifndef KVMSTATD_RENDER_H
#define KVMSTATD_RENDER_H

#include "buf.h"
#include "selfstats.h"
#include "snapshot.h"

enum render_format { FMT_TEXT_004, FMT_OPENMETRICS_100 };

#define CONTENT_TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_OM "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* snap may be NULL (nothing registered yet); stats may be NULL (no self-metrics). */
int render_metrics(const struct snapshot *snap, const struct selfstats *stats,
		   enum render_format fmt, struct buf *out);

#endif
