/* SPDX-License-Identifier: MIT */
/*
 * webassets - the live page's files (daemon/exposition/web/), compiled
 * in by scripts/embed-assets.py: the worker cannot open files, and the
 * page must not depend on anything outside the daemon.
 */
#ifndef KVMSTATD_WEBASSETS_H
#define KVMSTATD_WEBASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path; /* as requested, e.g. "/" or "/kvmstat.js" */
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t len;
};

/* The asset served at url, or NULL. */
const struct web_asset *web_asset_find(const char *url);

#endif
