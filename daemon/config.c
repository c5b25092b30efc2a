/* SPDX-License-Identifier: MIT */
/*
 * config - see config.h. The key table drives parsing, range checks and the
 * error messages, so adding a key is one line.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_kind { KEY_STR, KEY_UINT, KEY_OCTAL };

struct key_def {
	const char *section;
	const char *name;
	enum key_kind kind;
	size_t offset;
	size_t size; /* KEY_STR: buffer size */
	unsigned long min, max;
	const char *(*check)(const char *value); /* KEY_STR: NULL or why it is bad */
};

#define STR(sec, key, field)                                                                       \
	{                                                                                          \
		sec, key, KEY_STR, offsetof(struct config, field),                                 \
		    sizeof(((struct config *)0)->field), 0, 0, NULL                                \
	}
#define STRC(sec, key, field, fn)                                                                  \
	{                                                                                          \
		sec, key, KEY_STR, offsetof(struct config, field),                                 \
		    sizeof(((struct config *)0)->field), 0, 0, fn                                  \
	}
#define UINT(sec, key, field, lo, hi)                                                              \
	{                                                                                          \
		sec, key, KEY_UINT, offsetof(struct config, field), 0, lo, hi, NULL                \
	}

static const char *check_not_empty(const char *v)
{
	return v[0] ? NULL : "must not be empty";
}

static const char *check_absolute(const char *v)
{
	return v[0] == '/' ? NULL : "must be an absolute path";
}

static const char *check_listen(const char *v)
{
	char host[CONFIG_STR_MAX];
	uint16_t port;

	return config_parse_listen(v, host, sizeof(host), &port) < 0
		   ? "not PORT, :PORT, ADDR:PORT or [V6]:PORT (port 1..65535)"
		   : NULL;
}

static const struct key_def keys[] = {
	STRC("daemon", "user", user, check_not_empty),
	STRC("registration", "socket", socket_path, check_absolute),
	{ "registration", "socket_mode", KEY_OCTAL, offsetof(struct config, socket_mode), 0, 0,
	  0777, NULL },
	STR("registration", "socket_group", socket_group),
	UINT("registration", "max_vms_per_peer", max_vms_per_peer, 1, 4096),
	UINT("registration", "max_vcpus_per_vm", max_vcpus_per_vm, 1, 4096),
	UINT("registration", "max_sources", max_sources, 1, 20000),
	UINT("poll", "interval_ms", interval_ms, 10, 3600000),
	UINT("poll", "ring_slots", ring_slots, 2, 64),
	UINT("poll", "exit_grace_ms", exit_grace_ms, 0, 86400000),
	STRC("http", "listen", listen, check_listen),
	UINT("http", "max_connections", max_connections, 1, 1024),
	UINT("http", "connection_timeout_s", connection_timeout_s, 1, 3600),
};

/*
 * inih reads lines through our reader, so we know the line of every
 * handler call, can refuse an unknown section even when it has no key,
 * and can tell a long comment (fine) from a long setting (an error)
 * instead of letting inih cut lines at INI_MAX_LINE.
 */
struct load_ctx {
	struct config *cfg;
	char *err;
	size_t err_size;
	int failed;	  /* line of the first error, 0 if none */
	int lineno;	  /* line the reader handed out last */
	FILE *file;	  /* the source: a file ... */
	const char *text; /* ... or a string */
	char *line;	  /* the reader's buffer, any length */
	size_t cap;
};

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->user, sizeof(cfg->user), "kvmstatd");
	snprintf(cfg->socket_path, sizeof(cfg->socket_path), "/run/kvmstatd/register.sock");
	cfg->socket_mode = 0660;
	cfg->max_vms_per_peer = 256;
	cfg->max_vcpus_per_vm = 1024;
	cfg->max_sources = 16384;
	cfg->interval_ms = 1000;
	cfg->ring_slots = 4;
	cfg->exit_grace_ms = 30000;
	snprintf(cfg->listen, sizeof(cfg->listen), ":9735");
	cfg->max_connections = 64;
	cfg->connection_timeout_s = 10;
}

static int parse_number(const char *v, int base, unsigned long *out)
{
	char *end;

	if (*v < '0' || *v > '9') /* strtoul would skip blanks and take a sign */
		return -EINVAL;
	errno = 0;
	*out = strtoul(v, &end, base);
	if (errno || *end != '\0')
		return -EINVAL;
	return 0;
}

static const char *set_key(struct config *cfg, const struct key_def *k, const char *v)
{
	char *field = (char *)cfg + k->offset;
	const char *why;
	unsigned long n;

	if (k->kind == KEY_STR) {
		if (strlen(v) >= k->size)
			return "value too long"; /* range_text adds the limit */
		if (k->check && (why = k->check(v)))
			return why;
		memcpy(field, v, strlen(v) + 1);
		return NULL;
	}
	if (parse_number(v, k->kind == KEY_OCTAL ? 8 : 10, &n) < 0)
		return k->kind == KEY_OCTAL ? "not an octal number" : "not a non-negative integer";
	if (n < k->min || n > k->max)
		return "out of range";
	*(unsigned *)(void *)field = (unsigned)n;
	return NULL;
}

static const struct key_def *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static void range_text(const struct key_def *k, char *buf, size_t size)
{
	if (k->kind == KEY_UINT)
		snprintf(buf, size, " (allowed %lu..%lu)", k->min, k->max);
	else if (k->kind == KEY_OCTAL)
		snprintf(buf, size, " (an octal mode, at most 0777)");
	else
		snprintf(buf, size, " (at most %zu bytes)", k->size - 1);
}

