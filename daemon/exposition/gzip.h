/* SPDX-License-Identifier: MIT */
/*
 * gzip - compress a rendered page for clients that accept it (zlib).
 */
#ifndef KVMSTATD_GZIP_H
#define KVMSTATD_GZIP_H

#include <stdbool.h>

#include "buf.h"

/* True if an Accept-Encoding header allows gzip (q > 0). */
bool gzip_accepted(const char *accept_encoding);

/* Compress in into out (gzip member, level 6). 0 or -ENOMEM/-EIO. */
int gzip_compress(const struct buf *in, struct buf *out);

#endif
