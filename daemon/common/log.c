/* SPDX-License-Identifier: MIT */
/* log - see log.h. Writes one whole line per write(2) so the helper's and
 * the worker's lines never interleave mid-line on a shared stderr. */
#include "log.h"

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

bool log_use_journal(void)
{
	to_journal = journal_open();
	return to_journal;
}

static void vlog(enum log_level level, const struct log_fields *f, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int priorities[] = { 3, 4, 6, 7 }; /* syslog's err .. debug */
	char line[1024];
	va_list again;
	int n, m, sent = -1;

	if (level > log_level)
		return;
	if (to_journal) {
		va_copy(again, ap);
		vsnprintf(line, sizeof(line), fmt, again);
		va_end(again);
		sent = journal_send(priorities[level], log_role, f, line);
	}
	if (sent == 0)
		return; /* else a plain line, on the journal's stream if that is stderr */
	n = snprintf(line, sizeof(line), "kvmstatd[%s]: %s: ", log_role, names[level]);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
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
