/* SPDX-License-Identifier: MIT */
/*
 * authheader - the Authorization header of HTTP basic auth (RFC 7617),
 * read strictly: it comes from anyone who can connect.
 *
 * "Basic" (any case), one or more spaces, then standard base64 with its
 * padding and nothing after it. The decoded text is user ":" password; the
 * user is not empty, and neither part holds a control character (NUL
 * included, so both are C strings crypt() can take). Anything else, or
 * anything longer than the caller's buffers, is refused.
 */
#ifndef KVMSTATD_AUTHHEADER_H
#define KVMSTATD_AUTHHEADER_H

#include <stddef.h>

/* The most decoded bytes we look at: a user, a ':' and a password. */
#define AUTHHEADER_MAX 512

/*
 * Decode base64 (RFC 4648, standard alphabet, padded, no line breaks; the
 * unused low bits of the last character must be zero, so one text has
 * one encoding). Returns the decoded length, or -EINVAL for bad input and
 * -E2BIG when it does not fit out_size bytes.
 */
int authheader_b64decode(const char *in, size_t in_len, unsigned char *out, size_t out_size);

/*
 * Split an Authorization value into user and password (NUL-terminated).
 * 0, -ENOENT when the scheme is not Basic, -EINVAL when malformed, -E2BIG
 * when a part does not fit its buffer.
 */
int authheader_parse(const char *value, char *user, size_t user_size, char *pass, size_t pass_size);

#endif
