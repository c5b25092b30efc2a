/* SPDX-License-Identifier: MIT */
/*
 * config - see config.h. The key table drives parsing, range checks and the
 * error messages, so adding a key is one line.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pattern.h"
#include "reason.h"

enum key_kind { KEY_STR, KEY_UINT, KEY_OCTAL, KEY_BOOL, KEY_LIST };

struct key_def {
	const char *section;
	const char *name;
	enum key_kind kind;
	size_t offset;
	size_t size; /* KEY_STR: buffer size */
	unsigned long min, max;
	const char *(*check)(const char *value); /* KEY_STR: NULL or why it is bad */
	/* KEY_LIST: parse value into cfg; NULL, or why (a sentence in buf) */
	const char *(*set_list)(struct config *cfg, const char *value, char *buf, size_t size);
};

#define STR(sec, key, field)                                                                       \
	{                                                                                          \
		.section = sec, .name = key, .kind = KEY_STR,                                      \
		.offset = offsetof(struct config, field),                                          \
		.size = sizeof(((struct config *)0)->field)                                        \
	}
#define STRC(sec, key, field, fn)                                                                  \
	{                                                                                          \
		.section = sec, .name = key, .kind = KEY_STR,                                      \
		.offset = offsetof(struct config, field),                                          \
		.size = sizeof(((struct config *)0)->field), .check = fn                           \
	}
#define UINT(sec, key, field, lo, hi)                                                              \
	{                                                                                          \
		.section = sec, .name = key, .kind = KEY_UINT,                                     \
		.offset = offsetof(struct config, field), .min = lo, .max = hi                     \
	}
#define BOOL(sec, key, field)                                                                      \
	{                                                                                          \
		.section = sec, .name = key, .kind = KEY_BOOL,                                     \
		.offset = offsetof(struct config, field)                                           \
	}