static void fail_at(struct load_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail_at(struct load_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->failed)
		return;
	ctx->failed = ctx->lineno;
	va_start(ap, fmt);
	vsnprintf(ctx->err, ctx->err_size, fmt, ap);
	va_end(ap);
}

/* inih convention: return nonzero to accept, 0 to flag this line. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	const struct key_def *k;
	const char *why;
	char range[64];

	k = find_key(section, name);
	if (!k) {
		fail_at(ctx, "[%s] %s: unknown key", section, name);
		return 0;
	}
	why = set_key(ctx->cfg, k, value);
	if (why) {
		if (k->kind == KEY_STR && strcmp(why, "value too long"))
			range[0] = '\0'; /* a check's own sentence says what is wrong */
		else
			range_text(k, range, sizeof(range));
		fail_at(ctx, "[%s] %s: %s: \"%.64s\"%s", section, name, why, value, range);
		return 0;
	}
	return 1;
}

static bool known_section(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].section) == len && !strncmp(keys[i].section, name, len))
			return true;
	return false;
}

/* One whole line from the file or the string into *line; false at the end. */
static bool next_line(struct load_ctx *ctx, char **line, size_t *cap)
{
	size_t len;

	if (ctx->file)
		return getline(line, cap, ctx->file) >= 0;
	if (!ctx->text || !*ctx->text)
		return false;
	len = strcspn(ctx->text, "\n");
	if (len + 2 > *cap) {
		char *p = realloc(*line, len + 2);

		if (!p)
			return false;
		*line = p;
		*cap = len + 2;
	}
	memcpy(*line, ctx->text, len);
	(*line)[len] = '\n';
	(*line)[len + 1] = '\0';
	ctx->text += len + (ctx->text[len] == '\n');
	return true;
}

/* Checks inih cannot make: long lines and unknown (even empty) sections. */
static void check_line(struct load_ctx *ctx, char *line, int num)
{
	const char *p = line + strspn(line, " \t");
	size_t len = strlen(line);

	if (*p == ';' || *p == '#') { /* a comment: cut it to fit, it is ignored */
		if (len > (size_t)num - 2)
			strcpy(line + num - 3, "\n");
		return;
	}
	if (len > (size_t)num - 2)
		fail_at(ctx, "line longer than %d bytes", num - 3);
	else if (*p == '[' && strchr(p, ']') && !known_section(p + 1, strcspn(p + 1, "]")))
		fail_at(ctx, "[%.*s]: unknown section", (int)strcspn(p + 1, "]"), p + 1);
}

static char *read_line(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;

	if (ctx->failed || !next_line(ctx, &ctx->line, &ctx->cap))
		return NULL; /* after the first error: stop reading */
	ctx->lineno++;
	check_line(ctx, ctx->line, num);
	if (ctx->failed)
		return NULL;
	snprintf(str, (size_t)num, "%s", ctx->line);
	return str;
}

static int load(struct load_ctx *ctx, const char *name)
{
	char msg[512];
	int rc;

	ini_allow_multiline = false;
	ini_stop_on_first_error = true;
	rc = ini_parse_stream(read_line, ctx, on_key, ctx);
	free(ctx->line);
	if (rc == -2) {
		snprintf(ctx->err, ctx->err_size, "%s: out of memory", name);
		return -ENOMEM;
	}
	if (rc > 0 && (!ctx->failed || rc < ctx->failed)) {
		ctx->failed = rc;
		snprintf(ctx->err, ctx->err_size,
			 "syntax error (expected [section] or key = value)");
	}
	if (!ctx->failed)
		return 0;
	snprintf(msg, sizeof(msg), "%s:%d: %s", name, ctx->failed, ctx->err);
	snprintf(ctx->err, ctx->err_size, "%s", msg);
	return -EINVAL;
}

int config_load(struct config *cfg, const char *path, char *err, size_t err_size)
{
	struct load_ctx ctx = { .cfg = cfg, .err = err, .err_size = err_size };
	int rc;

	ctx.file = fopen(path, "re");
	if (!ctx.file) {
		rc = -errno;
		snprintf(err, err_size, "%s: cannot open: %s", path, strerror(-rc));
		return rc;
	}
	rc = load(&ctx, path);
	fclose(ctx.file);
	return rc;
}

int config_load_string(struct config *cfg, const char *text, const char *name, char *err,
		       size_t err_size)
{
	struct load_ctx ctx = { .cfg = cfg, .err = err, .err_size = err_size, .text = text };

	return load(&ctx, name);
}

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long n;

	if (parse_number(s, 10, &n) < 0 || n == 0 || n > 65535)
		return -EINVAL;
	*port = (uint16_t)n;
	return 0;
}

int config_parse_listen(const char *s, char *host, size_t host_size, uint16_t *port)
{
	const char *colon, *close;
	size_t len;

	host[0] = '\0';
	if (s[0] == '[') {
		close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		len = (size_t)(close - s - 1);
		if (len == 0 || len >= host_size)
			return -EINVAL;
		memcpy(host, s + 1, len);
		host[len] = '\0';
		return parse_port(close + 2, port);
	}
	colon = strrchr(s, ':');
	if (!colon)
		return parse_port(s, port);
	len = (size_t)(colon - s);
	if (len >= host_size || memchr(s, ':', len))
		return -EINVAL;
	memcpy(host, s, len);
	host[len] = '\0';
	return parse_port(colon + 1, port);
}
