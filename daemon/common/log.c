/* SPDX-License-Identifier: MIT */
/* log - see log.h. Writes one whole line per write(2) so the helper's and
 * the worker's lines never interleave mid-line on a shared stderr. Every
 * message and journal field passes escape_log on its way out: what a VMM
 * or an HTTP client chose (a file name, a VM name, a header) can neither
 * start a forged line nor reach a terminal as a control sequence. */
#include "log.h"

#include "escape.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *log_role = "kvmstatd";
static enum log_level log_level = LOG_LVL_INFO;
static bool to_journal;

void log_set_role(const char *role)
{
	log_role = role;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_use_journal_fd(int fd)
{
	journal_adopt(fd);
	to_journal = fd >= 0;
}

bool log_use_journal(void)
{
	to_journal = journal_open();
	return to_journal;
}

/* f's text fields escaped into vm (the reason is always one of ours). */
static struct log_fields escaped_fields(const struct log_fields *f, char *vm, size_t vm_size)
{
	struct log_fields e = *f;

	if (f->vm) {
		escape_log(f->vm, strlen(f->vm), vm, vm_size);
		e.vm = vm;
	}
	return e;
}

static void vlog(enum log_level level, const struct log_fields *f, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int priorities[] = { 3, 4, 6, 7 }; /* syslog's err .. debug */
	char raw[1024], text[1024], line[1100], vm[256];
	struct log_fields ef;
	int m, n, sent = -1;

	if (level > log_level)
		return;
	m = vsnprintf(raw, sizeof(raw), fmt, ap);
	escape_log(raw,
		   m < 0		     ? 0
		   : (size_t)m < sizeof(raw) ? (size_t)m
					     : sizeof(raw) - 1,
		   text, sizeof(text));
	if (to_journal) {
		if (f)
			ef = escaped_fields(f, vm, sizeof(vm));
		sent = journal_send(priorities[level], log_role, f ? &ef : NULL, text);
	}
	if (sent == 0)
		return; /* else a plain line, on the journal's stream if that is stderr */
	n = snprintf(line, sizeof(line), "kvmstatd[%s]: %s: %s\n", log_role, names[level], text);
	if (n > (int)sizeof(line) - 1) { /* cut: still one line */
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, NULL, fmt, ap);
	va_end(ap);
}

void log_event(enum log_level level, const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, f, fmt, ap);
	va_end(ap);
}