#define LIST(sec, key, fn)                                                                         \
	{                                                                                          \
		.section = sec, .name = key, .kind = KEY_LIST, .set_list = fn                      \
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

/*
 * include/exclude: a repeated key adds an alternative ("a" then "b" is
 * "a|b"), since one line holds at most 200 bytes. The whole must compile.
 */
static const char *add_pattern(char *field, const char *v, char *buf, size_t size)
{
	size_t have = strlen(field), len = strlen(v);
	char why_buf[128];
	const char *why;

	if (!len)
		return NULL;
	if (have + 1 + len >= CONFIG_PATTERN_MAX) {
		snprintf(buf, size, "patterns longer than %d bytes in all", CONFIG_PATTERN_MAX - 1);
		return buf;
	}
	if ((why = pattern_check(v, why_buf))) {
		snprintf(buf, size, "\"%.64s\" is not an extended regular expression: %s", v, why);
		return buf;
	}
	if (have)
		field[have++] = '|';
	memcpy(field + have, v, len + 1);
	return NULL;
}

static const char *set_include(struct config *cfg, const char *v, char *buf, size_t size)
{
	return add_pattern(cfg->metrics_include, v, buf, size);
}

static const char *set_exclude(struct config *cfg, const char *v, char *buf, size_t size)
{
	return add_pattern(cfg->metrics_exclude, v, buf, size);
}

static const char *check_vcpu_series(const char *v)
{
	return strcmp(v, "per_vcpu") && strcmp(v, "per_vm") ? "must be per_vcpu or per_vm" : NULL;
}

static const char *set_reasons_include(struct config *cfg, const char *v, char *buf, size_t size)
{
	return add_pattern(cfg->reasons_include, v, buf, size);
}

static const char *set_reasons_exclude(struct config *cfg, const char *v, char *buf, size_t size)
{
	return add_pattern(cfg->reasons_exclude, v, buf, size);
}

static const char *check_bpf(const char *v)
{
	return strcmp(v, "auto") && strcmp(v, "on") && strcmp(v, "off") ? "must be auto, on or off"
									: NULL;
}

static const char *check_empty_or_absolute(const char *v)
{
	return v[0] == '\0' || v[0] == '/' ? NULL : "must be an absolute path (or empty)";
}

static const char *check_tls_version(const char *v)
{
	if (!strcmp(v, "TLS12") || !strcmp(v, "TLS13"))
		return NULL;
	if (!strcmp(v, "TLS10") || !strcmp(v, "TLS11"))
		return "TLS 1.0 and 1.1 are not offered: TLS12 or TLS13";
	return "must be TLS12 or TLS13";
}

static const struct {
	const char *name;
	enum config_client_auth value;
} client_auth_types[] = {
	{ "NoClientCert", CLIENT_AUTH_NONE },
	{ "VerifyClientCertIfGiven", CLIENT_AUTH_VERIFY_IF_GIVEN },
	{ "RequireAndVerifyClientCert", CLIENT_AUTH_REQUIRE_VERIFY },
};

static const char *check_client_auth(const char *v)
{
	for (size_t i = 0; i < sizeof(client_auth_types) / sizeof(client_auth_types[0]); i++)
		if (!strcmp(v, client_auth_types[i].name))
			return NULL;
	/* a certificate nobody checks proves nothing: refuse rather than pretend */
	if (!strcmp(v, "RequestClientCert") || !strcmp(v, "RequireAnyClientCert"))
		return "not supported (an unverified certificate proves nothing): NoClientCert, "
		       "VerifyClientCertIfGiven or RequireAndVerifyClientCert";
	return "must be NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert";
}

static const char *set_allow_users(struct config *cfg, const char *v, char *buf, size_t size);
static const char *set_allow_groups(struct config *cfg, const char *v, char *buf, size_t size);

static const struct key_def keys[] = {
	STRC("daemon", "user", user, check_not_empty),
	BOOL("daemon", "sandbox", sandbox),
	STRC("daemon", "bpf", bpf, check_bpf),
	UINT("daemon", "bpf_slots", bpf_slots, 1, 65536),
	STRC("registration", "socket", socket_path, check_absolute),
	{ .section = "registration",
	  .name = "socket_mode",
	  .kind = KEY_OCTAL,
	  .offset = offsetof(struct config, socket_mode),
	  .max = 0777 },
	STR("registration", "socket_group", socket_group),
	UINT("registration", "max_vms_per_peer", max_vms_per_peer, 1, 4096),
	UINT("registration", "max_vcpus_per_vm", max_vcpus_per_vm, 1, 4096),
	UINT("registration", "max_sources", max_sources, 1, 20000),
	LIST("registration", "allow_users", set_allow_users),
	LIST("registration", "allow_groups", set_allow_groups),
	UINT("registration", "max_sources_per_uid", max_sources_per_uid, 1, 20000),
	UINT("registration", "rate_limit", rate_limit, 0, 1000000),
	UINT("registration", "rate_burst", rate_burst, 1, 1000000),
	UINT("registration", "max_connections_per_uid", max_connections_per_uid, 1, 128),
	BOOL("discovery", "enabled", discovery_enabled),
	UINT("discovery", "interval_s", discovery_interval_s, 0, 86400),
	BOOL("discovery", "borrow", discovery_borrow),
	UINT("poll", "interval_ms", interval_ms, 10, 3600000),
	UINT("poll", "ring_slots", ring_slots, 2, 64),
	UINT("poll", "history_s", history_s, 0, 3600),
	UINT("poll", "history_max_mib", history_max_mib, 1, 1048576),
	UINT("poll", "exit_grace_ms", exit_grace_ms, 0, 86400000),
	STRC("http", "listen", listen, check_listen),
	UINT("http", "max_connections", max_connections, 1, 1024),
	UINT("http", "connection_timeout_s", connection_timeout_s, 1, 3600),
	LIST("metrics", "include", set_include),
	LIST("metrics", "exclude", set_exclude),
	STRC("metrics", "vcpu_series", vcpu_series, check_vcpu_series),
	BOOL("metrics", "histograms", histograms),
	BOOL("metrics", "created", created),
	UINT("metrics", "max_series", max_series, 0, 100000000),
	LIST("metrics", "reasons_include", set_reasons_include),
	LIST("metrics", "reasons_exclude", set_reasons_exclude),
	UINT("metrics", "reasons_top", reasons_top, 0, 1000),
	UINT("http", "max_connections_per_ip", max_connections_per_ip, 0, 1024),
	UINT("http", "threads", threads, 1, 16),
	UINT("http", "max_headers", max_headers, 1, 1024),
	UINT("http", "max_request_bytes", max_request_bytes, 4096, 1048576),
	UINT("http", "request_timeout_s", request_timeout_s, 1, 3600),
	UINT("http", "max_query_args", max_query_args, 1, 1024),
	UINT("http", "auth_fail_limit", auth_fail_limit, 0, 1000000),
	UINT("http", "auth_fail_window_s", auth_fail_window_s, 1, 86400),
	UINT("http", "auth_cache_s", auth_cache_s, 1, 86400),
	STRC("web", "tls_cert_file", tls_cert_file, check_empty_or_absolute),
	STRC("web", "tls_key_file", tls_key_file, check_empty_or_absolute),
	STRC("web", "tls_min_version", tls_min_version, check_tls_version),
	STRC("web", "tls_client_auth_type", tls_client_auth_type, check_client_auth),
	STRC("web", "tls_client_ca_file", tls_client_ca_file, check_empty_or_absolute),
};

/* A section whose keys are names of the operator's choosing, not ours. */
#define AUTH_SECTION "basic_auth_users"

/* Every section, each at most once in a file; keys[] uses no other. */
static const char *const sections[] = { "daemon", "registration", "discovery", "poll",
					"http",	  "metrics",	  "web",       AUTH_SECTION };

#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

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
	const char *text; /* the source, read whole */
	char *line;	  /* the reader's buffer, any length */
	size_t cap;
	/* where each section and each key (but lists) was first seen: a
	 * second one is an error, not a silent "the last one wins" */
	int section_line[N_SECTIONS];
	int key_line[N_KEYS];
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
	cfg->max_sources_per_uid = 4096;
	cfg->rate_limit = 100;
	cfg->rate_burst = 1000;
	cfg->max_connections_per_uid = 16;
	cfg->discovery_enabled = true;
	cfg->discovery_interval_s = 10;
	cfg->discovery_borrow = true;
	cfg->sandbox = true;
	snprintf(cfg->bpf, sizeof(cfg->bpf), "auto");
	cfg->bpf_slots = 4096;
	cfg->interval_ms = 1000;
	cfg->ring_slots = 4;
	cfg->history_s = 60;
	cfg->history_max_mib = 512;
	cfg->exit_grace_ms = 30000;
	snprintf(cfg->listen, sizeof(cfg->listen), ":9735");
	cfg->max_connections = 64;
	cfg->connection_timeout_s = 10;
	snprintf(cfg->vcpu_series, sizeof(cfg->vcpu_series), "per_vcpu");
	cfg->histograms = true;
	cfg->created = true;
	cfg->max_connections_per_ip = 8;
	cfg->threads = 2;
	cfg->max_headers = 64;
	cfg->max_request_bytes = 32768;
	cfg->request_timeout_s = 10;
	cfg->max_query_args = 16;
	cfg->auth_fail_limit = 5;
	cfg->auth_fail_window_s = 60;
	cfg->auth_cache_s = 300;
	snprintf(cfg->tls_min_version, sizeof(cfg->tls_min_version), "TLS12");
	snprintf(cfg->tls_client_auth_type, sizeof(cfg->tls_client_auth_type), "NoClientCert");
	cfg->client_auth = CLIENT_AUTH_NONE;
}

