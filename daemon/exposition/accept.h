/* SPDX-License-Identifier: MIT */
/*
 * accept - q values from HTTP Accept and Accept-Encoding lists
 * ("a;q=0.5, b;version=1;q=1"). One parser for both headers.
 */
#ifndef KVMSTATD_ACCEPT_H
#define KVMSTATD_ACCEPT_H

/*
 * The q of token in list (case-insensitive; 1 when no q is given), the
 * best if it appears twice; 0 when absent. star: the wildcard element
 * ("*" in Accept-Encoding, "*" "/" "*" in Accept), which stands for the
 * token when the token itself is absent.
 */
double accept_q(const char *list, const char *token, const char *star);

#endif
