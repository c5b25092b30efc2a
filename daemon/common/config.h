/* SPDX-License-Identifier: MIT */
/*
 * config - the daemon's settings: defaults, INI file (inih), validation.
 *
 * Every key is documented with its default in config/kvmstatd.ini. A bad
 * file is reported as "FILE:LINE: [section] key: what is wrong".
 */
#ifndef KVMSTATD_CONFIG_H
#define KVMSTATD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CONFIG_DEFAULT_PATH "/etc/kvmstatd/kvmstatd.ini"
#define CONFIG_STR_MAX 108	/* sun_path size: the longest string we keep */
#define CONFIG_ALLOW_MAX 64	/* entries of allow_users, of allow_groups */
#define CONFIG_PATTERN_MAX 1025 /* [metrics] include/exclude, NUL included */
#define CONFIG_PATH_MAX 192	/* [web] file names (a line holds 200 bytes) */
#define CONFIG_AUTH_USERS_MAX 64
#define CONFIG_AUTH_NAME_MAX 64	  /* a [basic_auth_users] name, NUL included */
#define CONFIG_FILE_MAX (1 << 20) /* bytes of a configuration file */
#define CONFIG_FILE_MAX_TEXT "1 MiB"
#define CONFIG_BCRYPT_LEN 60 /* "$2b$NN$" + 22 characters of salt + 31 of hash */

/* [web] tls_client_auth_type: the exporter-toolkit values we can honour */
enum config_client_auth {
	CLIENT_AUTH_NONE,	     /* NoClientCert */
	CLIENT_AUTH_VERIFY_IF_GIVEN, /* VerifyClientCertIfGiven */
	CLIENT_AUTH_REQUIRE_VERIFY,  /* RequireAndVerifyClientCert */
};

/* One [basic_auth_users] line: a user and the bcrypt hash of its password. */
struct config_auth_user {
	char name[CONFIG_AUTH_NAME_MAX];
	char hash[CONFIG_BCRYPT_LEN + 1];
};

struct config {
	char user[64];
	char socket_path[CONFIG_STR_MAX];
	unsigned socket_mode;
	char socket_group[64];
	unsigned max_vms_per_peer;
	unsigned max_vcpus_per_vm;
	unsigned max_sources;
	/* allow_users / allow_groups, resolved at load time (both empty: anyone) */
	uid_t allow_uids[CONFIG_ALLOW_MAX];
	unsigned n_allow_uids;
	gid_t allow_gids[CONFIG_ALLOW_MAX];
	unsigned n_allow_gids;
	unsigned max_sources_per_uid;	  /* at most max_sources: lowered to it at load */
	unsigned rate_limit;		  /* requests per second per uid; 0: no limit */
	unsigned rate_burst;		  /* token bucket size, >= 1 */
	unsigned max_connections_per_uid; /* registration connections one uid may hold */
	bool discovery_enabled;
	unsigned discovery_interval_s; /* 0: no periodic scan */
	bool discovery_borrow;	       /* VM and vCPU fds too, where the kernel allows */
	bool sandbox;		       /* the worker's seccomp filter */
	char bpf[8];		       /* exit telemetry: "auto", "on" or "off" */
	unsigned bpf_slots;	       /* vCPU threads the BPF maps hold at once */
	unsigned interval_ms;
	unsigned ring_slots;
	unsigned history_s;	  /* seconds of samples kept for rates and sparklines; 0: none */
	unsigned history_max_mib; /* all histories together; past it, sources get none */
	unsigned exit_grace_ms;
	char listen[CONFIG_STR_MAX];
	unsigned max_connections;
	unsigned connection_timeout_s;
	/* [metrics]: cardinality */
	char metrics_include[CONFIG_PATTERN_MAX]; /* ERE on family names; empty: all */
	char metrics_exclude[CONFIG_PATTERN_MAX]; /* empty: none */
	char vcpu_series[16];			  /* "per_vcpu" or "per_vm" */
	bool histograms;
	bool created; /* OpenMetrics _created lines */
	unsigned max_series;
	/* exit reasons (BPF): ERE on the reason label; top N per VM and family */
	char reasons_include[CONFIG_PATTERN_MAX];
	char reasons_exclude[CONFIG_PATTERN_MAX];
	unsigned reasons_top;		 /* 0: every reason */
	unsigned max_connections_per_ip; /* 0: no limit */
	unsigned threads;		 /* HTTP threads (a pool when > 1) */
	unsigned max_headers;		 /* more request headers: 431 */
	unsigned max_request_bytes;	 /* memory per connection: request line + headers */
	unsigned request_timeout_s;	 /* a whole request, accept to the end of the answer */
	unsigned max_query_args;	 /* more query arguments: 414 */
	unsigned auth_fail_limit;	 /* failed password checks per client and window; 0: any */
	unsigned auth_fail_window_s;
	unsigned auth_cache_s; /* how long a successful user/password is remembered */
	/* [web], after the Prometheus exporter-toolkit's web configuration */
	char tls_cert_file[CONFIG_PATH_MAX]; /* empty: plain HTTP */
	char tls_key_file[CONFIG_PATH_MAX];
	char tls_client_ca_file[CONFIG_PATH_MAX];
	char tls_min_version[8]; /* TLS12 or TLS13 */
	char tls_client_auth_type[32];
	enum config_client_auth client_auth; /* tls_client_auth_type, parsed */
	/* [basic_auth_users]: none means no authentication */
	struct config_auth_user auth_users[CONFIG_AUTH_USERS_MAX];
	unsigned n_auth_users;
	/* not a key: fds the worker may hold (RLIMIT_NOFILE after start-up); 0: unknown */
	unsigned long fd_limit;
};

/* fds the worker keeps for itself beside sources and pidfds: HTTP
 * connections, registrations, its own */
#define CONFIG_FD_RESERVE 256u

void config_defaults(struct config *cfg);

/* Most samples one history keeps, whatever history_s / interval_ms asks. */
#define CONFIG_HISTORY_SLOTS_MAX 4096u

/*
 * Slots of each source's history: history_s of samples at interval_ms, the
 * newest and one the writer may be filling included; 0 when history_s is
 * 0. At most CONFIG_HISTORY_SLOTS_MAX.
 */
unsigned config_history_slots(const struct config *cfg);

/*
 * Whether the vCPU threads' schedstat is read and exported: it belongs to
 * the exit telemetry's "why is it slow" figures, so [daemon] bpf = off
 * turns it off too. The one place that decides it: the helper opens the
 * files by it, the worker's pages show the families by it.
 */
bool config_schedstat(const struct config *cfg);

/* True when s has the form of a bcrypt hash ($2a$, $2b$, $2y$; cost 04..31). */
bool config_is_bcrypt(const char *s);

/*
 * Load path over cfg. path must name a regular file (a directory, device
 * or FIFO is refused, and never blocks us) of at most CONFIG_FILE_MAX
 * bytes. Each section and each key may appear once (the list keys, which
 * add up, excepted). On error returns -EINVAL (or -errno of the open,
 * -EFBIG) and writes a one-line explanation naming file, line and key into
 * err.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t err_size);

/* Same, from a string (tests and fuzzing); name is used in messages. */
int config_load_string(struct config *cfg, const char *text, const char *name, char *err,
		       size_t err_size);

/*
 * Parse "PORT", ":PORT", "ADDR:PORT" or "[V6ADDR]:PORT" into host (empty for
 * any address) and port. Returns 0 or -EINVAL.
 */
int config_parse_listen(const char *s, char *host, size_t host_size, uint16_t *port);

#endif