unsigned config_history_slots(const struct config *cfg)
{
	uint64_t samples;
	unsigned slots = 0;

	if (cfg->history_s && cfg->interval_ms) {
		samples =
		    ((uint64_t)cfg->history_s * 1000 + cfg->interval_ms - 1) / cfg->interval_ms;
		slots = samples + 2 > CONFIG_HISTORY_SLOTS_MAX ? CONFIG_HISTORY_SLOTS_MAX
							       : (unsigned)samples + 2;
	}
	return slots;
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

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "1" };
	static const char *const no[] = { "no", "false", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- allow_users / allow_groups ------------------------------------------ */

enum id_kind { ID_USER, ID_GROUP };

#define ID_MAX 4294967294ul /* (uid_t)-1 and (gid_t)-1 mean "no id" */
#define LOOKUP_BUF_MAX (1u << 20)

/*
 * A user or group name to its id through NSS (getpwnam_r/getgrnam_r): 0,
 * -ENOENT when there is no such name, or -errno when the lookup failed.
 */
static int lookup_id(enum id_kind kind, const char *name, unsigned long *id)
{
	long hint = sysconf(kind == ID_USER ? _SC_GETPW_R_SIZE_MAX : _SC_GETGR_R_SIZE_MAX);
	size_t size = hint > 0 ? (size_t)hint : 1024;
	bool found = false;
	int rc;

	for (;;) {
		char *buf = malloc(size);

		if (!buf)
			return -ENOMEM;
		if (kind == ID_USER) {
			struct passwd pw, *res = NULL;

			rc = getpwnam_r(name, &pw, buf, size, &res);
			if (!rc && res) {
				found = true;
				*id = res->pw_uid;
			}
		} else {
			struct group gr, *res = NULL;

			rc = getgrnam_r(name, &gr, buf, size, &res);
			if (!rc && res) {
				found = true;
				*id = res->gr_gid;
			}
		}
		free(buf);
		if (rc != ERANGE || size >= LOOKUP_BUF_MAX) /* a big group needs a big buffer */
			break;
		size *= 2;
	}
	/* getpwnam_r(3): these too mean "not found" for some NSS modules */
	if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
		return found ? 0 : -ENOENT;
	return -rc;
}

/*
 * "alice, bob 1000": names (looked up now) or numeric ids, separated by
 * commas and/or blanks, added to the *n_ids in ids; duplicates count once.
 * Lines add up: a list of 64 names does not fit in one (200 bytes). On
 * error buf holds a sentence naming the entry.
 */
static const char *add_ids(enum id_kind kind, const char *v, id_t *ids, unsigned *n_ids, char *buf,
			   size_t size)
{
	static const char sep[] = ", \t";
	const char *what = kind == ID_USER ? "user" : "group";
	unsigned long id = 0;
	char tok[256];
	int rc;

	for (v += strspn(v, sep); *v; v += strspn(v, sep)) {
		size_t len = strcspn(v, sep);
		bool dup = false;

		if (len >= sizeof(tok)) {
			snprintf(buf, size, "%s name \"%.32s...\" is too long", what, v);
			return buf;
		}
		memcpy(tok, v, len);
		tok[len] = '\0';
		v += len;
		if (strspn(tok, "0123456789") == len) { /* all digits: an id, no lookup */
			if (parse_number(tok, 10, &id) < 0 || id > ID_MAX) {
				snprintf(buf, size, "%s id \"%.32s\" out of range (0..%lu)", what,
					 tok, ID_MAX);
				return buf;
			}
		} else if ((rc = lookup_id(kind, tok, &id)) < 0) {
			if (rc == -ENOENT)
				snprintf(buf, size, "unknown %s \"%.64s\"", what, tok);
			else
				snprintf(buf, size, "cannot look up %s \"%.64s\": %s", what, tok,
					 strerror(-rc));
			return buf;
		}
		for (unsigned i = 0; i < *n_ids && !dup; i++)
			dup = ids[i] == id;
		if (dup)
			continue;
		if (*n_ids == CONFIG_ALLOW_MAX) {
			snprintf(buf, size, "more than %d %ss", CONFIG_ALLOW_MAX, what);
			return buf;
		}
		ids[(*n_ids)++] = (id_t)id;
	}
	return NULL;
}

/* uid_t and gid_t are the same type as id_t: one list parser fills both. */
_Static_assert(_Generic((uid_t)0, id_t : 1, default : 0) &&
		   _Generic((gid_t)0, id_t : 1, default : 0),
	       "uid_t and gid_t are id_t");

static const char *set_allow_users(struct config *cfg, const char *v, char *buf, size_t size)
{
	return add_ids(ID_USER, v, cfg->allow_uids, &cfg->n_allow_uids, buf, size);
}

static const char *set_allow_groups(struct config *cfg, const char *v, char *buf, size_t size)
{
	return add_ids(ID_GROUP, v, cfg->allow_gids, &cfg->n_allow_gids, buf, size);
}

/* ---- [basic_auth_users] ------------------------------------------------------ */

static bool is_bcrypt_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '/';
}

