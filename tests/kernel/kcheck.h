/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the kernel test programs print on the serial console, in the one
 * format scripts/kernel-check.sh reads: "KCHECK key=value" for a result it
 * compares with its tables, "KINFO ..." for figures it shows, and
 * "KCHECK-FATAL what: error" when a program cannot go on. stdout is flushed
 * after every line: the console interleaves the programs and the kernel.
 * Header-only (static functions): each program is one static binary.
 */
#ifndef KCHECK_H
#define KCHECK_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__attribute__((format(printf, 2, 3))) static void kcheck(const char *key, const char *fmt, ...)
{
	char val[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	printf("KCHECK %s=%s\n", key, val);
	fflush(stdout);
}

__attribute__((format(printf, 1, 2), unused)) static void kinfo(const char *fmt, ...)
{
	va_list ap;

	printf("KINFO ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

__attribute__((noreturn, unused)) static void die(const char *what)
{
	printf("KCHECK-FATAL %s: %s\n", what, strerror(errno));
	fflush(stdout);
	_exit(2);
}

#endif
