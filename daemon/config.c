/* SPDX-License-Identifier: MIT */
/*
 * config - see config.h. The key table drives parsing, range checks and the
 * error messages, so adding a key is one line.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
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
	{ "registration", "socket_mode", KEY_OCTAL, offsetof(struct config, socket_mode), 0, 0, 0777,
	  NULL },
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

struct load_ctx {
	struct config *cfg;
	char *err;
	size_t err_size;
	int failed;
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

	if (*v == '\0' || *v == '-' || *v == '+')
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
	unsigned long n;

	if (k->kind == KEY_STR) {
		if (strlen(v) >= k->size)
			return "value too long";
		if (k->check && k->check(v))
			return k->check(v);
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

/* inih convention: return nonzero to accept, 0 to flag this line. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	const struct key_def *k;
	const char *why;
	char range[64];

	if (ctx->failed)
		return 1; /* report the first error only; inih parses on */
	k = find_key(section, name);
	if (!k) {
		snprintf(ctx->err, ctx->err_size, "[%s] %s: unknown key", section, name);
		ctx->failed = 1;
		return 0;
	}
	why = set_key(ctx->cfg, k, value);
	if (why) {
		range_text(k, range, sizeof(range));
		snprintf(ctx->err, ctx->err_size, "[%s] %s: %s: \"%.64s\"%s", section, name, why,
			 value, range);
		ctx->failed = 1;
		return 0;
	}
	return 1;
}

static int finish(struct load_ctx *ctx, int rc, const char *name)
{
	char msg[512];

	if (rc > 0 || ctx->failed) {
		if (!ctx->failed)
			snprintf(ctx->err, ctx->err_size,
				 "syntax error (expected [section] or key = value)");
		snprintf(msg, sizeof(msg), "%s:%d: %s", name, rc, ctx->err);
		snprintf(ctx->err, ctx->err_size, "%s", msg);
		return -EINVAL;
	}
	if (rc == -2) {
		snprintf(ctx->err, ctx->err_size, "%s: out of memory", name);
		return -ENOMEM;
	}
	return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t err_size)
{
	struct load_ctx ctx = { cfg, err, err_size, 0 };
	FILE *f;
	int rc;

	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		snprintf(err, err_size, "%s: cannot open: %s", path, strerror(-rc));
		return rc;
	}
	ini_allow_multiline = false;
	rc = ini_parse_file(f, on_key, &ctx);
	fclose(f);
	return finish(&ctx, rc, path);
}

int config_load_string(struct config *cfg, const char *text, const char *name, char *err,
		       size_t err_size)
{
	struct load_ctx ctx = { cfg, err, err_size, 0 };

	ini_allow_multiline = false;
	return finish(&ctx, ini_parse_string(text, on_key, &ctx), name);
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