bool config_schedstat(const struct config *cfg)
{
	return strcmp(cfg->bpf, "off") != 0;
}

bool config_is_bcrypt(const char *s)
{
	unsigned cost;

	if (strlen(s) != CONFIG_BCRYPT_LEN || strncmp(s, "$2", 2) || !strchr("aby", s[2]) ||
	    s[3] != '$' || s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' || s[6] != '$')
		return false;
	cost = (unsigned)(s[4] - '0') * 10 + (unsigned)(s[5] - '0');
	if (cost < 4 || cost > 31)
		return false;
	for (s += 7; *s; s++)
		if (!is_bcrypt_char(*s))
			return false;
	return true;
}

/* RFC 7617: the user-id holds no ':' and no control character. */
static bool valid_user_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= CONFIG_AUTH_NAME_MAX)
		return false;
	for (; *name; name++)
		if ((unsigned char)*name < 0x20 || *name == 0x7f || *name == ':')
			return false;
	return true;
}

static const char *add_auth_user(struct config *cfg, const char *name, const char *hash)
{
	struct config_auth_user *u;

	if (!valid_user_name(name))
		return "a user name is 1..63 bytes without ':' or control characters";
	for (unsigned i = 0; i < cfg->n_auth_users; i++)
		if (!strcmp(cfg->auth_users[i].name, name))
			return "user listed twice";
	if (cfg->n_auth_users == CONFIG_AUTH_USERS_MAX)
		return "more than 64 users";
	/* the value is a secret's hash: say what is wrong, never echo it */
	if (!config_is_bcrypt(hash))
		return "not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04..31, 60 characters; "
		       "e.g. from htpasswd -nBC 10 USER)";
	u = &cfg->auth_users[cfg->n_auth_users++];
	memcpy(u->name, name, strlen(name) + 1);
	memcpy(u->hash, hash, CONFIG_BCRYPT_LEN + 1);
	return NULL;
}

