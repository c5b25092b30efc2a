/* SPDX-License-Identifier: MIT */
/*
 * kvmstatd - export KVM VM and vCPU statistics to Prometheus.
 *
 * main: command line, configuration, the two sockets, then the split. The
 * process that started stays the privileged helper; each worker is a
 * forked child that drops to the configured user and execs the worker
 * program (workerexec.h), which links what the helper must not: libmicrohttpd,
 * GnuTLS, libcrypt, zlib and the renderer. Runs in the foreground; never
 * daemonises.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "activation.h"
#include "borrow.h"
#include "config.h"
#include "helper.h"
#include "listen.h"
#include "log.h"
#include "notify.h"
#include "bpfload.h"
#include "privdrop.h"
#include "regsocket.h"
#include "sandbox.h"
#include "workerexec.h"
#include "webfiles.h"

struct options {
	const char *config_path;
	const char *listen;
	int check_only;
	int sandbox_selftest;
	int metrics_reference;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: kvmstatd [OPTION]...\n"
	    "Export every KVM VM's and vCPU's statistics (binary stats fds) to Prometheus.\n\n"
	    "  -c, --config FILE     configuration file (default %s)\n"
	    "  -l, --listen ADDR:PORT  HTTP address, overrides [http] listen (default :9735)\n"
	    "      --check-config    check the configuration and exit (0: valid, 2: invalid)\n"
	    "      --sandbox-selftest  each worker tries what its sandbox forbids and logs\n"
	    "                        the outcome; a worker whose sandbox lets one through exits\n"
	    "      --metrics-reference  print the table of known KVM stats and their metrics\n"
	    "                        (Markdown) and exit\n"
	    "  -v, --verbose         log debug messages\n"
	    "  -V, --version         print the version and exit\n"
	    "  -h, --help            print this help and exit\n\n"
	    "Runs in the foreground. See kvmstatd(8) and README.md.\n",
	    CONFIG_DEFAULT_PATH);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "sandbox-selftest", no_argument, NULL, 'S' },
		{ "metrics-reference", no_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->config_path = CONFIG_DEFAULT_PATH;
	while ((c = getopt_long(argc, argv, "c:l:vVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'C':
			o->check_only = 1;
			break;
		case 'S':
			o->sandbox_selftest = 1;
			break;
		case 'M':
			o->metrics_reference = 1;
			break;
		case 'v':
			log_set_level(LOG_LVL_DEBUG);
			break;
		case 'V':
			printf("kvmstatd %s\n", KVMSTATD_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvmstatd: unexpected argument \"%s\"\n", argv[optind]);
		exit(2);
	}
	return 0;
}

static int load_config(const struct options *o, struct config *cfg)
{
	char err[512], host[CONFIG_STR_MAX];
	uint16_t port;

	config_defaults(cfg);
	if (config_load(cfg, o->config_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "kvmstatd: %s\n", err);
		return -EINVAL;
	}
	if (o->listen) {
		if (strlen(o->listen) >= sizeof(cfg->listen) ||
		    config_parse_listen(o->listen, host, sizeof(host), &port) < 0) {
			fprintf(
			    stderr,
			    "kvmstatd: --listen \"%s\": not PORT, :PORT, ADDR:PORT or [V6]:PORT\n",
			    o->listen);
			return -EINVAL;
		}
		snprintf(cfg->listen, sizeof(cfg->listen), "%s", o->listen);
	}
	return 0;
}

/*
 * The worker program, and the parts of the configuration only it can
 * check: the [web] files are read now, while the process may still read a
 * key only root can, and the worker program parses them (and checks the
 * [basic_auth_users] hashes) in its check mode, as user when not NULL.
 * 0; 1 when the worker program cannot run; 2 when the configuration is
 * refused (--check-config's exit statuses). Logged.
 */
static int prepare_worker(const struct config *cfg, struct workerexec *s,
			  const struct workerexec_user *user)
{
	char err[512];
	int rc = workerexec_open(s);

	if (rc < 0) {
		log_err("the worker program %s: %s", s->path, strerror(-rc));
		return 1;
	}
	if ((rc = webfiles_read(cfg, &s->pem, err, sizeof(err))) < 0)
		log_err("%s", err);
	else
		rc = workerexec_check(s, cfg, user);
	return rc == 0 ? 0 : rc == -EIO ? 1 : 2;
}

/* The table is the renderer's: the worker program prints it. */
static void __attribute__((noreturn)) metrics_reference(void)
{
	struct workerexec s;
	int rc = workerexec_open(&s);

	if (rc == 0)
		execl(s.path, "kvmstatd-worker", "--metrics-reference", (char *)NULL);
	fprintf(stderr, "kvmstatd: the worker program %s: %s\n", s.path,
		strerror(rc < 0 ? -rc : errno));
	exit(1);
}

