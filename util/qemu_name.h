/* SPDX-License-Identifier: MIT */
/*
 * qemu_name.h - the VM name a QEMU process was given on its command line.
 *
 * Pure functions, no I/O: the preload shim reads /proc/self/cmdline and
 * hands the bytes over. The name is what QEMU itself would use as its
 * guest name (-name, QemuOpts syntax with the implied key "guest"), or
 * nothing when it would not make a valid kvmstatd VM name.
 */
#ifndef KVMSTAT_QEMU_NAME_H
#define KVMSTAT_QEMU_NAME_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The guest name in argv[1..argc-1], parsed as QEMU 7.2 parses it:
 *   -name foo   -name guest=foo,debug-threads=on   --name foo,process=bar
 * QemuOpts rules: the first element without '=' is the implied key
 * "guest"; ",," is a literal comma in a value; the last "guest" wins, over
 * one and over several -name options; an empty -name sets nothing.
 * "-name=foo" is not an option QEMU accepts and is ignored.
 *
 * Writes the NUL-terminated name to out and returns its length, or returns
 * 0 with out = "" when there is no name or it is unusable: empty, not
 * shorter than out_size bytes, not valid UTF-8, or with a control
 * character (C0, DEL, C1: escape_is_clean_utf8, util/escape.h). out_size must be at least 1.
 *
 * Limit: QEMU knows which options take an argument; this parser does not,
 * so an option argument that is itself exactly "-name" is misread. QEMU
 * reads no option argument of that spelling in practice.
 */
size_t qemu_name_from_argv(int argc, const char *const *argv, char *out, size_t out_size);

/*
 * The same from the raw bytes of /proc/<pid>/cmdline: NUL-terminated
 * arguments. Bytes after the last NUL are a read cut short (the kernel
 * ends every argument with a NUL) and are ignored, so a -name value cut in
 * half never becomes a name; a -name further on is missed, of course.
 */
size_t qemu_name_from_cmdline(const char *buf, size_t len, char *out, size_t out_size);

#endif