/* ---- one key ---------------------------------------------------------------- */

/* NULL, or why v is refused (a static string, or a sentence written into buf). */
static const char *set_key(struct config *cfg, const struct key_def *k, const char *v, char *buf,
			   size_t size)
{
	char *field = (char *)cfg + k->offset;
	const char *why;
	unsigned long n;
	bool b;

	switch (k->kind) {
	case KEY_STR:
		if (strlen(v) >= k->size)
			return "value too long"; /* range_text adds the limit */
		if (k->check && (why = k->check(v)))
			return why;
		memcpy(field, v, strlen(v) + 1);
		return NULL;
	case KEY_LIST:
		return k->set_list(cfg, v, buf, size);
	case KEY_BOOL:
		if (parse_bool(v, &b) < 0)
			return "not a boolean";
		*(bool *)(void *)field = b;
		return NULL;
	case KEY_UINT:
	case KEY_OCTAL:
		break;
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
	else if (k->kind == KEY_BOOL)
		snprintf(buf, size, " (yes/no, true/false or 1/0)");
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
	reason_vset(ctx->err, ctx->err_size, -EINVAL, fmt, ap);
	va_end(ap);
}

/* inih convention: return nonzero to accept, 0 to flag this line. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	const struct key_def *k;
	const char *why;
	char range[64], sentence[160];

	if (!strcmp(section, AUTH_SECTION)) {
		why = add_auth_user(ctx->cfg, name, value);
		if (why)
			fail_at(ctx, "[%s] %.64s: %s", section, name, why);
		return !why;
	}
	k = find_key(section, name);
	if (!k) {
		fail_at(ctx, "[%s] %s: unknown key", section, name);
		return 0;
	}
	if (k->kind != KEY_LIST && ctx->key_line[k - keys]) {
		fail_at(ctx, "[%s] %s: set twice (first at line %d): which one was meant?", section,
			name, ctx->key_line[k - keys]);
		return 0;
	}
	ctx->key_line[k - keys] = ctx->lineno;
	why = set_key(ctx->cfg, k, value, sentence, sizeof(sentence));
	if (why && k->kind == KEY_LIST) { /* the sentence names the entry */
		fail_at(ctx, "[%s] %s: %s", section, name, why);
		return 0;
	}
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

/* The index of section name (len bytes) in sections[], or -1. */
static int section_index(const char *name, size_t len)
{
	for (size_t i = 0; i < N_SECTIONS; i++)
		if (strlen(sections[i]) == len && !strncmp(sections[i], name, len))
			return (int)i;
	return -1;
}

/* [name] (len bytes) at line num: known, and the first of its name. */
static void check_section(struct load_ctx *ctx, const char *name, size_t len, int num)
{
	int i = section_index(name, len);

	if (i < 0)
		fail_at(ctx, "[%.*s]: unknown section", (int)len, name);
	else if (ctx->section_line[i])
		fail_at(ctx, "[%s]: section repeated (first at line %d): keep its keys together",
			sections[i], ctx->section_line[i]);
	else
		ctx->section_line[i] = num;
}