/*
 * Every source is an fd in the worker, and so is one pidfd per VM (the
 * helper holds copies of both). Raise the soft limit to the hard one; if
 * that cannot hold max_sources fds, lower max_sources rather than fail
 * later. The pidfds depend on how the sources are spread over VMs, so the
 * helper checks the whole count (cfg->fd_limit) at each registration: a
 * worst case of two fds per source here would let 4-vCPU VMs use only
 * 60% of the limit (1,974 of the 3,290 VMs that fit in 20,000 fds).
 */
static void fit_fd_limit(struct config *cfg)
{
	struct rlimit rl;
	unsigned fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	cfg->fd_limit = rl.rlim_cur > ULONG_MAX ? ULONG_MAX : (unsigned long)rl.rlim_cur;
	if (rl.rlim_cur >= (rlim_t)cfg->max_sources + CONFIG_FD_RESERVE)
		return;
	fit = rl.rlim_cur > 2 * CONFIG_FD_RESERVE ? (unsigned)(rl.rlim_cur - CONFIG_FD_RESERVE) : 1;
	log_warn("max_sources %u lowered to %u: the fd limit is %llu (raise LimitNOFILE / "
		 "ulimit -n)",
		 cfg->max_sources, fit, (unsigned long long)rl.rlim_cur);
	cfg->max_sources = fit;
	if (cfg->max_sources_per_uid > fit)
		cfg->max_sources_per_uid = fit;
}

static const char *socket_error(int rc)
{
	switch (rc) {
	case -EADDRINUSE:
		return "another kvmstatd is serving it";
	case -EPERM:
		return "its directory must belong to root or the service user and be writable by "
		       "nobody else";
	case -EEXIST:
		return "something that is not a socket has its name";
	default:
		return strerror(-rc);
	}
}

/*
 * Does this kernel give stats fds to an observer (borrow.h)? Asked once,
 * as root, before the privilege drop: the probe needs /dev/kvm.
 */
static bool probe_borrow(const struct config *cfg)
{
	char why[128];
	int rc;

	if (!cfg->discovery_enabled || !cfg->discovery_borrow)
		return false;
	rc = borrow_probe("/dev/kvm", why, sizeof(why));
	if (rc == BORROW_SUPPORTED)
		log_info("discovery: this kernel gives stats fds to an observer: VMMs that hold "
			 "none are read through their VM and vCPU fds (source=\"borrowed\")");
	else if (rc == BORROW_UNSUPPORTED)
		log_info("discovery: this kernel answers EIO to a borrowed VM fd (no "
			 "kvm-stats-observer series): only VMMs holding stats fds are found");
	else
		log_info("discovery: cannot tell whether this kernel lends stats fds (%s): "
			 "only VMMs holding stats fds are found",
			 why);
	return rc == BORROW_SUPPORTED;
}

/* The path a registration socket from systemd is bound to, for the log. */
static void socket_path_of(int fd, char *out, size_t size)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);

	snprintf(out, size, "(unnamed)");
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && len > sizeof(sa.sun_family) &&
	    sa.sun_path[0])
		snprintf(out, size, "%.*s", (int)(len - sizeof(sa.sun_family)), sa.sun_path);
}

/*
 * The two listening sockets: systemd's (kvmstatd.socket) where it passed
 * them, else our own from the configuration. 0 or 1 (exit status), logged.
 */
static int open_sockets(struct config *cfg, struct helper_args *a)
{
	char err[256] = "", path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	int rc = activation_take(&a->http_fd, &a->reg_fd, err, sizeof(err));

	if (rc < 0) {
		log_err("sockets from the service manager: %s", err);
		return 1;
	}
	if (rc == 0 && err[0])
		log_warn("sockets from the service manager: %s; opening our own", err);
	if (a->http_fd >= 0)
		log_info("metrics on the socket from the service manager ([http] listen unused)");
	else if ((rc = listen_tcp(cfg->listen, &a->http_fd, err, sizeof(err))) < 0) {
		log_err("%s", err);
		goto fail;
	}
	if (a->reg_fd >= 0) {
		/* systemd made it (SocketMode=, SocketGroup=) and removes it */
		socket_path_of(a->reg_fd, path, sizeof(path));
		if (strcmp(path, cfg->socket_path))
			log_warn("registration on %s, the socket from the service manager; "
				 "[registration] socket %s is unused",
				 path, cfg->socket_path);
		return 0;
	}
	rc = regsocket_open(cfg, a->uid, &a->reg_fd, &a->socket_dir_fd);
	if (rc < 0) {
		log_err("registration socket %s: %s", cfg->socket_path, socket_error(rc));
		goto fail;
	}
	a->socket_name =
	    strrchr(cfg->socket_path, '/') ? strrchr(cfg->socket_path, '/') + 1 : cfg->socket_path;
	return 0;
fail:
	if (a->http_fd >= 0)
		close(a->http_fd);
	if (a->reg_fd >= 0)
		close(a->reg_fd);
	return 1;
}

