/* SPDX-License-Identifier: MIT */
/*
 * json - the few pieces of JSON the API writes, into a buf.
 *
 * Strings are escaped in one place: quote, backslash and control
 * characters always; bytes of 0x80 and above pass through when the whole
 * string is valid UTF-8 and are escaped one by one (as U+0080..U+00FF)
 * otherwise, so that a VM name a VMM chose never makes the answer invalid.
 * Numbers that are not finite are written as null.
 */
#ifndef KVMSTATD_JSON_H
#define KVMSTATD_JSON_H

#include "buf.h"

void json_str(struct buf *b, const char *s);
/* ,"key":"value" */
void json_key_str(struct buf *b, const char *key, const char *value);
/* A number with up to 15 significant digits, or null. */
void json_num(struct buf *b, double v);

#endif