/* One whole line of the text into *line; false at the end. */
static bool next_line(struct load_ctx *ctx, char **line, size_t *cap)
{
	size_t len;

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

/* Checks inih cannot make: long lines, unknown (even empty) and repeated
 * sections. */
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
	else if (*p == '[' && strchr(p, ']'))
		check_section(ctx, p + 1, strcspn(p + 1, "]"), ctx->lineno);
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

/* Rules between keys, checked once the whole file is read: NULL or why not. */
static const char *check_across(struct config *cfg)
{
	bool tls = cfg->tls_cert_file[0] != '\0';

	if (tls != (cfg->tls_key_file[0] != '\0'))
		return "[web] tls_cert_file and tls_key_file: set both or neither";
	for (size_t i = 0; i < sizeof(client_auth_types) / sizeof(client_auth_types[0]); i++)
		if (!strcmp(cfg->tls_client_auth_type, client_auth_types[i].name))
			cfg->client_auth = client_auth_types[i].value;
	if (cfg->client_auth != CLIENT_AUTH_NONE && !cfg->tls_client_ca_file[0])
		return "[web] tls_client_auth_type: verifying client certificates needs "
		       "tls_client_ca_file";
	if (cfg->client_auth == CLIENT_AUTH_NONE && cfg->tls_client_ca_file[0])
		return "[web] tls_client_ca_file: set, but tls_client_auth_type is NoClientCert";
	if (cfg->client_auth != CLIENT_AUTH_NONE && !tls)
		return "[web] tls_client_auth_type: client certificates need TLS (tls_cert_file "
		       "and tls_key_file)";
	/* libmicrohttpd shares the connections out among the threads */
	if (cfg->threads > cfg->max_connections)
		return "[http] threads: more than max_connections (each thread needs one)";
	return NULL;
}

static int load(struct load_ctx *ctx, const char *name)
{
	const char *why;
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
	if (!ctx->failed && (why = check_across(ctx->cfg))) {
		snprintf(ctx->err, ctx->err_size, "%s: %s", name, why);
		return -EINVAL;
	}
	if (!ctx->failed) {
		/* one uid cannot hold more than all: the total limit is the tighter one */
		if (ctx->cfg->max_sources_per_uid > ctx->cfg->max_sources)
			ctx->cfg->max_sources_per_uid = ctx->cfg->max_sources;
		return 0;
	}
	snprintf(msg, sizeof(msg), "%s:%d: %s", name, ctx->failed, ctx->err);
	snprintf(ctx->err, ctx->err_size, "%s", msg);
	return -EINVAL;
}

static const char *file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return "a directory";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	default:
		return "not a regular file";
	}
}

/*
 * The whole of an open regular file of at most CONFIG_FILE_MAX bytes into
 * *text (NUL-terminated, no NUL inside). 0 or -errno, with why.
 */
static int read_regular(int fd, char **text, const char **why)
{
	struct stat st;
	size_t have = 0;
	ssize_t n = 1;
	char *buf = NULL;
	int rc = 0;

	*why = NULL;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		*why = file_kind(st.st_mode);
		rc = -EINVAL;
	} else if (st.st_size > CONFIG_FILE_MAX) {
		rc = -EFBIG;
	} else if (!(buf = malloc(CONFIG_FILE_MAX + 1))) {
		rc = -ENOMEM;
	}
	/* to the end, not to st_size: it may grow meanwhile, never past the bound */
	while (rc == 0 && n > 0 && have <= CONFIG_FILE_MAX) {
		n = read(fd, buf + have, CONFIG_FILE_MAX + 1 - have);
		if (n > 0)
			have += (size_t)n;
		else if (n < 0 && errno != EINTR)
			rc = -errno;
		else if (n < 0)
			n = 1; /* interrupted: again */
	}
	if (rc == 0 && have > CONFIG_FILE_MAX)
		rc = -EFBIG;
	if (rc == 0 && memchr(buf, '\0', have)) {
		*why = "it holds a NUL byte";
		rc = -EINVAL;
	}
	if (rc == 0) {
		buf[have] = '\0';
		*text = buf;
		buf = NULL;
	}
	if (rc < 0 && !*why)
		*why = rc == -EFBIG ? "larger than " CONFIG_FILE_MAX_TEXT : strerror(-rc);
	free(buf);
	return rc;
}

int config_load(struct config *cfg, const char *path, char *err, size_t err_size)
{
	const char *why = NULL;
	char *text = NULL;
	int fd, rc;

	/* O_NONBLOCK: a FIFO must not hold us in open(); it is refused next */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, err_size, "%s: cannot open: %s", path, strerror(-rc));
		return rc;
	}
	rc = read_regular(fd, &text, &why);
	close(fd);
	if (rc < 0)
		snprintf(err, err_size,
			 "%s: %s: the configuration must be a regular file of at most %s", path,
			 why, CONFIG_FILE_MAX_TEXT);
	else
		rc = config_load_string(cfg, text, path, err, err_size);
	free(text);
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