/* Drop what root was needed for; on failure remove our socket (if ours). */
static int drop_privileges(const struct config *cfg, const struct helper_args *a)
{
	int rc;

	if ((rc = privdrop_helper(a->uid, a->gid, cfg->discovery_enabled)) < 0)
		log_err("cannot drop the helper's privileges to %s: %s", cfg->user, strerror(-rc));
	else if (cfg->sandbox && (rc = sandbox_enter_helper(a->prog->exe_fd)) < 0)
		log_err("cannot install the helper's seccomp filter: %s", strerror(-rc));
	if (rc < 0 && a->socket_dir_fd >= 0)
		unlinkat(a->socket_dir_fd, a->socket_name, 0);
	return rc;
}

/*
 * The accounts the configuration names must exist: [daemon] user, and
 * [registration] socket_group when set. Checked by --check-config too, so
 * that a file it calls valid does not stop the start. 0 or -errno, logged.
 */
static int lookup_accounts(const struct config *cfg, uid_t *uid, gid_t *gid)
{
	struct group gr, *res = NULL;
	char buf[4096];
	int rc;

	if ((rc = privdrop_lookup(cfg->user, uid, gid)) < 0) {
		log_err(
		    "user \"%s\" (config [daemon] user): %s; create it with scripts/create-user.sh",
		    cfg->user, rc == -ENOENT ? "no such user" : strerror(-rc));
		return rc;
	}
	if (cfg->socket_group[0] &&
	    (getgrnam_r(cfg->socket_group, &gr, buf, sizeof(buf), &res) != 0 || !res)) {
		log_err("group \"%s\" (config [registration] socket_group): no such group",
			cfg->socket_group);
		return -ENOENT;
	}
	return 0;
}

static int start(struct config *cfg, const struct options *o, struct workerexec *prog)
{
	struct helper_args a = { .cfg = cfg,
				 .config_path = o->config_path,
				 .listen_override = o->listen,
				 .reg_fd = -1,
				 .http_fd = -1,
				 .socket_dir_fd = -1,
				 .prog = prog };
	static struct bpf_telemetry bpf; /* lives as long as the helper */
	char err[256] = "";
	int rc;

	if (lookup_accounts(cfg, &a.uid, &a.gid) < 0)
		return 1;
	if (prepare_worker(cfg, prog, &(struct workerexec_user){ a.uid, a.gid }))
		return 1;
	fit_fd_limit(cfg);
	/* connected now: later the helper may no longer reach the socket's path */
	if ((rc = notify_open()) < 0)
		log_warn("NOTIFY_SOCKET: %s: the service manager will not hear from us",
			 strerror(-rc));
	if (open_sockets(cfg, &a))
		return 1;
	prog->selftest = o->sandbox_selftest;
	a.borrow = probe_borrow(cfg);
	/* while CAP_BPF and CAP_PERFMON are still ours: the links outlive them */
	if ((rc = bpfload_start(&bpf, cfg, err, sizeof(err))) < 0) {
		if (!strcmp(cfg->bpf, "on")) {
			log_err("%s; [daemon] bpf = on: not starting", err);
			if (a.socket_dir_fd >= 0)
				unlinkat(a.socket_dir_fd, a.socket_name, 0);
			return 1;
		}
		log_info("exit telemetry off: %s", err);
	}
	a.bpf = &bpf;
	/* everything that needed root is done: keep only what discovery needs */
	if (drop_privileges(cfg, &a) < 0)
		return 1;
	log_info(
	    "kvmstatd %s: registration on %s, metrics on %s, running as %s%s", KVMSTATD_VERSION,
	    a.socket_dir_fd >= 0 ? cfg->socket_path : "systemd's socket", cfg->listen, cfg->user,
	    cfg->discovery_enabled ? " with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH for discovery"
				   : "");
	rc = helper_run(&a);
	bpfload_stop(&bpf);
	return rc;
}

int main(int argc, char **argv)
{
	struct workerexec prog = { .exe_fd = -1 }; /* lives as long as the helper */
	struct workerexec_user user;
	struct options o = { 0 };
	struct config cfg;
	int rc;

	parse_args(argc, argv, &o);
	if (o.metrics_reference)
		metrics_reference();
	log_set_role("helper");
	log_use_journal(); /* now: it needs a socket, which only start-up may make */
	if (load_config(&o, &cfg) < 0)
		return 2;
	if (!o.check_only)
		rc = start(&cfg, &o, &prog);
	else if (lookup_accounts(&cfg, &user.uid, &user.gid) < 0)
		rc = 2;
	/* as the service user when run as root (else as the caller): the
	 * worker program's own sandbox confines the parsing either way */
	else if ((rc = prepare_worker(&cfg, &prog, &user)) == 0)
		printf("%s: configuration valid\n", o.config_path);
	boot_pem_free(&prog.pem); /* the key, wiped */
	return rc;
}
