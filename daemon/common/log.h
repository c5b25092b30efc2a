/* SPDX-License-Identifier: MIT */
/*
 * log - one line per event on stderr, prefixed with the process role; or,
 * when stderr is systemd's journal stream, one structured journal entry
 * per event (journal.h), whose fields name the VM, the VMM's pid and a
 * reason where the caller knows them (log_event).
 *
 * Parsers and formatters never log: they return -errno and the caller, who
 * knows the context (which peer, which file), logs once.
 */
#ifndef KVMSTATD_LOG_H
#define KVMSTATD_LOG_H

#include "journal.h"

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* role: "helper" or "worker"; shown in every line. */
void log_set_role(const char *role);
void log_set_level(enum log_level level);
enum log_level log_get_level(void); /* handed to the worker program */
/* Under systemd (stderr is the journal's): structured entries from now on,
 * in this process and its children. True when so. */
bool log_use_journal(void);
/* The worker program: structured entries on the socket the helper connected. */
void log_use_journal_fd(int fd);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, with journal fields (f may be NULL); on stderr the message alone. */
void log_event(enum log_level level, const struct log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
